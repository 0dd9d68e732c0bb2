// What a pack does besides moving images: offer deltas for a thin bundle's layers (references read from --have
// bundles, the layer cache and the sources' other images), and keep the layers it shipped in the layer cache.
import { BundleReader } from '../bundle/reader.js';
import type { DeltaOffer } from '../bundle/writer.js';
import type { LayerCache } from '../catalog/layer-cache.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { DiffId } from '../image/digest.js';
import type { ImageSource, SourceImage } from '../sources/source.js';
import { PackDeltas } from './delta-offer.js';
import { cacheOrigin, keepBundleLayers, type KeepLayers } from './keep-layers.js';
import { bundleOrigin, ReferenceLayers, sourceOrigin, type ReferenceOrigin } from './delta-references.js';
import type { PackPlan } from './pack-plan.js';

export interface PackExtras {
  /** Deltas on offer to the bundle being written (thin packs, unless --no-delta). */
  offer?: DeltaOffer;
  /** shipped keeps the layers a committed bundle stores whole in the layer cache, and prunes it to its bound. */
  shipped(bundlePath: string): Promise<void>;
  close(): Promise<void>;
}

export interface ExtrasOptions {
  parts: readonly { source: ImageSource; resolved: { images: readonly SourceImage[] } }[];
  plan?: PackPlan;
  haves: readonly string[];
  delta: boolean;
  cache?: LayerCache;
  cacheBytes: number;
  signal?: AbortSignal;
}

export async function packExtras(o: ExtrasOptions): Promise<PackExtras> {
  const deltas = o.plan && o.delta ? await packDeltas(o) : undefined;
  return {
    ...(deltas ? { offer: deltas.offer } : {}),
    shipped: async (path) => {
      if (o.cache) await cacheShipped(path, { cache: o.cache, maxBytes: o.cacheBytes });
    },
    close: async () => deltas?.close(),
  };
}

/** packDeltas offers deltas for a thin pack's layers; undefined when no origin of references is at hand. */
async function packDeltas(o: ExtrasOptions): Promise<PackDeltas | undefined> {
  const plan = o.plan!;
  const origins: ReferenceOrigin[] = [];
  const readers: BundleReader[] = [];
  for (const h of o.haves) {
    const reader = await BundleReader.open(h).catch(() => undefined);
    if (reader) (readers.push(reader), origins.push(bundleOrigin(reader)));
  }
  // The cache before the sources: a file read beats a daemon saving whole images.
  if (o.cache) origins.push(cacheOrigin(o.cache));
  for (const p of o.parts) {
    const origin = sourceOrigin(p.source, (ds) => [...new Set(ds.flatMap((d) => plan.refsHolding.get(d) ?? []))]);
    if (origin) origins.push(origin);
  }
  if (origins.length === 0) return undefined;
  const refs = new ReferenceLayers(origins, () => Promise.all(readers.map((r) => r.close())).then(() => undefined));
  const blobOf = (d: DiffId): BlobDescriptor | undefined => {
    const k = plan.known.get(d);
    return k && { digest: k.digest, size: k.size, mediaType: k.mediaType };
  };
  return new PackDeltas({ images: o.parts.flatMap((p) => p.resolved.images), held: (d) => plan.reliedLayers.has(d), byRepository: plan.byRepository, blobOf }, refs, o.signal ? { signal: o.signal } : {});
}

/** cacheShipped keeps each layer a committed bundle stores whole in the cache, then prunes it. */
async function cacheShipped(path: string, keep: KeepLayers): Promise<void> {
  const reader = await BundleReader.open(path);
  try {
    await keepBundleLayers(reader, keep);
  } finally {
    await reader.close();
  }
  await keep.cache.prune(keep.maxBytes);
}
