// planIncremental: for these images and this target, which layers must travel and which the bundle relies on.
// A layer stays behind only when every image that uses it finds it at the target.
import { chainIds, type DiffId, type Digest } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { KnownBlob, TargetState } from './target-state.js';

export interface ImageToPlan {
  diffIds: readonly DiffId[];
  /** Layer blobs of a manifest kept byte for byte: the target must hold these exact blobs (or their chain). */
  keptLayers?: readonly BlobDescriptor[];
}

export interface IncrementalPlan {
  /** Layers of ferry-written manifests that stay behind, with the blob they are named by when one is known. */
  reliedLayers: Map<DiffId, KnownBlob | undefined>;
  /** Blobs of kept manifests that stay behind, with their layer. */
  reliedBlobs: Map<Digest, BlobDescriptor & { diffId: DiffId; carriedBy?: string }>;
}

export function planIncremental(images: readonly ImageToPlan[], target: TargetState): IncrementalPlan {
  // A use that finds its layer missing vetoes leaving that layer (or blob) behind for every image.
  const layerOk = new Map<DiffId, boolean>();
  const blobOk = new Map<Digest, boolean>();
  const blobLayer = new Map<Digest, BlobDescriptor & { diffId: DiffId }>();
  for (const img of images) {
    const chains = chainIds(img.diffIds);
    img.diffIds.forEach((d, i) => {
      const onChain = target.chains.has(chains[i]!);
      const kept = img.keptLayers?.[i];
      if (kept) {
        blobLayer.set(kept.digest, { ...kept, diffId: d });
        const ok = onChain || target.blobs.has(kept.digest);
        blobOk.set(kept.digest, (blobOk.get(kept.digest) ?? true) && ok);
        return;
      }
      const known = target.known.get(d);
      const ok = onChain || (known !== undefined && target.blobs.has(known.digest));
      layerOk.set(d, (layerOk.get(d) ?? true) && ok);
    });
  }
  const reliedLayers = new Map<DiffId, KnownBlob | undefined>();
  for (const [d, ok] of layerOk) if (ok) reliedLayers.set(d, target.known.get(d));
  const reliedBlobs = new Map<Digest, BlobDescriptor & { diffId: DiffId; carriedBy?: string }>();
  for (const [digest, ok] of blobOk) {
    if (!ok) continue;
    const b = blobLayer.get(digest)!;
    const carriedBy = target.carriers.get(digest) ?? target.carriers.get(b.diffId);
    reliedBlobs.set(digest, { ...b, ...(carriedBy !== undefined ? { carriedBy } : {}) });
  }
  return { reliedLayers, reliedBlobs };
}
