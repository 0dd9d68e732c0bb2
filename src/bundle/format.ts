// The v1 bundle format: ferry.json's shape and the OCI and docker-save views built from the same records.
import type { DiffId, Digest } from '../image/digest.js';
import { hex } from '../image/digest.js';
import type { Platform } from '../image/platform.js';
import type { DockerSaveEntry, OciDescriptor, OciIndex } from '../image/model.js';
import { OCI_INDEX } from '../image/media-types.js';
import { formatReference, parseReference } from '../image/reference.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.ferry.bundle.v1+json';
export const BUNDLE_VERSION = 1;
/** Version 2 is version 1 with delta layers; a bundle without them is written as version 1, so older ferries read it. */
export const BUNDLE_MEDIA_TYPE_V2 = 'application/vnd.ferry.bundle.v2+json';
export const BUNDLE_VERSION_V2 = 2;
/** A delta blob: a recipe and new bytes that rebuild a layer from reference layers (src/delta/). */
export const DELTA_MEDIA_TYPE = 'application/vnd.ferry.layer.delta.v1';
export const FERRY_INDEX = 'ferry.json';
export const OCI_LAYOUT = 'oci-layout';
export const OCI_LAYOUT_BYTES = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

export interface BundleBlob {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Layers only: sha256 of the uncompressed tar, and its length. */
  diffId?: DiffId;
  uncompressedSize?: number;
}

export interface BundleImageLayer {
  diffId: DiffId;
  digest: Digest;
}

export interface BundleImage {
  /** Full references, docker.io/library/nginx:1.27; empty when untagged. */
  refs: string[];
  platform: Platform;
  imageId: Digest;
  manifest: { mediaType: string; digest: Digest; size: number };
  config: { mediaType: string; digest: Digest; size: number };
  layers: BundleImageLayer[];
}

/** A multi-platform image kept as an index; its images are listed in `images` by manifest digest. */
export interface BundleImageIndex {
  refs: string[];
  mediaType: string;
  digest: Digest;
  size: number;
  /** Manifest digests of the images it lists, each one of the bundle's images. */
  images: Digest[];
  /** Manifests it lists that are not images (attestations), carried so the index stays whole. */
  artifacts?: Digest[];
  /** The image plain `docker load` tags with the index's references (docker knows no indexes). */
  dockerDefault: Digest;
}

/** A layer carried as a delta: images name it by its uncompressed form (digest = diffID); `blob` rebuilds it. */
export interface BundleDelta {
  diffId: DiffId;
  /** Bytes of the rebuilt layer tar. */
  size: number;
  /** The delta blob, listed in blobs. */
  blob: Digest;
  /** Layers the target must hold to rebuild it, with the blob it holds each as where the packing side knew it. */
  references: { diffId: DiffId; size: number; blob?: { digest: Digest; size: number; mediaType: string } }[];
  /** What the layer would have taken stored whole. */
  wholeSize?: number;
}

export interface BundleIndex {
  mediaType: typeof BUNDLE_MEDIA_TYPE | typeof BUNDLE_MEDIA_TYPE_V2;
  version: typeof BUNDLE_VERSION | typeof BUNDLE_VERSION_V2;
  id: string;
  created: string;
  creator: string;
  images: BundleImage[];
  /** Multi-platform images kept as indexes (absent in bundles from before indexes were kept: read as none). */
  indexes?: BundleImageIndex[];
  /** Every blob under blobs/sha256/ in this bundle: layers, configs, manifests. */
  blobs: BundleBlob[];
  /** Layers the images need that this bundle does not hold (thin bundles). */
  reliesOn: (BundleBlob & { diffId: DiffId; carriedBy?: string })[];
  /** Layers carried as deltas (version 2 only). */
  deltas?: BundleDelta[];
  /** One volume of a set written for fixed-size media (see volumes.ts). */
  volume?: VolumeInfo;
  /** Pieces this volume holds of blobs too big for one volume (entries named by partPath). */
  parts?: BlobPart[];
}

/** A piece of a blob that spans volumes: bytes [offset, offset+size) of it, piece `part` of `parts`. */
export interface BlobPart {
  digest: Digest;
  part: number;
  parts: number;
  offset: number;
  size: number;
}

/** partPath names a piece of a spanning blob: blobs/sha256/<hex>.part002 (not a digest name, so no OCI reader takes it for the blob). */
export function partPath(digest: string, part: number): string {
  return `${blobPath(digest)}.part${String(part).padStart(3, '0')}`;
}

export interface VolumeInfo {
  /** The set's ID, shared by its volumes. */
  set: string;
  /** This volume's number, from 1. */
  number: number;
  count: number;
}

/** carriedLayers lists the layers a bundle carries: stored whole (blobs with a diffID) or as deltas. */
export function carriedLayers(index: BundleIndex): { diffId: DiffId; uncompressedSize: number; delta: boolean }[] {
  return [
    ...index.blobs.flatMap((b) => (b.diffId ? [{ diffId: b.diffId, uncompressedSize: b.uncompressedSize ?? 0, delta: false }] : [])),
    ...(index.deltas ?? []).map((d) => ({ diffId: d.diffId, uncompressedSize: d.size, delta: true })),
  ];
}

export function blobPath(digest: string): string {
  return `blobs/sha256/${hex(digest)}`;
}

/**
 * ociIndex names each tag by its full reference, in both the containerd and OCI annotations (see DESIGN.md).
 * Images reached only through a kept index are not listed on their own: the index names them.
 */
export function ociIndex(images: readonly BundleImage[], indexes: readonly BundleImageIndex[] = []): OciIndex {
  const manifests: OciDescriptor[] = [];
  const named = (base: OciDescriptor, refs: readonly string[]): void => {
    if (refs.length === 0) manifests.push(base);
    for (const ref of refs) manifests.push({ ...base, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref } });
  };
  const inIndex = new Set(indexes.flatMap((i) => i.images));
  for (const img of images) {
    if (img.refs.length === 0 && inIndex.has(img.manifest.digest)) continue;
    named({ mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.size, platform: { ...img.platform } }, img.refs);
  }
  for (const ix of indexes) named({ mediaType: ix.mediaType, digest: ix.digest, size: ix.size }, ix.refs);
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
}

/**
 * dockerTags is what docker-save's RepoTags are made of: full references, digest pins left out. docker load
 * normalises them as it does its own short names, and podman, which files a short name under localhost/, keeps them.
 */
export function dockerTags(refs: readonly string[]): string[] {
  return refs.filter((r) => !r.includes('@')).map((r) => formatReference(parseReference(r)));
}

/** indexTags maps each index's docker default image to the index's references, for docker's flat view. */
export function indexTags(indexes: readonly BundleImageIndex[]): Map<Digest, string[]> {
  const out = new Map<Digest, string[]>();
  for (const ix of indexes) {
    const refs = out.get(ix.dockerDefault) ?? [];
    for (const r of ix.refs) if (!refs.includes(r)) refs.push(r);
    out.set(ix.dockerDefault, refs);
  }
  return out;
}

/**
 * dockerManifest is docker-save's manifest.json with every layer path pointing into blobs/. docker load knows no
 * indexes, so an index's tags go to its docker default image (see indexTags).
 */
export function dockerManifest(images: readonly BundleImage[], indexTags: ReadonlyMap<Digest, readonly string[]> = new Map()): DockerSaveEntry[] {
  return images.map((img) => {
    const tags = dockerTags([...img.refs, ...(indexTags.get(img.manifest.digest) ?? [])]);
    return { Config: blobPath(img.config.digest), RepoTags: tags.length ? [...new Set(tags)] : null, Layers: img.layers.map((l) => blobPath(l.digest)) };
  });
}

export function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}
