// checkBlobs: runs checkBlob on every core (this thread and a worker per other core), largest blobs first so the
// cores finish together.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkBlob, type BlobCheck } from './blob-check.js';
import { workerScript } from '../transfer/worker-url.js';

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
