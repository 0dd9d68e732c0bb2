// Rebuilding a layer from its delta blob (read once, front to back) and the reference layers' tars (read by range):
// memory holds one frame and its dictionary at most, whatever the layer's size. The caller checks the diffID.
import type { FileHandle } from 'node:fs/promises';
import { DELTA_HEAD, recipeLength, unpackRecipe } from './blob.js';
import { DICT_AT, DictionaryRoom, FrameDecompressor } from './frames.js';
import { decodeRecipe, DeltaError, type Recipe, type RefRange } from './recipe.js';

/** ExactReader hands out exact byte counts from a stream of chunks. */
export class ExactReader {
  private readonly it: AsyncIterator<Buffer>;
  private held: Buffer = Buffer.alloc(0);
  consumed = 0;

  constructor(src: AsyncIterable<Buffer> | Iterable<Buffer>) {
    this.it = (async function* () {
      yield* src;
    })();
  }

  async read(n: number, what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.held.length === 0) {
        const next = await this.it.next();
        if (next.done) throw new DeltaError(`ends inside ${what}`);
        this.held = next.value;
      }
      const take = Math.min(n - have, this.held.length);
      parts.push(this.held.subarray(0, take));
      this.held = this.held.subarray(take);
      have += take;
    }
    this.consumed += n;
    return parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
  }

  /** atEnd is true when no byte is left. */
  async atEnd(): Promise<boolean> {
    while (this.held.length === 0) {
      const next = await this.it.next();
      if (next.done) return true;
      this.held = next.value;
    }
    return false;
  }
}

/** readRecipe reads and checks the blob's head and recipe; the reader is left at the first frame. */
export async function readRecipe(blob: ExactReader, blobSize: number): Promise<Recipe> {
  const n = recipeLength(await blob.read(DELTA_HEAD, 'its head'));
  return decodeRecipe(unpackRecipe(await blob.read(n, 'its recipe')), blobSize);
}

/** rebuild yields the layer's bytes: refs are the recipe's references, opened, in its order. */
export async function* rebuild(blob: ExactReader, recipe: Recipe, refs: readonly FileHandle[]): AsyncGenerator<Buffer> {
  const zstd = new FrameDecompressor();
  let frame = 0;
  let content: Buffer = Buffer.alloc(0);
  const room = new DictionaryRoom();
  const range = async (r: RefRange, into: Buffer = Buffer.allocUnsafe(r.length), at = 0): Promise<Buffer> => {
    const { bytesRead } = await refs[r.ref]!.read(into, at, r.length, r.offset);
    if (bytesRead !== r.length) throw new DeltaError(`reference ${recipe.references[r.ref]!.diffId} ends before byte ${r.offset + r.length}`);
    return into;
  };
  /** dictionaryOf reads a frame's reference ranges into the one dictionary buffer, after its pad. */
  const dictionaryOf = async (ranges: readonly RefRange[]): Promise<Buffer> => {
    const dict = room.take(ranges.reduce((a, r) => a + r.length, 0));
    let at = DICT_AT;
    for (const r of ranges) {
      await range(r, dict, at);
      at += r.length;
    }
    return dict;
  };
  for (const run of recipe.runs) {
    if (run.kind === 'zeros') {
      yield Buffer.alloc(run.length);
    } else if (run.kind === 'copy') {
      for (let done = 0; done < run.length; ) {
        const n = Math.min(1 << 20, run.length - done);
        yield await range({ ref: run.ref, offset: run.offset + done, length: n });
        done += n;
      }
    } else {
      for (let done = 0; done < run.length; ) {
        if (content.length === 0) {
          const f = recipe.frames[frame]!;
          const packed = await blob.read(f.compressedSize, `frame ${frame}`);
          content = zstd.decompress(packed, await dictionaryOf(f.dictionary), f.contentSize, `frame ${frame}`);
          frame++;
        }
        const n = Math.min(content.length, run.length - done);
        yield content.subarray(0, n);
        content = content.subarray(n);
        done += n;
      }
    }
  }
  if (!(await blob.atEnd())) throw new DeltaError('has bytes after its last frame');
}
