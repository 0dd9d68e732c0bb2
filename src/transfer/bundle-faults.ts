// Bundle faults found while copying become bundle errors naming the entry: a blob that fails its checks as it
// streams (failingAs), a layer a target refused for not being the diffID its config names (asLayerLie).
import { blobPath } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { bundleError, FerryError, LayerDiffIdError } from '../ui/errors.js';
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

/**
 * asLayerLie turns a target's refusal of a layer whose content is not the diffID the image config names
 * ("invalid diffID for layer N: expected X, got Y") into the bundle error it is, naming the entry.
 */
export function asLayerLie(err: unknown, bundles: readonly BundleReader[], stopped: string): FerryError | undefined {
  if (!(err instanceof FerryError) || err.code !== 'LOAD_FAILED') return undefined;
  let expected: string;
  let actual: string;
  if (err instanceof LayerDiffIdError) ({ expected, actual } = err);
  else {
    // dockerd says it only in words: "invalid diffID for layer N: expected E, got G".
    const m = /invalid diffID for layer \d+: expected "?(sha256:[a-f0-9]{64})"?, got "?(sha256:[a-f0-9]{64})"?/.exec(err.message);
    if (!m) return undefined;
    [expected, actual] = [m[1]!, m[2]!];
  }
  const bundle = bundles.find((b) => b.index.blobs.some((x) => x.diffId === expected)) ?? bundles[0]!;
  const blob = bundle.index.blobs.find((b) => b.diffId === expected);
  return bundleError(bundle.path, blob ? blobPath(blob.digest) : undefined, `(uncompressed) diffID: expected ${expected}, got ${actual} (the target refused it); ${stopped}`);
}
