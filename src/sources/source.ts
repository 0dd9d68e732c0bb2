// The contract every image source meets: resolve names without reading layers, then stream the images out.
import type { DiffId } from '../image/digest.js';
import type { Platform } from '../image/platform.js';

/** SourceImage is an image as resolved: what it is called and which layers it needs, before any layer moves. */
export interface SourceImage {
  /** What the user asked for, as typed. */
  asked: string;
  /** Full references the image travels under (empty: untagged, as when named by ID). */
  refs: string[];
  /** docker's image ID: the config digest. */
  id: string;
  platform: Platform;
  diffIds: DiffId[];
  /** A size estimate for planning (bytes of all layers uncompressed), 0 if unknown. */
  size: number;
}

/** ExportedImage is a SourceImage whose config bytes have arrived and whose layers were all handed over. */
export interface ExportedImage extends SourceImage {
  config: Buffer;
}

export interface LayerSink {
  /** has says the layer is already stored, so the source may just check it instead of handing it over. */
  has(diffId: DiffId): boolean;
  /** put consumes a layer tar and returns its diffID. */
  put(body: AsyncIterable<Buffer>, info: { size: number }): Promise<DiffId>;
}

export interface ImageSource {
  readonly scheme: 'docker-daemon';
  resolve(names: readonly string[], signal?: AbortSignal): Promise<SourceImage[]>;
  /** export hands every layer of the images to sink, each exactly once where it can tell, and returns the configs. */
  export(images: readonly SourceImage[], sink: LayerSink, signal?: AbortSignal): Promise<ExportedImage[]>;
  close(): Promise<void>;
}
