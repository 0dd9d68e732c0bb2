// checkBlob: one blob of a bundle read from its byte range, checked against its digest and size and, for a
// layer, its diffID and uncompressed size after decompression. Returns the faults; throws only on I/O errors.
import { createReadStream } from 'node:fs';
import { compressionOf } from '../image/media-types.js';
import { decompress, DecompressError } from '../transfer/decompress.js';
import { DigestMismatchError, Sha256Counter, verified } from '../transfer/hash.js';
import type { BundleBlob } from './format.js';

export interface BlobCheck {
  path: string;
  entry: string;
  offset: number;
  /** Bytes the entry really holds; the blob record's size is what they are checked against. */
  length: number;
  blob: BundleBlob;
}

export async function checkBlob(job: BlobCheck): Promise<string[]> {
  const { blob: b, entry } = job;
  const faults: string[] = [];
  const raw = job.length === 0 ? (async function* () {})() : createReadStream(job.path, { start: job.offset, end: job.offset + job.length - 1, highWaterMark: 256 << 10 });
  const stored = verified(raw, { digest: b.digest, size: b.size, what: entry });
  try {
    if (b.diffId) {
      const compression = compressionOf(b.mediaType);
      if (!compression) return [`unknown layer media type ${b.mediaType}`];
      const h = new Sha256Counter();
      for await (const chunk of decompress(stored, compression, b.uncompressedSize ?? 0, { transient: true })) h.update(chunk);
      if (h.bytes !== b.uncompressedSize) faults.push(`decompresses to ${h.bytes} bytes, ferry.json says ${b.uncompressedSize}`);
      const d = h.digest() as string;
      if (d !== b.diffId) faults.push(`diffID after decompression is ${d}, ferry.json says ${b.diffId}`);
    } else {
      for await (const _ of stored);
    }
  } catch (err) {
    if (err instanceof DigestMismatchError) faults.push(err.message.replace(`${entry} `, ''));
    else if (err instanceof DecompressError) faults.push(err.message);
    else throw err;
  }
  return faults;
}
