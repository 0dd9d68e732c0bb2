// The image model every source produces and every sink consumes: descriptors, records, OCI/docker JSON shapes. Pure.
import type { DiffId, Digest } from './digest.js';
import type { Platform } from './platform.js';

export interface BlobDescriptor {
  mediaType: string;
  digest: Digest;
  /** Bytes as stored. */
  size: number;
}

export interface LayerDescriptor extends BlobDescriptor {
  diffId: DiffId;
  uncompressedSize: number;
}

/** ImageRecord is one image for one platform: its names, config and layers (base first). */
export interface ImageRecord {
  /** Full normalised references (docker.io/library/nginx:1.27); empty for an untagged image. */
  refs: string[];
  platform: Platform;
  /** The config digest, which docker calls the image ID. */
  imageId: Digest;
  config: BlobDescriptor & { bytes: Buffer };
  manifest: BlobDescriptor & { bytes: Buffer };
  layers: LayerDescriptor[];
}

/** The parts of an image config (docker's and OCI's) ferry reads. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs?: { type?: string; diff_ids?: unknown };
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: OciDescriptor[];
}

/** One entry of a docker-save manifest.json. */
export interface DockerSaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}
