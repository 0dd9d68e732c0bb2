// failingAs: a blob read from a bundle that fails its checks while it streams becomes a bundle error naming its entry.
import { bundleError } from '../ui/errors.js';
import { DecompressError } from '../stream/decompress.js';
import { DigestMismatchError } from '../stream/hash.js';

/** failingAs passes src through; a digest or decompression failure becomes "PATH: ENTRY: what; consequence" (exit 3). */
export async function* failingAs(src: AsyncIterable<Buffer>, path: string, entry: string, consequence: string): AsyncGenerator<Buffer> {
  try {
    yield* src;
  } catch (err) {
    if (!(err instanceof DigestMismatchError || err instanceof DecompressError)) throw err;
    const what = err.message.startsWith(`${entry} `) ? err.message.slice(entry.length + 1) : err.message;
    throw bundleError(path, entry, `${what}; ${consequence}`);
  }
}
