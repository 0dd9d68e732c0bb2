// decompress: a layer's stored bytes back to its tar, bounded by the size the index declares (bomb-proof).
import { constants as zlibConstants, createGunzip, type Gunzip } from 'node:zlib';
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

/**
 * A decompressor that works on the calling thread, into one reused buffer: for the checks and loads that run on
 * threads of their own. (zlib's streams run each step on the shared thread pool, where they queue in front of file
 * I/O, and allocate a fresh buffer for every output chunk.) Its generators yield the output piece by piece, each
 * valid until the next is asked for, so however much one input expands to, no more than a piece is held.
 */
export interface SyncDecompressor {
  /**
   * write decompresses input. With `space`, each piece is written into the buffer space() returns at that moment
   * (a caller filling chunks of its own saves a copy); a piece may still come from elsewhere (uncompressed input).
   */
  write(input: Buffer, space?: () => Buffer): Generator<Buffer, void, undefined>;
  /** end says the input is complete; it throws DecompressError if the compressed stream is not. */
  end(space?: () => Buffer): Generator<Buffer, void, undefined>;
  close(): void;
}

const OUT = 256 << 10;

/** syncDecompressor returns undefined for gzip when this Node's zlib offers no synchronous stream (then use decompress). */
export function syncDecompressor(compression: Compression): SyncDecompressor | undefined {
  if (compression === 'none') return new SyncNone();
  if (compression === 'zstd') return new SyncZstd();
  return SyncGunzip.create();
}

class SyncNone implements SyncDecompressor {
  *write(input: Buffer): Generator<Buffer, void, undefined> {
    if (input.length > 0) yield input;
  }

  *end(): Generator<Buffer, void, undefined> {}

  close(): void {}
}

class SyncZstd implements SyncDecompressor {
  private readonly dctx = new zstd.DCtx();
  private readonly out = Buffer.allocUnsafe(OUT);
  private last = 0;
  private sawInput = false;

  constructor() {
    this.dctx.setParameter(zstd.DParameter.windowLogMax, 27);
  }

  *write(input: Buffer, space?: () => Buffer): Generator<Buffer, void, undefined> {
    if (input.length > 0) this.sawInput = true;
    let rest = input;
    for (;;) {
      const out = space?.() ?? this.out;
      let produced: number, consumed: number;
      try {
        [this.last, produced, consumed] = this.dctx.decompressStream(out, rest);
      } catch (err) {
        throw new DecompressError(`zstd data is corrupt: ${(err as Error).message}`);
      }
      rest = rest.subarray(consumed);
      if (produced > 0) yield out.subarray(0, produced);
      // A full buffer may leave more to flush without new input, unless the frame just ended (see decompress).
      if (rest.length === 0 && (produced < out.length || this.last === 0)) return;
    }
  }

  *end(): Generator<Buffer, void, undefined> {
    if (!this.sawInput || this.last !== 0) throw new DecompressError('zstd data ends in the middle of a frame (truncated)');
  }

  close(): void {}
}

/** The synchronous side of a zlib stream, as zlib's own *Sync functions drive it: writeSync on its handle. */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
}

class SyncGunzip implements SyncDecompressor {
  private readonly out = Buffer.allocUnsafe(OUT);

  private constructor(
    private readonly stream: Gunzip,
    private readonly handle: ZlibHandle,
    private readonly state: Uint32Array,
  ) {}

  static create(): SyncGunzip | undefined {
    const stream = createGunzip();
    const inner = stream as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: unknown };
    if (typeof inner._handle?.writeSync !== 'function' || !(inner._writeState instanceof Uint32Array)) {
      stream.close();
      return undefined;
    }
    // zlib reports corrupt data by destroying the stream with the error (an 'error' event follows; errored has it now).
    stream.on('error', () => undefined);
    return new SyncGunzip(stream, inner._handle as ZlibHandle, inner._writeState);
  }

  write(input: Buffer, space?: () => Buffer): Generator<Buffer, void, undefined> {
    return this.run(zlibConstants.Z_NO_FLUSH, input, space);
  }

  end(space?: () => Buffer): Generator<Buffer, void, undefined> {
    return this.run(zlibConstants.Z_FINISH, Buffer.alloc(0), space);
  }

  private *run(flush: number, input: Buffer, space?: () => Buffer): Generator<Buffer, void, undefined> {
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      if (this.stream.destroyed) throw new DecompressError(`gzip data is corrupt: ${this.stream.errored?.message ?? 'the stream was closed'}`);
      const out = space?.() ?? this.out;
      this.handle.writeSync(flush, input, inOff, inLen, out, 0, out.length);
      if (this.stream.errored) throw new DecompressError(`gzip data is corrupt: ${this.stream.errored.message}`);
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      inOff += inLen - availIn;
      inLen = availIn;
      if (availOut < out.length) yield out.subarray(0, out.length - availOut);
      // A full output buffer means zlib may have more to give from the same input.
      if (availOut !== 0) return;
    }
  }

  close(): void {
    this.stream.close();
  }
}
