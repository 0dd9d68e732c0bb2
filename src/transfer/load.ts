// load: bundles into a target that runs images (a Docker daemon, containerd) through the one copy loop.
import type { BundleReader } from '../bundle/reader.js';
import type { ImageTarget } from '../targets/target.js';
import { copyBundles, type CopyOptions, type CopyResult } from './copy.js';

export type LoadOptions = Omit<CopyOptions, 'verb'>;

/** loadBundles applies bundles in order, as a chain (see copyBundles). */
export async function loadBundles(bundles: readonly BundleReader[], target: ImageTarget, opts: LoadOptions = {}): Promise<CopyResult> {
  return copyBundles(bundles, target, { ...opts, verb: 'load' });
}
