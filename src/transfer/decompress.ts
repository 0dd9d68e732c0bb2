// decompress: a layer's stored bytes back to its tar, bounded by the size the index declares (bomb-proof).
import { createGunzip } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import type { Compression } from '../image/media-types.js';
import { piped } from './piped.js';

export class DecompressError extends Error {}

/**
 * decompress yields the uncompressed bytes; it throws DecompressError once more than `limit` bytes come out,
 * so a small blob that expands without end stops at the declared size. Consumers may keep what they get, unless
 * they pass `transient`: then zstd output is written into one reused buffer, each chunk valid until the next
 * is asked for (for hashing, where fresh megabyte buffers would only feed the garbage collector).
 */
export async function* decompress(src: AsyncIterable<Buffer>, compression: Compression, limit: number, opts: { transient?: boolean } = {}): AsyncGenerator<Buffer> {
  let total = 0;
  const bounded = (b: Buffer): Buffer => {
    total += b.length;
    if (total > limit) throw new DecompressError(`decompresses to more than its declared ${limit} bytes`);
    return b;
  };
  if (compression === 'none') {
    for await (const chunk of src) yield bounded(chunk);
  } else if (compression === 'gzip') {
    // 256 KiB output chunks: zlib's default 16 KiB makes gunzip spend twice as long crossing into JavaScript.
    const gunzip = piped(src, createGunzip({ chunkSize: 256 << 10 }));
    try {
      for await (const chunk of gunzip) yield bounded(chunk as Buffer);
    } catch (err) {
      // zlib's own complaints (Z_DATA_ERROR…) mean corrupt data; anything else came from the source and stays itself.
      if (err instanceof DecompressError || !String((err as { code?: unknown }).code ?? '').startsWith('Z_')) throw err;
      throw new DecompressError(`gzip data is corrupt: ${(err as Error).message}`);
    } finally {
      gunzip.destroy();
    }
  } else {
    yield* zstdDecompress(src, bounded, opts.transient ?? false);
  }
}

async function* zstdDecompress(src: AsyncIterable<Buffer>, bounded: (b: Buffer) => Buffer, transient: boolean): AsyncGenerator<Buffer> {
  const dctx = new zstd.DCtx();
  // Refuse frames that ask for windows beyond 128 MiB: a memory bomb rather than a real layer.
  dctx.setParameter(zstd.DParameter.windowLogMax, 27);
  // A reused buffer is zstd's own block size (128 KiB, stays in cache); kept ones are 1 MiB, so a consumer that
  // queues them (a tar stream to a daemon) handles few, large chunks.
  const outSize = transient ? zstd.dStreamOutSize() : 1 << 20;
  const reused = transient ? Buffer.allocUnsafe(outSize) : undefined;
  let last = 0;
  let sawInput = false;
  for await (let chunk of src) {
    if (chunk.length > 0) sawInput = true;
    while (chunk.length > 0) {
      const out = reused ?? Buffer.allocUnsafe(outSize);
      let ret: number, produced: number, consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(out, chunk);
      } catch (err) {
        throw new DecompressError(`zstd data is corrupt: ${(err as Error).message}`);
      }
      last = ret;
      chunk = chunk.subarray(consumed);
      if (produced > 0) yield bounded(out.subarray(0, produced));
      // Output buffer full: more may be pending without new input (unless the frame just ended: 0 says it is
      // decoded and flushed, and another call would start looking for the next frame).
      while (produced === outSize && last !== 0) {
        const more = reused ?? Buffer.allocUnsafe(outSize);
        try {
          [ret, produced] = dctx.decompressStream(more, Buffer.alloc(0));
        } catch (err) {
          throw new DecompressError(`zstd data is corrupt: ${(err as Error).message}`);
        }
        last = ret;
        if (produced > 0) yield bounded(more.subarray(0, produced));
      }
    }
  }
  if (!sawInput || last !== 0) throw new DecompressError('zstd data ends in the middle of a frame (truncated)');
}
