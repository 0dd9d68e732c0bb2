// load: bundles into a target that runs images (a Docker daemon, containerd) through the one copy loop, with what
// a daemon's refusal of a layer means for the bundle said in the bundle's terms.
import { blobPath } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import type { ImageTarget } from '../targets/target.js';
import { bundleError, FerryError } from '../ui/errors.js';
import { copyBundles, type CopyOptions, type CopyResult } from './copy.js';

export type LoadOptions = Omit<CopyOptions, 'verb'>;

/** loadBundles applies bundles in order, as a chain (see copyBundles); a layer the daemon finds altered names its entry. */
export async function loadBundles(bundles: readonly BundleReader[], target: ImageTarget, opts: LoadOptions = {}): Promise<CopyResult> {
  try {
    return await copyBundles(bundles, target, { ...opts, verb: 'load' });
  } catch (err) {
    throw asLayerLie(err, bundles) ?? err;
  }
}

/**
 * asLayerLie turns the daemon's refusal of a layer whose content is not the diffID the image config names
 * ("invalid diffID for layer N: expected X, got Y") into the bundle error it is, naming the entry.
 */
function asLayerLie(err: unknown, bundles: readonly BundleReader[]): FerryError | undefined {
  if (!(err instanceof FerryError) || err.code !== 'LOAD_FAILED') return undefined;
  const m = /invalid diffID for layer \d+: expected "?(sha256:[a-f0-9]{64})"?, got "?(sha256:[a-f0-9]{64})"?/.exec(err.message);
  if (!m) return undefined;
  const bundle = bundles.find((b) => b.index.blobs.some((x) => x.diffId === m[1])) ?? bundles[0]!;
  const blob = bundle.index.blobs.find((b) => b.diffId === m[1]);
  return bundleError(bundle.path, blob ? blobPath(blob.digest) : undefined, `(uncompressed) diffID: expected ${m[1]}, got ${m[2]} (the daemon refused it); the load was stopped: nothing was loaded or tagged`);
}
