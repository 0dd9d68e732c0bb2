// zstd frames of a delta's new bytes, each compressed against reference ranges given as a raw dictionary, with
// parameters that keep one frame's memory bounded (issue 15's measurements: chainLog 22 / hashLog 21 stays under
// 100 MB where level 19's defaults reach 210 MB once the prefix passes 4 MiB).
import zstd from 'zstd-napi/binding.js';
import { DeltaError, LIMITS } from './recipe.js';

/**
 * A raw dictionary that happened to start with zstd's dictionary magic would be parsed as a trained dictionary, and
 * the binding offers no way to say "raw content": both sides put eight zero bytes in front of every dictionary.
 */
const DICT_PAD = Buffer.alloc(8);

/** Where a dictionary's bytes start in the buffer given to compress and decompress: after the pad. */
export const DICT_AT = DICT_PAD.length;

/**
 * DictionaryRoom is one buffer for every frame's dictionary, the zero pad in front: a frame's dictionary is up to
 * 16 MiB, and a fresh buffer for it, then another with the pad in front, per frame was most of a delta pack's
 * memory above its zstd tables.
 */
export class DictionaryRoom {
  private buf = Buffer.alloc(0);

  /** take is room for a dictionary of `length` bytes from DICT_AT on, valid until the next take. */
  take(length: number): Buffer {
    const need = DICT_AT + length;
    if (this.buf.length < need) this.buf = Buffer.alloc(Math.max(need, Math.min(DICT_AT + LIMITS.dictionary, this.buf.length * 2)));
    return this.buf.subarray(0, need);
  }
}

/** windowLog covers a whole dictionary and frame, so a match may reach back to the first dictionary byte. */
const WINDOW_LOG = Math.ceil(Math.log2(LIMITS.dictionary + LIMITS.frameContent + DICT_PAD.length));

/**
 * FrameCompressor keeps one zstd context for every frame of a process (its tables are the memory that matters;
 * the binding frees a context only when the garbage collector finds it). Each frame's window and tables are sized
 * to that frame and its dictionary, so the many small frames cost little.
 */
export class FrameCompressor {
  private static shared: FrameCompressor | undefined;
  private readonly cctx = new zstd.CCtx();
  private out = Buffer.alloc(0);

  static get(): FrameCompressor {
    return (FrameCompressor.shared ??= new FrameCompressor());
  }

  /** compress returns a view of the frame, valid until the next call; `padded` is from a DictionaryRoom. */
  compress(content: Buffer, padded: Buffer, level: number): Buffer {
    const c = this.cctx;
    const windowLog = Math.max(10, Math.min(WINDOW_LOG, Math.ceil(Math.log2(content.length + padded.length))));
    c.reset(zstd.ResetDirective.sessionAndParameters);
    c.setParameter(zstd.CParameter.compressionLevel, level);
    c.setParameter(zstd.CParameter.windowLog, windowLog);
    c.setParameter(zstd.CParameter.chainLog, Math.min(22, windowLog));
    c.setParameter(zstd.CParameter.hashLog, Math.min(21, windowLog));
    c.setParameter(zstd.CParameter.contentSizeFlag, 1);
    if (padded.length > DICT_AT) c.loadDictionary(padded);
    const bound = zstd.compressBound(content.length);
    if (this.out.length < bound) this.out = Buffer.allocUnsafe(bound);
    const n = c.compress2(this.out, content);
    return this.out.subarray(0, n);
  }
}

/** frameContentSize reads the size a zstd frame declares; a frame whose header does not parse is a DeltaError. */
export function frameContentSize(frame: Buffer, what: string): number | null {
  try {
    return zstd.getFrameContentSize(frame);
  } catch (err) {
    throw new DeltaError(`${what} is not a zstd frame: ${(err as Error).message}`);
  }
}

export class FrameDecompressor {
  private readonly dctx = new zstd.DCtx();

  /**
   * decompress returns exactly `size` bytes, or throws DeltaError: a frame that makes more or fewer is refused.
   * `padded` is from a DictionaryRoom.
   */
  decompress(frame: Buffer, padded: Buffer, size: number, what: string): Buffer {
    const d = this.dctx;
    d.reset(zstd.ResetDirective.sessionAndParameters);
    d.setParameter(zstd.DParameter.windowLogMax, WINDOW_LOG);
    if (padded.length > DICT_AT) d.loadDictionary(padded);
    const declared = frameContentSize(frame, what);
    if (declared !== size) throw new DeltaError(`${what} declares ${declared ?? 'no'} content size, not the recipe's ${size} bytes`);
    const out = Buffer.allocUnsafe(size);
    let n: number;
    try {
      n = d.decompress(out, frame);
    } catch (err) {
      throw new DeltaError(`${what} does not decompress: ${(err as Error).message}`);
    }
    if (n !== size) throw new DeltaError(`${what} makes ${n} bytes, not ${size}`);
    return out;
  }
}
