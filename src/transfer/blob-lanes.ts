// BlobLanes: a copy's blob writes, a few at a time across all images, the biggest waiting one first (so the long
// ones start early and the lanes end together). Writes of the same blob run one after another in the order asked
// for: the first writes it, the next ones find it there (or mount it), as they would one image at a time.
import { Limiter } from '../stream/limiter.js';

export class BlobLanes {
  private readonly limiter: Limiter;
  private readonly last = new Map<string, Promise<unknown>>();
  private failed = false;

  constructor(lanes: number) {
    this.limiter = new Limiter(lanes);
  }

  /** run writes one blob when a lane is free; after the first failure nothing new starts. */
  run<T>(digest: string, size: number, write: () => Promise<T>): Promise<T> {
    const before = this.last.get(digest) ?? Promise.resolve();
    const go = (): Promise<T> =>
      this.limiter.run(async () => {
        try {
          return await write();
        } catch (err) {
          this.stop(err);
          throw err;
        }
      }, size);
    const done = before.then(go, go);
    this.last.set(digest, done.catch(() => undefined));
    return done;
  }

  /** stop: nothing more starts (what waits fails with reason); writes under way finish. */
  stop(reason: unknown = new Error('the copy stopped after a failure')): void {
    if (this.failed) return;
    this.failed = true;
    this.limiter.stop(reason);
  }
}

/** settledAll waits for every promise, then throws the first failure (so nothing is left running behind an error). */
export async function settledAll<T>(ps: readonly Promise<T>[]): Promise<T[]> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<T>).value);
}
