// BundleWriter: the bundle as a sink. Layers stream in and are stored once, compressed; images are recorded;
// commit() writes the OCI layout index, docker's manifest.json and ferry.json, then makes the file appear.
import { randomUUID } from 'node:crypto';
import type { DiffId, Digest } from '../image/digest.js';
import { sha256Of } from '../image/digest.js';
import type { Compression } from '../image/media-types.js';
import { layerMediaType, OCI_CONFIG, OCI_MANIFEST } from '../image/media-types.js';
import type { OciManifest } from '../image/model.js';
import type { Platform } from '../image/platform.js';
import { LayerCompressor } from '../transfer/compress.js';
import { TarFileWriter } from '../tar/file-writer.js';
import {
  blobPath,
  BUNDLE_MEDIA_TYPE,
  BUNDLE_VERSION,
  dockerManifest,
  FERRY_INDEX,
  jsonBytes,
  OCI_LAYOUT,
  OCI_LAYOUT_BYTES,
  ociIndex,
  type BundleBlob,
  type BundleImage,
  type BundleIndex,
} from './format.js';
import { CREATOR } from '../version.js';

export interface BundleWriterOptions {
  compression: Compression;
  level?: number;
}

export type StoredLayer = BundleBlob & { diffId: DiffId; uncompressedSize: number };

export class BundleWriter {
  readonly id = randomUUID();
  private readonly tar: TarFileWriter;
  private readonly compressor: LayerCompressor;
  private readonly compression: Compression;
  private readonly layers = new Map<DiffId, StoredLayer>();
  private readonly blobs = new Map<Digest, BundleBlob>();
  private readonly images: BundleImage[] = [];

  private constructor(tar: TarFileWriter, opts: BundleWriterOptions) {
    this.tar = tar;
    this.compression = opts.compression;
    this.compressor = new LayerCompressor(opts);
  }

  static async create(path: string, opts: BundleWriterOptions): Promise<BundleWriter> {
    const tar = await TarFileWriter.create(path);
    try {
      await tar.addFile(OCI_LAYOUT, OCI_LAYOUT_BYTES);
    } catch (err) {
      await tar.abort();
      throw err;
    }
    return new BundleWriter(tar, opts);
  }

  get path(): string {
    return this.tar.path;
  }

  layer(diffId: DiffId): StoredLayer | undefined {
    return this.layers.get(diffId);
  }

  /**
   * addLayer compresses an uncompressed layer tar into the bundle. A layer whose diffID is already stored is
   * dropped (its bytes are overwritten) and the stored one returned with `repeat: true`.
   */
  async addLayer(tarStream: AsyncIterable<Buffer>): Promise<StoredLayer & { repeat: boolean }> {
    const entry = this.tar.beginEntry();
    let result;
    try {
      result = await this.compressor.compress(tarStream, (b) => entry.write(b));
    } catch (err) {
      entry.discard();
      throw err;
    }
    const known = this.layers.get(result.diffId);
    if (known) {
      entry.discard();
      return { ...known, repeat: true };
    }
    await entry.finish(blobPath(result.digest));
    const stored: StoredLayer = { digest: result.digest, size: result.size, mediaType: layerMediaType(this.compression), diffId: result.diffId, uncompressedSize: result.uncompressedSize };
    this.layers.set(result.diffId, stored);
    this.blobs.set(stored.digest, stored);
    return { ...stored, repeat: false };
  }

  private async addSmallBlob(bytes: Buffer, mediaType: string): Promise<BundleBlob> {
    const digest = sha256Of(bytes);
    const known = this.blobs.get(digest);
    if (known) return known;
    await this.tar.addFile(blobPath(digest), bytes);
    const blob = { digest, size: bytes.length, mediaType };
    this.blobs.set(digest, blob);
    return blob;
  }

  /** addImage records an image whose layers are all stored; its config bytes are kept exactly, so the image ID holds. */
  async addImage(img: { refs: string[]; platform: Platform; config: Buffer; diffIds: readonly DiffId[] }): Promise<BundleImage> {
    const layers = img.diffIds.map((d) => {
      const l = this.layers.get(d);
      if (!l) throw new Error(`BundleWriter.addImage: layer ${d} was not added`);
      return l;
    });
    const config = await this.addSmallBlob(img.config, OCI_CONFIG);
    const manifest: OciManifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const manifestBlob = await this.addSmallBlob(jsonBytes(manifest), OCI_MANIFEST);
    const existing = this.images.find((i) => i.manifest.digest === manifestBlob.digest);
    if (existing) {
      for (const r of img.refs) if (!existing.refs.includes(r)) existing.refs.push(r);
      return existing;
    }
    const record: BundleImage = {
      refs: [...img.refs],
      platform: img.platform,
      imageId: config.digest,
      manifest: { mediaType: OCI_MANIFEST, digest: manifestBlob.digest, size: manifestBlob.size },
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ diffId: l.diffId, digest: l.digest })),
    };
    this.images.push(record);
    return record;
  }

  /** commit writes the indexes after every blob they name, then renames the temp file into place. */
  async commit(): Promise<BundleIndex> {
    const index: BundleIndex = {
      mediaType: BUNDLE_MEDIA_TYPE,
      version: BUNDLE_VERSION,
      id: this.id,
      created: new Date().toISOString(),
      creator: CREATOR,
      images: this.images,
      blobs: [...this.blobs.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
      reliesOn: [],
    };
    await this.tar.addFile('index.json', jsonBytes(ociIndex(this.images)));
    await this.tar.addFile('manifest.json', jsonBytes(dockerManifest(this.images)));
    await this.tar.addFile(FERRY_INDEX, Buffer.from(JSON.stringify(index, null, 2)));
    await this.tar.commit();
    return index;
  }

  async abort(): Promise<void> {
    await this.tar.abort();
  }
}
