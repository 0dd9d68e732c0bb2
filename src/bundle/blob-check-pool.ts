// checkBlobs: runs checkBlob on every core (this thread and a worker per other core), largest blobs first so the
// cores finish together.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkBlob, followLayer, LayerTail, type BlobCheck, type InflateJob, type LayerFollow } from './blob-check.js';
import type { FollowAnswer, FollowMessage, InflateAnswer, InflateFailure, InflateMessage, ScanAnswer, ScanMessage } from './blob-check-worker.js';
import { DecompressError } from '../stream/decompress.js';
import { DigestMismatchError } from '../stream/hash.js';
import { Limiter } from '../stream/limiter.js';
import { workerScript } from '../stream/worker-url.js';

const script = workerScript(import.meta.url, 'blob-check-worker');

export async function checkBlobs(jobs: readonly BlobCheck[], onDone: (job: BlobCheck, faults: string[]) => void, signal?: AbortSignal): Promise<void> {
  const queue = [...jobs].sort((a, b) => b.blob.size - a.blob.size);
  const n = script ? Math.max(1, Math.min(availableParallelism(), queue.length)) : 1;
  // This thread checks blobs too: one worker fewer is one V8 heap (~27 MB) less.
  const workers = Array.from({ length: n - 1 }, () => new Worker(script!));
  const inThread = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      signal?.throwIfAborted();
      onDone(job, await checkBlob(job));
    }
  };
  try {
    await Promise.all([
      inThread(),
      ...workers.map(async (w) => {
        for (let job = queue.shift(); job; job = queue.shift()) {
          signal?.throwIfAborted();
          const current = job;
          const answer = await new Promise<{ faults?: string[]; error?: string }>((resolve, reject) => {
            const onError = (err: Error): void => reject(err);
            w.once('error', onError);
            w.once('message', (m: { faults?: string[]; error?: string }) => {
              w.off('error', onError);
              resolve(m);
            });
            w.postMessage({ ...current, id: 0 });
          });
          if (answer.error) throw new Error(`${current.entry}: ${answer.error}`);
          onDone(current, answer.faults ?? []);
        }
      }),
    ]);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** One layer under check: tell it how far the copy has written, then that it ended (or cancel it). */
export interface LayerCheck {
  grew(written: number): void;
  end(written: number): void;
  cancel(): void;
  /** What the layer decompressed to; rejects with DecompressError for corrupt data. */
  readonly result: Promise<{ diffId: string; bytes: number }>;
}

/** Progress is told to a worker at most once per this many bytes (and at the end). */
const TELL_EVERY = 1 << 20;

type Answer = { resolve(r: { diffId: string; bytes: number }): void; reject(err: unknown): void };

/**
 * LayerChecks checks layers as a pack copies them into the bundle, off the copying thread: workers (when ferry runs
 * built) decompress and hash them, each reading its layer from the bundle file behind the copy, so the copy never
 * waits for a check and nothing is queued in memory. While a copy is going on, fewer checks run (it needs a core
 * too); once it is done, one per core. A check that cannot run yet waits, its bytes safe on disk.
 */
export class LayerChecks {
  private readonly idle: Worker[] = [];
  private readonly workers = new Set<Worker>();
  private readonly answers = new Map<Worker, Answer>();
  private nextId = 1;
  private readonly slots: Limiter;
  private closed = false;

  constructor(private readonly concurrency = { copying: 1, idle: Math.max(1, availableParallelism()) }) {
    this.slots = new Limiter(concurrency.idle);
  }

  /** copying says whether a copy is going on. */
  copying(yes: boolean): void {
    this.slots.setLimit(yes ? this.concurrency.copying : this.concurrency.idle);
  }

  start(job: LayerFollow): LayerCheck {
    let written = 0;
    let told = 0;
    let ended = false;
    let cancelled = false;
    /** Set once the check runs: in this thread (tail) or on a worker (post). */
    let tail: LayerTail | undefined;
    let post: ((type: 'grew' | 'end' | 'cancel') => void) | undefined;
    const run = (): Promise<{ diffId: string; bytes: number }> =>
      this.slots.run(async () => {
        if (cancelled || this.closed) throw new Error('cancelled');
        if (!script) {
          tail = new LayerTail();
          if (ended) tail.end(written);
          else tail.grew(written);
          return await followLayer(job, tail);
        }
        const w = this.idle.pop() ?? this.spawn();
        try {
          const id = this.nextId++;
          const answer = new Promise<{ diffId: string; bytes: number }>((resolve, reject) => this.answers.set(w, { resolve, reject }));
          w.ref();
          w.postMessage({ type: 'follow', id, ...job } satisfies FollowMessage);
          post = (type) => w.postMessage((type === 'cancel' ? { type, id } : { type, id, written }) satisfies FollowMessage);
          told = written;
          post(cancelled ? 'cancel' : ended ? 'end' : 'grew');
          return await answer;
        } finally {
          post = undefined;
          this.answers.delete(w);
          if (this.workers.has(w)) {
            w.unref();
            this.idle.push(w);
          }
        }
      });
    const result = run();
    // Its failure is for whoever asks for the result, once the copy is done: not an unhandled rejection before.
    result.catch(() => undefined);
    const tell = (type: 'grew' | 'end' | 'cancel'): void => {
      if (tail) {
        if (type === 'grew') tail.grew(written);
        else if (type === 'end') tail.end(written);
        else tail.fail(new Error('cancelled'));
      } else post?.(type);
    };
    return {
      result,
      grew: (n) => {
        written = n;
        if (tail || n - told >= TELL_EVERY) {
          told = n;
          tell('grew');
        }
      },
      end: (n) => {
        written = n;
        ended = true;
        tell('end');
      },
      cancel: () => {
        cancelled = true;
        tell('cancel');
      },
    };
  }

  private spawn(): Worker {
    const w = new Worker(script!);
    w.on('message', (m: FollowAnswer) => {
      const a = this.answers.get(w);
      if (!a) return;
      this.answers.delete(w);
      if ('error' in m) a.reject(m.corrupt ? new DecompressError(m.error) : new Error(m.error));
      else a.resolve(m);
    });
    w.on('error', (err) => {
      this.workers.delete(w);
      this.answers.get(w)?.reject(err);
      this.answers.delete(w);
    });
    this.workers.add(w);
    return w;
  }

  /** close stops the workers; checks still running fail. */
  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.workers];
    this.workers.clear();
    this.idle.length = 0;
    for (const a of this.answers.values()) a.reject(new Error('cancelled'));
    this.answers.clear();
    this.slots.stop(new Error('cancelled'));
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Chunks a worker may decompress ahead of the thread that sends them (1 MiB each). */
const INFLATE_WINDOW = 4;

/** The worker loads decompress on: one, shared, holding the process open only while a blob streams. */
let inflater: { worker: Worker; active: number; listeners: Map<number, (m: InflateAnswer | ScanAnswer | { crashed: unknown }) => void> } | undefined;
let nextInflate = 1;

function inflaterWorker(): NonNullable<typeof inflater> {
  if (inflater) return inflater;
  const worker = new Worker(script!);
  const it = { worker, active: 0, listeners: new Map<number, (m: InflateAnswer | ScanAnswer | { crashed: unknown }) => void>() };
  worker.on('message', (m: InflateAnswer | ScanAnswer) => it.listeners.get(m.id)?.(m));
  worker.on('error', (crashed) => {
    if (inflater === it) inflater = undefined;
    for (const l of it.listeners.values()) l({ crashed });
  });
  worker.unref();
  inflater = it;
  return it;
}

function inflateError(f: InflateFailure): Error {
  if (f.kind === 'digest') return new DigestMismatchError(f.what, f.expected, f.actual);
  return f.kind === 'decompress' ? new DecompressError(f.message) : new Error(f.message);
}

/**
 * inflatedOnWorker streams a stored blob of a bundle decompressed: read, checked against its digest and size, and
 * decompressed within its limit on a worker (inflateBlob), a few chunks ahead, so the thread that sends the bytes on
 * only sends them. It throws as the same steps in this thread would. undefined when there are no workers (ferry run
 * from its TypeScript): the caller then does it in this thread.
 */
export function inflatedOnWorker(job: InflateJob): AsyncIterable<Buffer> | undefined {
  if (!script) return undefined;
  return (async function* (): AsyncGenerator<Buffer> {
    const it = inflaterWorker();
    const id = nextInflate++;
    const queue: Buffer[] = [];
    let end: { done: true } | { failed: Error } | undefined;
    let wake: (() => void) | undefined;
    it.listeners.set(id, (m) => {
      if ('unsafe' in m) return;
      if ('chunk' in m) queue.push(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
      else if ('done' in m) end = { done: true };
      else end = { failed: 'failed' in m ? inflateError(m.failed) : (m.crashed as Error) };
      const w = wake;
      wake = undefined;
      w?.();
    });
    if (it.active++ === 0) it.worker.ref();
    try {
      it.worker.postMessage({ type: 'inflate', id, window: INFLATE_WINDOW, ...job } satisfies InflateMessage);
      for (;;) {
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          it.worker.postMessage({ type: 'credit', id } satisfies InflateMessage);
          continue;
        }
        if (end) {
          if ('failed' in end) throw end.failed;
          return;
        }
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      if (!end) it.worker.postMessage({ type: 'stop', id } satisfies InflateMessage);
      it.listeners.delete(id);
      if (--it.active === 0) it.worker.unref();
    }
  })();
}

/**
 * scannedOnWorker has a stored layer read, checked against its digest and size, decompressed within its limit and
 * its tar entries read on the worker, whole: only the verdict comes back (the unsafe entries, none when safe), so
 * a push checks its layers on another core with no bytes crossing between threads. undefined when there are no
 * workers (ferry run from its TypeScript).
 */
export function scannedOnWorker(job: InflateJob): Promise<string[]> | undefined {
  if (!script) return undefined;
  const it = inflaterWorker();
  const id = nextInflate++;
  if (it.active++ === 0) it.worker.ref();
  return new Promise<string[]>((resolve, reject) => {
    it.listeners.set(id, (m) => {
      if ('chunk' in m || 'done' in m) return;
      if ('unsafe' in m) resolve(m.unsafe);
      else reject('failed' in m ? inflateError(m.failed) : (m.crashed as Error));
    });
    it.worker.postMessage({ type: 'scan', id, ...job } satisfies ScanMessage);
  }).finally(() => {
    it.listeners.delete(id);
    if (--it.active === 0) it.worker.unref();
  });
}
