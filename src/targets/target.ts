// The one contract of a place images go (a Docker daemon, a registry, containerd, a bundle being written): the
// layer form it wants, what it holds, blobs written under no name, images put, then commit names them all.
import type { DeltaOffer } from '../bundle/writer.js';
import type { ChainId, DiffId, Digest } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { Platform } from '../image/platform.js';

/** stored: the blob as the bundle holds it; gzip: converted for engines that cannot read zstd; uncompressed: the layer's tar. */
export type LayerForm = 'stored' | 'gzip' | 'uncompressed';

/** A blob ready to be written: digest and size are final; open(0) is verified as it is read. */
export interface BlobToWrite extends BlobDescriptor {
  /** For a layer: the diffID it decompresses to, for a target that checks what it stores (a bundle being written). */
  diffId?: DiffId;
  /** open streams the blob from `offset` (a resumed write asks for the rest only). */
  open(offset: number): AsyncIterable<Buffer>;
}

export interface LayerToPut {
  diffId: DiffId;
  /** The layer with every layer below it: what a daemon or snapshotter stores it as. */
  chainId: ChainId;
  uncompressedSize: number;
  /** True when the target holds this layer already (asked before anything moved): it is neither opened nor sent. */
  held: boolean;
  /** The blob the manifest names in the target's form (stored, or gzip); undefined for a held layer the bundle lacks. */
  blob: BlobDescriptor | undefined;
  /** For a held layer: the bundle that carries it, when known (a thin bundle names it in what it relies on). */
  carriedBy?: string;
  /** tar streams the uncompressed layer, checked as it passes; it throws rather than end on bad data. */
  tar(): AsyncIterable<Buffer>;
}

/** An image to put: its names (retag rules applied) and everything it is made of, in the target's layer form. */
export interface ImageToPut {
  /** docker's image ID: the config digest. */
  imageId: Digest;
  platform: Platform;
  /** Full references to name it by at commit; empty for an image reached only through an index or untagged. */
  names: string[];
  /** References of the indexes that list it: it is stored where they are (a registry's repositories), not named by them. */
  within: string[];
  config: BlobDescriptor & { bytes: Buffer };
  /** The manifest as the target gets it (rewritten when layers were converted); digest is what names point at. */
  manifest: BlobDescriptor & { bytes: Buffer };
  layers: LayerToPut[];
  /** The blobs to write for it (layers not held, in the wanted form, then the config), each opened on demand. */
  blobs(): Promise<BlobToWrite[]>;
}

/** A multi-platform index to put after its images (for targets that keep indexes). */
export interface IndexToPut {
  names: string[];
  manifest: BlobDescriptor & { bytes: Buffer };
  images: ImageToPut[];
  /** Manifests the index lists that are not images (attestations), with their blobs: carried opaque. */
  artifacts: { manifest: BlobDescriptor & { bytes: Buffer }; blobs: BlobToWrite[] }[];
}

export type BlobOutcome = 'present' | 'mounted' | 'written';

/** A layer as the copy loop asks about it: does the target hold it where this image would use it? */
export interface LayerQuestion {
  diffId: DiffId;
  chainId: ChainId;
  /** The blob the bundle stores it as, or names it by when relied on. */
  digest: Digest;
}

export interface ImageTarget {
  /** Says where the images go, for messages: "the Docker daemon at unix:///run/docker.sock". */
  readonly description: string;
  /** The command that describes what this target holds, for hints: "ferry inventory --registry HOST". */
  readonly inventoryCommand: string;
  /** chain: a layer is reused only on the same layers below it (a daemon); blob: by its digest (registry, content store). */
  readonly reuse: 'chain' | 'blob';
  /**
   * True when the target unpacks layers it takes as stored, trusting the bundle's diffIDs (containerd): each is then
   * checked against its diffID and uncompressed size as it is sent. A registry only stores them (a pull checks).
   */
  readonly unpacksStored?: boolean;
  /** True when an image must have a name to be put (an untagged one is left out and reported). */
  readonly needsNames: boolean;
  /** platform is what the target runs, to pick one image of an index; undefined when it keeps whole indexes. */
  platform(signal?: AbortSignal): Promise<Platform | undefined>;
  /** layerForm says how a layer stored with this media type should arrive. */
  layerForm(mediaType: string): LayerForm;
  /** willPut is told every name of the copy before holds is first asked (a registry mounts from the other repositories). */
  willPut?(names: readonly string[]): void;
  /** holds answers whether the target holds a layer as this image (named so) would use it; absent is false, not an error. */
  holds(layer: LayerQuestion, names: readonly string[], signal?: AbortSignal): Promise<boolean>;
  /**
   * writeBlob stores one blob under no name, for the image named so, resuming a cut write where the target can; one
   * outcome for each place it went (a registry: each repository of the names).
   * Targets that take only whole images (a Docker daemon's load) leave it out, and get everything through putImages.
   */
  writeBlob?(blob: BlobToWrite, names: readonly string[], signal?: AbortSignal): Promise<BlobOutcome[]>;
  /** putImages stores images (after their blobs, where writeBlob exists) and indexes, naming none of them. */
  putImages(images: readonly ImageToPut[], indexes: readonly IndexToPut[], opts?: PutOptions): Promise<PutImage[]>;
  /** commit names everything put: tags, image records, tagged manifests. Nothing was named before it. */
  commit(signal?: AbortSignal): Promise<NamedRef[]>;
  /**
   * abort gives up, naming nothing; reason is why the copy failed. A target may keep what arrived so a re-run resumes
   * (an interruption, a target error) or drop it (the bundle is bad: a re-run would not go better). Idempotent.
   */
  abort(reason?: unknown): Promise<void>;
  /**
   * layerTars hands the keeper the uncompressed tars of those of these layers the target holds: the reference layers
   * a bundle's deltas are rebuilt from. Targets that cannot read their layers back leave it out.
   */
  layerTars?(wanted: readonly WantedLayer[], keeper: LayerKeeper, signal?: AbortSignal): Promise<void>;
}

/** A layer asked back of a target, with the blob it is known to be stored as there (a registry, a content store). */
export interface WantedLayer {
  diffId: DiffId;
  blob?: BlobDescriptor;
  /** Its uncompressed size, when known: a layer of another size passing by is not one of those wanted. */
  size?: number;
}

/** Where reference layers go as a target (or a source) hands them over; it keeps the wanted ones, checked by diffID. */
export interface LayerKeeper {
  /** put takes a layer whose diffID is known; bytes that hash to another are dropped. */
  put(diffId: DiffId, tar: AsyncIterable<Buffer>): Promise<void>;
  /**
   * take hashes a layer whose diffID is not known until it has passed, keeps it if wanted, and returns its diffID;
   * with its size, one no wanted layer has is only hashed, not written aside.
   */
  take(tar: AsyncIterable<Buffer>, size?: number): Promise<DiffId>;
}

/** A layer a target that compresses layers itself took as an uncompressed tar (see LayerIngest). */
export type IngestedLayer =
  | (BlobDescriptor & { diffId: DiffId; uncompressedSize: number; repeat: boolean; dropped?: undefined })
  | { diffId: DiffId; uncompressedSize: number; dropped: true };

/** A layer as such a target stores it, whatever blob it came as. */
export type StoredLayerInfo = BlobDescriptor & { diffId: DiffId; uncompressedSize: number };

/**
 * LayerIngest: what a target that stores layers in its own compression (a bundle being written) adds to the
 * contract. Sources that cannot name a layer before it passes (a daemon's save says which layer is which only by
 * hashing it) hand it over as an uncompressed tar; the lookups answer from memory, as the bytes pass.
 */
export interface LayerIngest {
  /**
   * ingestLayer stores an uncompressed layer tar; one whose diffID is stored already, or that keep refuses, is
   * dropped. With a delta on offer, a delta smaller than the compressed layer is stored instead.
   */
  ingestLayer(tar: AsyncIterable<Buffer>, keep: (diffId: DiffId) => boolean, delta?: DeltaOffer): Promise<IngestedLayer>;
  heldLayer(diffId: DiffId): StoredLayerInfo | undefined;
  heldBlob(digest: Digest): boolean;
  /** heldLayerOfSize: a layer passing with this uncompressed size is likely held, so better hashed than compressed. */
  heldLayerOfSize(size: number): boolean;
  /** resume takes what a killed run to the same place finished for these images, each checked; says how many blobs. */
  resume(images: readonly { diffIds: readonly DiffId[]; keptLayers?: readonly BlobDescriptor[] }[]): Promise<number>;
  /** A path beside which a layer may wait on disk while it is hashed (the output, so on its file system). */
  readonly spoolBeside: string;
}

/** What putting one image did. */
export interface PutImage {
  imageId: Digest;
  /** put: stored now; present: the target had it already. */
  status: 'put' | 'present';
  layersSent: number;
  layersPresent: number;
}

export interface PutOptions {
  signal?: AbortSignal;
  /** onLayer is told of each layer sent inside a whole image (targets without writeBlob). */
  onLayer?(diffId: DiffId): void;
}

/** A name as commit gave it, in the target's own terms (a registry's full reference, a daemon's tag). */
export interface NamedRef {
  name: string;
  /** What it points at: the manifest or index digest (registry, containerd) or the image ID (daemon). */
  digest: Digest;
  /** The image's ID, for a name given to one image (not an index). */
  imageId?: Digest;
  /** The image that held this name before, when commit moved it (a daemon leaves that one without it, as docker load). */
  movedFrom?: Digest;
}
