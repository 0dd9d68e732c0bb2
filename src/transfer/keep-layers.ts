// What ferry keeps of the layers it moved, in the layer cache, and reads back as delta references: on the packing side
// the layers it shipped; at a Docker daemon's site the layers it loaded, because a daemon hands a layer back only by
// saving whole images (seconds per image), where the cache is one file read.
import { blobPath } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import type { LayerCache } from '../catalog/layer-cache.js';
import type { DiffId, Digest } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import { decompress } from '../stream/decompress.js';
import type { ReferenceOrigin } from './delta-references.js';

/** The layer cache and its bound (FERRY_CACHE_SIZE). */
export interface KeepLayers {
  cache: LayerCache;
  maxBytes: number;
}

/** cacheOrigin reads reference layers from the layer cache. */
export function cacheOrigin(cache: LayerCache): ReferenceOrigin {
  return {
    name: `the layer cache ${cache.dir}`,
    async fetch(wanted, keeper) {
      for (const w of wanted) {
        const c = await cache.find(w.diffId);
        if (c) await keeper.put(w.diffId, decompress(cache.read(c), c.compression, Number.MAX_SAFE_INTEGER));
      }
    },
  };
}

/**
 * keepBundleLayers copies the layers a bundle stores whole (those in `only`, when given) into the cache, each checked
 * against its digest as it is read; a layer the bundle carried as a delta is kept from the file it was rebuilt in.
 */
export async function keepBundleLayers(bundle: BundleReader, keep: KeepLayers, only?: ReadonlySet<DiffId>, signal?: AbortSignal): Promise<void> {
  const { cache, maxBytes } = keep;
  for (const b of bundle.index.blobs) {
    signal?.throwIfAborted();
    const compression = compressionOf(b.mediaType);
    if (!b.diffId || !compression || b.size > maxBytes || (only && !only.has(b.diffId)) || (await cache.find(b.diffId))) continue;
    const at = bundle.entries.get(blobPath(b.digest));
    if (at) await cache.add(b.diffId, compression, { path: bundle.openPath, offset: at.offset, size: b.size, digest: b.digest });
  }
  for (const d of bundle.index.deltas ?? []) {
    signal?.throwIfAborted();
    const rebuilt = bundle.rebuiltAt(d.diffId);
    if (!rebuilt || d.size > maxBytes || (only && !only.has(d.diffId)) || (await cache.find(d.diffId))) continue;
    // Rebuilt, the layer is its uncompressed tar: its digest is its diffID.
    await cache.add(d.diffId, 'none', { path: rebuilt, offset: 0, size: d.size, digest: d.diffId as string as Digest });
  }
}
