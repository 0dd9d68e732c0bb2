// Worker thread entry for ferry's blob checks, one at a time per worker, so blobs are checked on every core at once.
// verify sends whole blobs (checkBlob); a pack sends the layers it copies (followLayer), each read from the bundle
// file as the copy writes it, the worker told how far the copy has come.
import { parentPort } from 'node:worker_threads';
import { checkBlob, followLayer, LayerTail, type BlobCheck, type LayerFollow } from './blob-check.js';
import { DecompressError } from '../transfer/decompress.js';

export type FollowMessage =
  | ({ type: 'follow'; id: number } & LayerFollow)
  | { type: 'grew' | 'end'; id: number; written: number }
  | { type: 'cancel'; id: number };

export type FollowAnswer = { id: number; diffId: string; bytes: number } | { id: number; error: string; corrupt: boolean };

const tails = new Map<number, LayerTail>();

parentPort!.on('message', (m: (BlobCheck & { id: number; type?: undefined }) | FollowMessage) => {
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
  }
});
