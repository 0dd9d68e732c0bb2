// The v1 bundle format: ferry.json's shape and the OCI and docker-save views built from the same records.
import type { DiffId, Digest } from '../image/digest.js';
import { hex } from '../image/digest.js';
import type { Platform } from '../image/platform.js';
import type { DockerSaveEntry, OciDescriptor, OciIndex } from '../image/model.js';
import { OCI_INDEX, OCI_MANIFEST } from '../image/media-types.js';
import { familiarReference, parseReference } from '../image/reference.js';

export const BUNDLE_MEDIA_TYPE = 'application/vnd.ferry.bundle.v1+json';
export const BUNDLE_VERSION = 1;
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

export interface BundleIndex {
  mediaType: typeof BUNDLE_MEDIA_TYPE;
  version: typeof BUNDLE_VERSION;
  id: string;
  created: string;
  creator: string;
  images: BundleImage[];
  /** Every blob under blobs/sha256/ in this bundle: layers, configs, manifests. */
  blobs: BundleBlob[];
  /** Layers the images need that this bundle does not hold (thin bundles). */
  reliesOn: (BundleBlob & { diffId: DiffId; carriedBy?: string })[];
}

export function blobPath(digest: string): string {
  return `blobs/sha256/${hex(digest)}`;
}

/** ociIndex names each tag by its full reference, in both the containerd and OCI annotations (see DESIGN.md). */
export function ociIndex(images: readonly BundleImage[]): OciIndex {
  const manifests: OciDescriptor[] = [];
  for (const img of images) {
    const base = { mediaType: OCI_MANIFEST, digest: img.manifest.digest, size: img.manifest.size, platform: { ...img.platform } };
    if (img.refs.length === 0) manifests.push(base);
    for (const ref of img.refs) {
      manifests.push({ ...base, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref } });
    }
  }
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
}

/** dockerManifest is docker-save's manifest.json with every layer path pointing into blobs/. */
export function dockerManifest(images: readonly BundleImage[]): DockerSaveEntry[] {
  return images.map((img) => ({
    Config: blobPath(img.config.digest),
    RepoTags: img.refs.length ? img.refs.filter((r) => !r.includes('@')).map((r) => familiarReference(parseReference(r))) : null,
    Layers: img.layers.map((l) => blobPath(l.digest)),
  }));
}

export function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}
