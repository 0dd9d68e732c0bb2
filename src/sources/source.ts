// The contract every image source meets: resolve names without reading layers, then stream the images out.
import type { DiffId, Digest } from '../image/digest.js';
import type { Platform } from '../image/platform.js';
import type { BlobDescriptor, KeptImageManifest, KeptManifest } from '../image/descriptor.js';

/** SourceImage is an image as resolved: what it is called and which layers it needs, before any layer moves. */
export interface SourceImage {
  /** What the user asked for, as typed. */
  asked: string;
  /** Full references the image travels under (empty: untagged, or reached only through an index). */
  refs: string[];
  /** docker's image ID: the config digest. */
  id: string;
  platform: Platform;
  diffIds: DiffId[];
  /** A size estimate for planning (bytes of all layers), 0 if unknown. */
  size: number;
  /** Uncompressed bytes of each layer, base first, where the source knows them cheaply (an archive, a daemon's history). */
  layerSizes?: number[];
  /** Set by sources that hold distributable manifests (registry, OCI layout, bundle); absent for a daemon's images. */
  manifest?: KeptImageManifest;
}

/** SourceIndex is a multi-platform image kept as an index: whole (the source's bytes) or filtered to some platforms. */
export interface SourceIndex {
  asked: string;
  refs: string[];
  manifest: KeptManifest;
  /** Digests of the image manifests it lists, each also among the resolved images. */
  images: Digest[];
  /** True when platforms were dropped, so its digest differs from the source's. */
  filtered: boolean;
  /** Manifests it lists that are not images (attestations, signatures): carried as opaque blobs so the index stays whole. */
  artifacts: KeptImageManifest[];
}

export interface Resolved {
  images: SourceImage[];
  indexes: SourceIndex[];
}

export interface ResolveOptions {
  /** Platforms to take from an index; empty: the host's platform, as `docker pull` does. */
  platforms?: readonly Platform[];
  /** Keep every platform of an index (and the index itself, byte for byte). */
  allPlatforms?: boolean;
  signal?: AbortSignal;
}

/** ExportedImage is a SourceImage whose config bytes have arrived and whose layers were all handed over. */
export interface ExportedImage extends SourceImage {
  config: Buffer;
}

/** LayerSink is where a source's layers go: as uncompressed tars (to be compressed) or as stored blobs (kept). */
export interface LayerSink {
  /** has says a layer with this diffID is already stored, so a source may skip or merely check it. */
  has(diffId: DiffId): boolean;
  /** wantsBlob says whether a stored blob should be handed over: not when it (or, if recompressing, its layer) is stored. */
  wantsBlob(blob: BlobDescriptor & { diffId: DiffId }): boolean;
  /**
   * put consumes a layer tar and returns its diffID. A chunk of body may be overwritten once the next is asked for
   * (a daemon's save is read through one reused buffer): what put keeps, it copies.
   */
  put(body: AsyncIterable<Buffer>, info: { size: number }): Promise<DiffId>;
  /** putBlob stores a compressed layer byte for byte; diffId is what the image config claims, and is checked. */
  putBlob(blob: BlobDescriptor & { diffId: DiffId }, body: AsyncIterable<Buffer>): Promise<void>;
  /** putOpaque stores a blob that is not a layer (an artifact's config or content), checked only by its digest. */
  putOpaque(blob: BlobDescriptor, body: AsyncIterable<Buffer>): Promise<void>;
  hasOpaque(digest: Digest): boolean;
}

export interface ImageSource {
  /** The transport, as in skopeo's names: docker-daemon, docker, docker-archive, oci, oci-archive, bundle. */
  readonly transport: string;
  resolve(names: readonly string[], opts?: ResolveOptions): Promise<Resolved>;
  /** export hands every layer of the images to sink, each exactly once where it can tell, and returns the configs. */
  export(images: readonly SourceImage[], sink: LayerSink, signal?: AbortSignal): Promise<ExportedImage[]>;
  /**
   * imagesWithLayers names images of this source (resolvable by resolve) that together hold as many of these layers
   * as it has: where a delta's reference layers are read from on the packing side. `candidates` are names the target
   * holds them under (a registry cannot be searched by layer, only asked for names). Sources that cannot say omit it.
   */
  imagesWithLayers?(diffIds: readonly DiffId[], candidates: readonly string[], signal?: AbortSignal): Promise<string[]>;
  /** exportArtifacts hands over the blobs of the indexes' artifact manifests (sources that keep indexes). */
  exportArtifacts?(indexes: readonly SourceIndex[], sink: LayerSink, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
