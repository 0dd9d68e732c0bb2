// Receipts: what a load or push left at the target, written beside the operation to ride back on the next trip.
import type { BundleImage, BundleIndex } from '../bundle/format.js';
import type { Digest } from '../image/digest.js';
import { RECEIPT_MEDIA_TYPE, type Receipt, type TargetInfo } from './documents.js';
import { HoldingsBuilder, type ImageStatus } from '../image/holdings.js';

/** An image of a bundle and what happened to it: its names at the target, and (pushes) the blobs it is stored as. */
export interface ImageOutcome {
  image: BundleImage;
  refs: string[];
  status: ImageStatus;
  error?: string;
  /** Pushes may store layers as other blobs than the bundle's (zstd converted to gzip): those, by diffID. */
  storedAs?: ReadonlyMap<string, { digest: Digest; size: number; mediaType: string }>;
  manifest?: Digest;
}

export function makeReceipt(operation: 'load' | 'push', target: TargetInfo, bundles: readonly BundleIndex[], outcomes: readonly { bundle: BundleIndex; images: readonly ImageOutcome[] }[], failures: readonly string[]): Receipt {
  const b = new HoldingsBuilder();
  for (const { bundle, images } of outcomes) {
    const held = new Map(bundle.blobs.map((x) => [x.digest as string, x]));
    const relied = new Map(bundle.reliesOn.map((x) => [x.digest as string, x]));
    for (const o of images) {
      for (const l of o.image.layers) {
        const h = held.get(l.digest);
        const r = h ? undefined : relied.get(l.digest);
        const stored = o.storedAs?.get(l.diffId);
        const blob = stored ?? h ?? r;
        b.addLayer(l.diffId, {
          ...(blob ? { blob: { digest: blob.digest, size: blob.size, mediaType: blob.mediaType } } : {}),
          size: (h ?? r)?.uncompressedSize,
          carriedBy: h ? bundle.id : r?.carriedBy,
        });
      }
      b.addImage({
        id: o.image.imageId,
        refs: o.refs,
        manifest: o.manifest ?? o.image.manifest.digest,
        diffIds: o.image.layers.map((l) => l.diffId),
        status: o.status,
        ...(o.error ? { error: o.error } : {}),
      });
    }
  }
  return {
    mediaType: RECEIPT_MEDIA_TYPE,
    version: 1,
    created: new Date().toISOString(),
    operation,
    target,
    bundles: bundles.map((x) => x.id),
    ...b.build(),
    failures: [...failures],
  };
}
