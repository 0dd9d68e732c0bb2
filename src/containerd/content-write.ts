// Writing one blob into containerd's content store over the Write stream: resumable by ref, streamed in chunks
// of at most 1 MiB as the source yields them, under gRPC flow control, committed against the expected digest.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { status as Code } from '@grpc/grpc-js';
import { abortReason, grpcCode, isAlreadyExists, toFerry, type Rpc } from './rpc.js';
import type { Labels } from './types.js';

const CONTENT = 'containerd.services.content.v1.Content';
/** containerd takes any message size up to its limit; 1 MiB keeps each one (and its copy when encoded) small. */
export const WRITE_CHUNK = 1 << 20;
/**
 * Bytes sent that containerd has not yet said are in the ingest (it answers every WRITE once it is). grpc-js lets 16
 * messages wait in each call's buffer: 16 MiB a blob, four blobs at once, before its backpressure starts (measured).
 */
const IN_FLIGHT = 2 << 20;
/** A cut write's server side may hold the ref's lock for a moment after the cut; containerd's client retries too. */
const LOCK_RETRIES = 8;

export type WriteResult = 'present' | 'written';

/**
 * OpenFrom yields the blob's bytes from offset on; it is called once per attempt, never for bytes containerd has.
 * Each chunk is copied as it is sent, so a source may reuse its buffer once the next one is asked for.
 */
export type OpenFrom = (offset: number) => AsyncIterable<Uint8Array>;

export interface WriteTarget {
  digest: string;
  size: number;
}

interface WriteReply {
  action: string;
  offset: number;
  total: number;
  digest: string;
}

/**
 * writeContent stores a blob under ref: 'present' when containerd already has the digest, else 'written'.
 * A write cut earlier (same ref) resumes where containerd's ingest ends.
 */
export async function writeContent(rpc: Rpc, ref: string, target: WriteTarget, open: OpenFrom, labels: Labels = {}, signal?: AbortSignal): Promise<WriteResult> {
  let resume = true;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortReason(signal);
    try {
      await writeOnce(rpc, ref, target, open, labels, resume, signal);
      return 'written';
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (isAlreadyExists(err)) return 'present';
      const code = grpcCode(err);
      // Not containerd's answer (the source failed or lied about its size): the error keeps its own identity.
      if (code === undefined) throw err;
      if (code === Code.UNAVAILABLE && /locked/.test(String((err as Error).message)) && attempt < LOCK_RETRIES) {
        await sleep(25 << attempt, undefined, signal ? { signal } : {}).catch(() => undefined);
        continue;
      }
      // An ingest left by something else under this ref (other bytes, same length): start over once from 0.
      if (code === Code.FAILED_PRECONDITION && resume) {
        resume = false;
        continue;
      }
      throw toFerry(err, rpc.address, `content write ${target.digest} (ref ${ref})`);
    }
  }
}

async function writeOnce(rpc: Rpc, ref: string, target: WriteTarget, open: OpenFrom, labels: Labels, resume: boolean, signal?: AbortSignal): Promise<void> {
  const { call, encode } = rpc.bidi(CONTENT, 'Write');
  const replies = call[Symbol.asyncIterator]() as AsyncIterator<WriteReply>;
  const onAbort = (): void => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // With expected set, containerd answers AlreadyExists right here if it holds the digest.
    call.write(encode({ action: 'STAT', ref, total: target.size, expected: target.digest }));
    const stat = await replies.next();
    if (stat.done) throw new Error('containerd closed the write stream before answering');
    // An ingest longer than the blob is stale; writing at offset 0 makes containerd truncate it.
    const from = resume && stat.value.offset <= target.size ? stat.value.offset : 0;

    // Every request gets a reply; reading them all keeps containerd from blocking on its sends.
    const acked = new Acked(from);
    const drained = drain(replies, acked);
    drained.catch(() => undefined);
    const ended = new Ending();
    drained.then(
      () => ended.end(new Error('containerd ended the write stream before the commit')),
      (err: unknown) => ended.end(err),
    );

    let sent = from;
    if (from < target.size) {
      const source = open(from)[Symbol.asyncIterator]();
      try {
        // A stalled source must not hold up a cut or aborted stream: wait for whichever comes first.
        for (let next = await ended.or(source.next()); !next.done; next = await ended.or(source.next())) {
          for (let i = 0; i < next.value.length; i += WRITE_CHUNK) {
            const data = next.value.subarray(i, i + WRITE_CHUNK);
            if (sent + data.length > target.size) throw new Error(`the source of ${target.digest} yields more than its ${target.size} bytes`);
            await ended.or(acked.upTo(sent + data.length - IN_FLIGHT));
            await send(call, encode({ action: 'WRITE', offset: sent, data }), ended);
            sent += data.length;
          }
        }
      } finally {
        // Not awaited: a source stuck in a read would keep us waiting for its cleanup.
        source.return?.()?.catch(() => undefined);
      }
    }
    if (sent !== target.size) throw new Error(`the source of ${target.digest} ended at ${sent} of ${target.size} bytes`);
    call.write(encode({ action: 'COMMIT', offset: sent, total: target.size, expected: target.digest, labels }));
    call.end();
    await drained;
  } catch (err) {
    call.cancel();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function drain(replies: AsyncIterator<WriteReply>, acked: Acked): Promise<void> {
  for (;;) {
    const r = await replies.next();
    if (r.done) return;
    acked.reached(Number(r.value.offset));
  }
}

/** Acked is how far containerd's answers say the ingest has come. */
class Acked {
  private waiting: { offset: number; wake: () => void }[] = [];

  constructor(private offset: number) {}

  reached(offset: number): void {
    if (!(offset > this.offset)) return;
    this.offset = offset;
    const still = [];
    for (const w of this.waiting) {
      if (w.offset <= offset) w.wake();
      else still.push(w);
    }
    this.waiting = still;
  }

  /** upTo resolves once the ingest has reached offset. */
  upTo(offset: number): Promise<void> {
    if (offset <= this.offset) return Promise.resolve();
    return new Promise((wake) => this.waiting.push({ offset, wake }));
  }
}

/** send waits for the stream to take more when its buffer is full, and fails if the stream dies meanwhile. */
async function send(call: ClientDuplexStream<Buffer, object>, msg: Buffer, ended: Ending): Promise<void> {
  if (call.write(msg)) return;
  await ended.or(once(call, 'drain'));
}

/**
 * Ending: the write stream's end, raced against each wait. Not Promise.race with one long-lived promise: every race
 * leaves a reaction on it that holds the race's result (here, a chunk) until it settles, so a 200 MiB blob stayed
 * in memory whole (measured); here each wait's listener goes when the wait is over.
 */
class Ending {
  private reason: { err: unknown } | undefined;
  private readonly listeners = new Set<(err: unknown) => void>();

  end(err: unknown): void {
    this.reason ??= { err };
    for (const l of this.listeners) l(err);
    this.listeners.clear();
  }

  /** or is p, unless the stream ends first: then its reason. */
  or<T>(p: Promise<T>): Promise<T> {
    if (this.reason) return Promise.reject(this.reason.err);
    return new Promise<T>((resolve, reject) => {
      this.listeners.add(reject);
      p.then(
        (v) => {
          this.listeners.delete(reject);
          resolve(v);
        },
        (err: unknown) => {
          this.listeners.delete(reject);
          reject(err);
        },
      );
    });
  }
}
