// Blobs and manifests as several parts of ferry pass them around (sources, the bundle writer, planning). Pure types.
import type { Digest } from './digest.js';

export interface BlobDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
}

/** A manifest or index exactly as its source stores it: pushing these bytes reproduces its digest. */
export interface KeptManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** An image manifest a source keeps: its config and layer blobs can travel byte for byte. */
export interface KeptImageManifest extends KeptManifest {
  config: BlobDescriptor;
  layers: BlobDescriptor[];
}
