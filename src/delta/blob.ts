// The delta blob: "FRYDLT01", the recipe's compressed length (u32 big-endian), the recipe (zstd), then the frames of
// new bytes in the order the runs take them, so a reader goes through the blob once, front to back.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import zstd from 'zstd-napi/binding.js';
import type { Digest } from '../image/digest.js';
import { Sha256Counter } from '../stream/hash.js';
import { frameContentSize } from './frames.js';
import { DeltaError, LIMITS } from './recipe.js';

export const DELTA_MAGIC = Buffer.from('FRYDLT01');
export const DELTA_HEAD = DELTA_MAGIC.length + 4;

/** writeDeltaBlob puts the pieces together in `out`, hashing as it writes. */
export async function writeDeltaBlob(out: string, recipe: Buffer, framesPath: string): Promise<{ size: number; digest: Digest }> {
  const head = Buffer.alloc(DELTA_HEAD);
  DELTA_MAGIC.copy(head);
  const body = Buffer.allocUnsafe(zstd.compressBound(recipe.length));
  const n = zstd.compress(body, recipe, 19);
  if (n > LIMITS.recipeCompressed) throw new DeltaError(`recipe compresses to ${n} bytes, more than a reader takes`);
  head.writeUInt32BE(n, DELTA_MAGIC.length);
  const h = new Sha256Counter();
  const fh = await open(out, 'w');
  try {
    for (const b of [head, body.subarray(0, n)]) {
      h.update(b);
      await fh.write(b);
    }
    for await (const chunk of createReadStream(framesPath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      h.update(chunk);
      await fh.write(chunk);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { size: h.bytes, digest: h.digest() };
}

/** recipeLength reads the blob's head, refusing what is no delta. */
export function recipeLength(head: Buffer): number {
  if (head.length < DELTA_HEAD || !head.subarray(0, DELTA_MAGIC.length).equals(DELTA_MAGIC)) throw new DeltaError('is not a ferry delta (no FRYDLT01 magic)');
  const n = head.readUInt32BE(DELTA_MAGIC.length);
  if (n === 0 || n > LIMITS.recipeCompressed) throw new DeltaError(`declares a ${n}-byte recipe (at most ${LIMITS.recipeCompressed})`);
  return n;
}

/** unpackRecipe decompresses the recipe, bounded by LIMITS.recipe. */
export function unpackRecipe(packed: Buffer): Buffer {
  const size = frameContentSize(packed, 'recipe');
  if (size === null || size > LIMITS.recipe) throw new DeltaError(`recipe declares ${size ?? 'no'} size (at most ${LIMITS.recipe})`);
  const out = Buffer.allocUnsafe(size);
  let n: number;
  try {
    n = new zstd.DCtx().decompress(out, packed);
  } catch (err) {
    throw new DeltaError(`recipe does not decompress: ${(err as Error).message}`);
  }
  if (n !== size) throw new DeltaError(`recipe decompresses to ${n} bytes, not its declared ${size}`);
  return out;
}
