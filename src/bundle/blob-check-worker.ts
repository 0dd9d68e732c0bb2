// Worker thread entry for checkBlob: verify spends its time hashing and decompressing, so blobs are checked
// on every core at once, one blob per worker at a time.
import { parentPort } from 'node:worker_threads';
import { checkBlob, type BlobCheck } from './blob-check.js';

parentPort!.on('message', (job: BlobCheck & { id: number }) => {
  checkBlob(job).then(
    (faults) => parentPort!.postMessage({ id: job.id, faults }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: String((err as Error)?.message ?? err) }),
  );
});
