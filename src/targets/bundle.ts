// The bundle being written, as a target: stored blobs kept byte for byte (their diffIDs checked beside the copy),
// uncompressed layers compressed as they pass, images and indexes recorded; the file appears only at commit.
import type { BundleIndex } from '../bundle/format.js';
import { BundleWriter, LayerMismatchError, type BundleWriterOptions, type DeltaOffer, type ReliedLayer } from '../bundle/writer.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { DiffId, Digest } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import { FerryError } from '../ui/errors.js';
import type {
  BlobOutcome,
  BlobToWrite,
  ImageTarget,
  ImageToPut,
  IndexToPut,
  IngestedLayer,
  LayerForm,
  LayerIngest,
  LayerQuestion,
  NamedRef,
  PutImage,
  StoredLayerInfo,
} from './target.js';

export interface BundleTargetOptions extends BundleWriterOptions {
  /** Take stored layers uncompressed (to compress them as the bundle does) instead of byte for byte. */
  recompress?: boolean;
}

export class BundleTarget implements ImageTarget, LayerIngest {
  readonly description: string;
  readonly inventoryCommand: string;
  readonly reuse = 'blob' as const;
  readonly needsNames = false;
  private committed: BundleIndex | undefined;

  private constructor(
    private readonly writer: BundleWriter,
    readonly path: string,
    private readonly recompress: boolean,
  ) {
    this.description = `the bundle ${path}`;
    this.inventoryCommand = `ferry inspect ${path}`;
  }

  static async create(path: string, opts: BundleTargetOptions): Promise<BundleTarget> {
    return new BundleTarget(await BundleWriter.create(path, opts), path, opts.recompress ?? false);
  }

  /** The bundle's index, once committed. */
  get index(): BundleIndex {
    if (!this.committed) throw new Error('BundleTarget.index: the bundle is not committed');
    return this.committed;
  }

  /** How many blobs were taken from a killed run's temp file. */
  get reused(): number {
    return this.writer.reused;
  }

  get spoolBeside(): string {
    return this.writer.path;
  }

  async platform(): Promise<undefined> {
    return undefined;
  }

  layerForm(mediaType: string): LayerForm {
    return this.recompress && compressionOf(mediaType) !== undefined ? 'uncompressed' : 'stored';
  }

  async holds(layer: LayerQuestion): Promise<boolean> {
    return this.writer.hasBlob(layer.digest) || (this.recompress && this.writer.layer(layer.diffId) !== undefined);
  }

  heldLayer(diffId: DiffId): StoredLayerInfo | undefined {
    return this.writer.layer(diffId);
  }

  heldBlob(digest: Digest): boolean {
    return this.writer.hasBlob(digest);
  }

  heldLayerOfSize(size: number): boolean {
    return this.writer.layersOfSize(size).length > 0;
  }

  resume(images: readonly { diffIds: readonly DiffId[]; keptLayers?: readonly BlobDescriptor[] }[]): Promise<number> {
    return this.writer.reuseLeftovers(images);
  }

  async ingestLayer(tar: AsyncIterable<Buffer>, keep: (diffId: DiffId) => boolean, delta?: DeltaOffer): Promise<IngestedLayer> {
    return this.writer.addLayer(tar, keep, delta);
  }

  /** writeBlob keeps a blob byte for byte: a layer's diffID is checked beside the copy, anything else by its digest. */
  async writeBlob(blob: BlobToWrite): Promise<BlobOutcome[]> {
    if (this.writer.hasBlob(blob.digest)) return ['present'];
    const desc = { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
    if (blob.diffId !== undefined && compressionOf(blob.mediaType) !== undefined) await said(this.writer.addBlob({ ...desc, diffId: blob.diffId }, blob.open(0)));
    else await this.writer.addOpaque(desc, blob.open(0));
    return ['written'];
  }

  /** putImages records images (a held layer is one the bundle relies on) and then the indexes that list them. */
  async putImages(images: readonly ImageToPut[], indexes: readonly IndexToPut[]): Promise<PutImage[]> {
    const put: PutImage[] = [];
    for (const img of images) {
      const relied = new Map<Digest, ReliedLayer>();
      for (const l of img.layers) {
        if (l.held && l.blob) relied.set(l.blob.digest, { ...l.blob, diffId: l.diffId, ...(l.carriedBy !== undefined ? { carriedBy: l.carriedBy } : {}) });
      }
      await this.writer.addImage(
        {
          refs: img.names,
          platform: img.platform,
          config: img.config.bytes,
          diffIds: img.layers.map((l) => l.diffId),
          manifest: { ...img.manifest, config: descriptor(img.config), layers: img.layers.map((l) => descriptor(l.blob!)) },
        },
        { layer: () => undefined, blob: (d) => relied.get(d) },
      );
      const sent = img.layers.filter((l) => !l.held).length;
      put.push({ imageId: img.imageId, status: 'put', layersSent: sent, layersPresent: img.layers.length - sent });
    }
    for (const ix of indexes) {
      await this.writer.addIndex({
        refs: ix.names,
        manifest: ix.manifest,
        images: ix.images.map((i) => i.manifest.digest),
        artifacts: ix.artifacts.map((a) => ({ manifest: a.manifest, blobs: a.blobs.map(descriptor) })),
      });
    }
    return put;
  }

  async commit(): Promise<NamedRef[]> {
    this.committed = await said(this.writer.commit());
    const named: NamedRef[] = [];
    for (const img of this.committed.images) for (const name of img.refs) named.push({ name, digest: img.manifest.digest, imageId: img.imageId });
    for (const ix of this.committed.indexes ?? []) for (const name of ix.refs) named.push({ name, digest: ix.digest });
    return named;
  }

  async abort(): Promise<void> {
    await this.writer.abort();
  }
}

/** said turns a layer that does not decompress to its diffID (found beside the copy, told later) into the source's fault. */
async function said<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof LayerMismatchError) throw new FerryError('RUNTIME', err.message, { hint: 'the source holds a corrupt or altered image; nothing was written' });
    throw err;
  }
}

function descriptor(b: BlobDescriptor): BlobDescriptor {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size };
}
