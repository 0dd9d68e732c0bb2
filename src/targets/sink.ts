// The contract of a place images go: ask what it holds, then hand it images whose layers stream in verified.
import type { ChainId, DiffId } from '../image/digest.js';
import type { Platform } from '../image/platform.js';

export interface LayerToLoad {
  diffId: DiffId;
  uncompressedSize: number;
  /** open yields the layer's uncompressed tar and throws rather than end on bad data. */
  open(): AsyncIterable<Buffer>;
}

export interface ImageToLoad {
  imageId: string;
  config: Buffer;
  layers: LayerToLoad[];
  /** Full references to tag once everything is loaded. */
  tags: string[];
}

export interface LoadedImage {
  imageId: string;
  tags: string[];
  /** loaded: sent now; present: the daemon had the image already. */
  status: 'loaded' | 'present';
  layersSent: number;
  layersPresent: number;
}

export interface ImageSink {
  /** platform is what the target runs, to pick an image from a multi-platform index. */
  platform(signal?: AbortSignal): Promise<Platform>;
  /** heldChains says which layer chains the target already holds; absent is simply not in the set. */
  heldChains(signal?: AbortSignal): Promise<Set<ChainId>>;
  /** load stores every image, untagged: tags come last, once everything is stored (see tag). */
  load(images: readonly ImageToLoad[], held: ReadonlySet<ChainId>, events?: { layer?(diffId: string): void }, signal?: AbortSignal): Promise<LoadedImage[]>;
  /** tag gives stored images their names, replacing what the names pointed at. */
  tag(images: readonly ImageToLoad[]): Promise<void>;
}
