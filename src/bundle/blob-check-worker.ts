// Worker thread entry for ferry's blob checks, one at a time per worker, so blobs are checked on every core at once.
// verify sends whole blobs (checkBlob); a pack sends the layers it copies (followLayer), each read from the bundle
// file as the copy writes it, the worker told how far the copy has come. A load has blobs read, checked and
// decompressed here (inflateBlob), their chunks moved to the thread that sends them, a few ahead of it. A push has
// stored layers decompressed and their entries checked here (scan), beside its upload.
import { parentPort } from 'node:worker_threads';
import { checkBlob, followLayer, inflateBlob, LayerTail, scanBlob, type BlobCheck, type InflateJob, type LayerFollow } from './blob-check.js';
import { DecompressError } from '../stream/decompress.js';
import { DigestMismatchError } from '../stream/hash.js';
import { LayerEntryScan } from '../tar/layer-entries.js';

export type FollowMessage =
  | ({ type: 'follow'; id: number } & LayerFollow)
  | { type: 'grew' | 'end'; id: number; written: number }
  | { type: 'cancel'; id: number };

export type FollowAnswer = { id: number; diffId: string; bytes: number } | { id: number; error: string; corrupt: boolean };

export type InflateMessage = ({ type: 'inflate'; id: number; window: number } & InflateJob) | { type: 'credit' | 'stop'; id: number };

/** What a failed inflate says, so the other side throws the same error. */
export type InflateFailure =
  | { kind: 'digest'; what: string; expected: string; actual: string }
  | { kind: 'decompress'; message: string }
  | { kind: 'other'; message: string };

export type InflateAnswer = { id: number; chunk: Uint8Array } | { id: number; done: true } | { id: number; failed: InflateFailure };

/** A push's check of a stored layer's entries, done here whole: only the verdict crosses back. */
export type ScanMessage = { type: 'scan'; id: number } & InflateJob;
export type ScanAnswer = { id: number; unsafe: string[] } | { id: number; failed: InflateFailure };

const tails = new Map<number, LayerTail>();
const inflating = new Map<number, { credit(): void; stop(): void }>();

function inflate(m: { id: number; window: number } & InflateJob): void {
  let inFlight = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  inflating.set(m.id, {
    credit: () => {
      inFlight--;
      poke();
    },
    stop: () => {
      stopped = true;
      poke();
    },
  });
  const emit = async (chunk: Buffer): Promise<void> => {
    while (inFlight >= m.window && !stopped) await new Promise<void>((r) => (wake = r));
    if (stopped) throw new Error('stopped');
    inFlight++;
    parentPort!.postMessage({ id: m.id, chunk } satisfies InflateAnswer, [chunk.buffer as ArrayBuffer]);
  };
  inflateBlob(m, emit)
    .then(
      () => parentPort!.postMessage({ id: m.id, done: true } satisfies InflateAnswer),
      (err: unknown) => {
        if (!stopped) parentPort!.postMessage({ id: m.id, failed: failureOf(err) } satisfies InflateAnswer);
      },
    )
    .finally(() => inflating.delete(m.id));
}

function failureOf(err: unknown): InflateFailure {
  return err instanceof DigestMismatchError
    ? { kind: 'digest', what: err.what, expected: err.expected, actual: err.actual }
    : { kind: err instanceof DecompressError ? 'decompress' : 'other', message: String((err as Error)?.message ?? err) };
}

/** scan decompresses a stored layer and reads its entries, stopping at the first unsafe one. */
function scan(m: ScanMessage): void {
  const entries = new LayerEntryScan();
  const found = new Error('unsafe');
  scanBlob(m, (piece) => {
    entries.write(piece);
    if (entries.unsafe) throw found;
  }).then(
    () => parentPort!.postMessage({ id: m.id, unsafe: [] } satisfies ScanAnswer),
    (err: unknown) => parentPort!.postMessage((err === found ? { id: m.id, unsafe: entries.report() } : { id: m.id, failed: failureOf(err) }) satisfies ScanAnswer),
  );
}

parentPort!.on('message', (m: (BlobCheck & { id: number; type?: undefined }) | FollowMessage | InflateMessage | ScanMessage) => {
  switch (m.type) {
    case undefined:
      checkBlob(m).then(
        (faults) => parentPort!.postMessage({ id: m.id, faults }),
        (err: unknown) => parentPort!.postMessage({ id: m.id, error: String((err as Error)?.message ?? err) }),
      );
      return;
    case 'follow': {
      const tail = new LayerTail();
      tails.set(m.id, tail);
      followLayer(m, tail)
        .then(
          (r) => parentPort!.postMessage({ id: m.id, ...r } satisfies FollowAnswer),
          (err: unknown) => parentPort!.postMessage({ id: m.id, error: String((err as Error)?.message ?? err), corrupt: err instanceof DecompressError } satisfies FollowAnswer),
        )
        .finally(() => tails.delete(m.id));
      return;
    }
    case 'grew':
      tails.get(m.id)?.grew(m.written);
      return;
    case 'end':
      tails.get(m.id)?.end(m.written);
      return;
    case 'cancel':
      tails.get(m.id)?.fail(new Error('cancelled'));
      return;
    case 'inflate':
      inflate(m);
      return;
    case 'scan':
      scan(m);
      return;
    case 'credit':
      inflating.get(m.id)?.credit();
      return;
    case 'stop':
      inflating.get(m.id)?.stop();
      return;
  }
});
