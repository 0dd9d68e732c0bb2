// ThinPlan: what a thin bundle leaves behind, applied by pack as layers pass (the bundle writer only records what
// its images then rely on). A layer is left out by its diffID, or, for a kept manifest, by its exact blob.
import type { ReliedLayer } from '../bundle/writer.js';
import type { DiffId, Digest } from '../image/digest.js';
import { OCI_LAYER_TAR } from '../image/media-types.js';
import type { IncrementalPlan } from '../sync/plan.js';

export class ThinPlan {
  /**
   * Layers to leave out, by diffID, named by a known blob, or undefined until the layer passes once and its
   * uncompressed form names it (a daemon's export says which layer is which only by hashing it).
   */
  private readonly layers = new Map<DiffId, ReliedLayer | undefined>();
  /** Blobs of kept manifests to leave out. */
  private readonly blobs = new Map<Digest, ReliedLayer>();

  constructor(plan?: IncrementalPlan) {
    if (!plan) return;
    for (const [d, b] of plan.reliedLayers) {
      this.layers.set(d, b && { digest: b.digest, size: b.size, mediaType: b.mediaType, diffId: d, ...(b.uncompressedSize !== undefined ? { uncompressedSize: b.uncompressedSize } : {}), ...(b.carriedBy !== undefined ? { carriedBy: b.carriedBy } : {}) });
    }
    for (const [d, b] of plan.reliedBlobs) this.blobs.set(d, b);
  }

  /** staysBehind: the layer is not to be stored, whether or not it is named yet. */
  staysBehind(diffId: DiffId): boolean {
    return this.layers.has(diffId);
  }

  /** leavesOut: the layer stays behind and is already named, so a source need not hand it over at all. */
  leavesOut(diffId: DiffId): boolean {
    return this.layers.get(diffId) !== undefined;
  }

  leavesOutBlob(digest: Digest): boolean {
    return this.blobs.has(digest);
  }

  /** layersOfSize lists the named layers left behind with this uncompressed size (see BundleWriter.layersOfSize). */
  layersOfSize(size: number): DiffId[] {
    return [...this.layers.values()].filter((l) => l !== undefined && l.uncompressedSize === size).map((l) => l!.diffId);
  }

  /** passed names a layer that stays behind once it has been seen: by its known blob, else by its uncompressed form. */
  passed(diffId: DiffId, uncompressedSize: number): ReliedLayer {
    const relied = this.layers.get(diffId) ?? { digest: diffId as string as Digest, size: uncompressedSize, mediaType: OCI_LAYER_TAR, diffId, uncompressedSize };
    this.layers.set(diffId, relied);
    return relied;
  }

  /** What the bundle writer asks for a layer of an image it does not store. */
  readonly elsewhere = {
    layer: (diffId: DiffId): ReliedLayer | undefined => this.layers.get(diffId),
    blob: (digest: Digest): ReliedLayer | undefined => this.blobs.get(digest),
  };
}
