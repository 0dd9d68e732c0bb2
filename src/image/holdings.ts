// Holdings: what a target holds, as a table of layers and the images stacked from them. Inventories, receipts and
// the catalog share this shape: compact (an image names its layers by index) and deterministic (everything sorted).
import type { DiffId, Digest } from './digest.js';

/** A blob known to carry a layer at the target: a registry's copy, or the one a bundle shipped. */
export interface HeldBlob {
  digest: Digest;
  size: number;
  mediaType: string;
}

export interface HeldLayer {
  diffId: DiffId;
  /** Uncompressed bytes, when known. */
  size?: number;
  blobs?: HeldBlob[];
  /** The bundle that shipped this layer, when a bundle did. */
  carriedBy?: string;
}

export type ImageStatus = 'loaded' | 'pushed' | 'present' | 'failed';

export interface HeldImage {
  /** The config digest (docker's image ID). */
  id: Digest;
  /** Full references it is known by at the target. */
  refs: string[];
  manifest?: Digest;
  /** Indexes into the layers table, bottom layer first. */
  layers: number[];
  /** Receipts only: what the operation did with this image. */
  status?: ImageStatus;
  error?: string;
}

export interface Holdings {
  layers: HeldLayer[];
  images: HeldImage[];
}

export interface ImageToHold {
  id: Digest;
  refs?: readonly string[];
  manifest?: Digest;
  diffIds: readonly DiffId[];
  /** The blob each layer is stored as at the target (or in the bundle that carried it), where known. */
  blobs?: readonly (HeldBlob | undefined)[];
  /** Uncompressed sizes, where known. */
  sizes?: readonly (number | undefined)[];
  carriedBy?: string;
  status?: ImageStatus;
  error?: string;
}

/** HoldingsBuilder gathers images (and loose layers) and writes them in the sorted, indexed form. */
export class HoldingsBuilder {
  private readonly layers = new Map<DiffId, { size?: number; blobs: Map<Digest, HeldBlob>; carriedBy?: string }>();
  private readonly images = new Map<string, { id: Digest; refs: Set<string>; manifest?: Digest; diffIds: readonly DiffId[]; status?: ImageStatus; error?: string }>();

  addLayer(diffId: DiffId, info: { blob?: HeldBlob | undefined; size?: number | undefined; carriedBy?: string | undefined } = {}): void {
    let l = this.layers.get(diffId);
    if (!l) this.layers.set(diffId, (l = { blobs: new Map() }));
    if (info.size !== undefined) l.size = info.size;
    if (info.blob) l.blobs.set(info.blob.digest, { digest: info.blob.digest, size: info.blob.size, mediaType: info.blob.mediaType });
    if (info.carriedBy !== undefined) l.carriedBy ??= info.carriedBy;
  }

  addImage(img: ImageToHold): void {
    img.diffIds.forEach((d, i) => this.addLayer(d, { blob: img.blobs?.[i], size: img.sizes?.[i], carriedBy: img.carriedBy }));
    // One entry per image and manifest: the same config under two manifests is two distributable images.
    const key = `${img.id} ${img.manifest ?? ''}`;
    const known = this.images.get(key);
    if (known) {
      for (const r of img.refs ?? []) known.refs.add(r);
      // A failure anywhere is worth reporting over a success elsewhere.
      if (img.status === 'failed' || known.status === undefined) {
        if (img.status !== undefined) known.status = img.status;
        if (img.error !== undefined) known.error = img.error;
      }
      return;
    }
    this.images.set(key, {
      id: img.id,
      refs: new Set(img.refs ?? []),
      ...(img.manifest ? { manifest: img.manifest } : {}),
      diffIds: img.diffIds,
      ...(img.status ? { status: img.status } : {}),
      ...(img.error ? { error: img.error } : {}),
    });
  }

  build(): Holdings {
    const diffIds = [...this.layers.keys()].sort();
    const at = new Map(diffIds.map((d, i) => [d, i]));
    const layers: HeldLayer[] = diffIds.map((d) => {
      const l = this.layers.get(d)!;
      const blobs = [...l.blobs.values()].sort((a, b) => a.digest.localeCompare(b.digest));
      return { diffId: d, ...(l.size !== undefined ? { size: l.size } : {}), ...(blobs.length ? { blobs } : {}), ...(l.carriedBy !== undefined ? { carriedBy: l.carriedBy } : {}) };
    });
    const images: HeldImage[] = [...this.images.values()]
      .map((i) => ({
        id: i.id,
        refs: [...i.refs].sort(),
        ...(i.manifest ? { manifest: i.manifest } : {}),
        layers: i.diffIds.map((d) => at.get(d)!),
        ...(i.status ? { status: i.status } : {}),
        ...(i.error ? { error: i.error } : {}),
      }))
      .sort((a, b) => a.id.localeCompare(b.id) || (a.manifest ?? '').localeCompare(b.manifest ?? ''));
    return { layers, images };
  }
}

/** diffIdsOf lists an image's layers; the indexes were checked when the document was read. */
export function diffIdsOf(h: Holdings, img: HeldImage): DiffId[] {
  return img.layers.map((i) => h.layers[i]!.diffId);
}

/** badLayerIndex finds an image that names a layer the table lacks, for readers to refuse the document. */
export function badLayerIndex(h: Holdings): string | undefined {
  for (const [k, img] of h.images.entries()) {
    const bad = img.layers.find((i) => !Number.isInteger(i) || i < 0 || i >= h.layers.length);
    if (bad !== undefined) return `/images/${k}/layers names layer ${bad}, but there are ${h.layers.length}`;
  }
  return undefined;
}
