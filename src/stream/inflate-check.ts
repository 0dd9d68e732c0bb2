// inflateChecked: a compressed layer passed on as it is, while its uncompressed form is checked on the side (size,
// diffID, and whatever the caller inspects), for targets that take layers as stored and unpack them out of our sight.
import type { Compression } from '../image/media-types.js';
import { decompress } from './decompress.js';
import { sized, verified } from './hash.js';
import { ByteQueue } from './queue.js';

/** Compressed bytes held between the sender and the check: the check runs at its own pace, within this. */
const QUEUED = 2 << 20;

export interface Uncompressed {
  /** The diffID to hash against; undefined checks size (and inspect) only. */
  digest: string | undefined;
  size: number;
  what: string;
}

/**
 * inflateChecked yields src's chunks unchanged (from `skip` bytes on: a resumed write sends only the rest, but the
 * check reads from the start), and throws rather than end if the uncompressed stream is larger or smaller than
 * `expect.size` or hashes to another digest, or if `inspect` throws on an uncompressed chunk (each valid only during
 * the call). A bomb stops as soon as it passes the declared size.
 */
export async function* inflateChecked(
  src: AsyncIterable<Buffer>,
  compression: Compression,
  expect: Uncompressed,
  skip = 0,
  inspect?: (uncompressed: Buffer) => void,
): AsyncGenerator<Buffer> {
  const queue = new ByteQueue(QUEUED);
  const checking = (async () => {
    const inflated = decompress(queue, compression, expect.size, { transient: true });
    const digest = expect.digest;
    for await (const piece of sized(digest === undefined ? inflated : verified(inflated, { ...expect, digest }), expect.size, expect.what)) inspect?.(piece);
  })();
  checking.catch((err: unknown) => queue.fail(err));
  let at = 0;
  let finished = false;
  try {
    for await (const chunk of src) {
      await queue.push(chunk);
      const from = Math.max(0, skip - at);
      at += chunk.length;
      if (from < chunk.length) yield from === 0 ? chunk : chunk.subarray(from);
    }
    queue.end();
    await checking;
    finished = true;
  } finally {
    if (!finished) {
      queue.fail(new Error('the stream was stopped'));
      await checking.catch(() => undefined);
    }
  }
}
