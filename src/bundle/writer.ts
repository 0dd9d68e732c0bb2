// BundleWriter: the bundle as a sink. Layers stream in and are stored once, compressed; images are recorded;
// commit() writes the OCI layout index, docker's manifest.json and ferry.json, then makes the file appear.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { DiffId, Digest } from '../image/digest.js';
import { sha256Of } from '../image/digest.js';
import type { Compression } from '../image/media-types.js';
import { compressionOf, layerMediaType } from '../image/media-types.js';
import { hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import type { BlobDescriptor, KeptImageManifest, KeptManifest } from '../image/descriptor.js';
import { LayerChecks } from './blob-check-pool.js';

import { LayerCompressor } from '../stream/compress.js';
import { Spool } from '../stream/spool.js';
import { TarFileWriter, WriteBehind } from '../tar/file-writer.js';
import { OCI_LAYER_TAR } from '../image/media-types.js';
import {
  blobPath,
  BUNDLE_MEDIA_TYPE,
  BUNDLE_MEDIA_TYPE_V2,
  BUNDLE_VERSION,
  BUNDLE_VERSION_V2,
  DELTA_MEDIA_TYPE,
  type BundleDelta,
  dockerManifest,
  FERRY_INDEX,
  jsonBytes,
  OCI_LAYOUT,
  OCI_LAYOUT_BYTES,
  ociIndex,
  type BundleBlob,
  type BundleImage,
  type BundleImageIndex,
  indexTags,
  type BundleIndex,
} from './format.js';
import { CREATOR } from '../version.js';
import { BUNDLE_SIGNATURE, type Signer } from '../sign/signature.js';
import { Leftover } from './leftover.js';

/** Layers whose diffID check may wait behind the copy (their bytes wait on disk, in the bundle) before it waits. */
const MAX_CHECKS = 64;
/** Bytes of a kept blob that may wait in memory for the write before it (see WriteBehind). */
const WRITE_BEHIND = 4 << 20;

export interface BundleWriterOptions {
  compression: Compression;
  level?: number;
  /** Signs ferry.json (which names every blob and image); the signature is stored beside it as ferry.sig. */
  signer?: Signer;
}

export type StoredLayer = BundleBlob & { diffId: DiffId; uncompressedSize: number };

/** A layer the bundle's images use but the bundle does not hold: the target has it (thin bundles). */
export type ReliedLayer = BundleBlob & { diffId: DiffId; carriedBy?: string };

/** Where an image's layers that the bundle does not store are (thin bundles): the plan pack applies says. */
export interface Elsewhere {
  layer(diffId: DiffId): ReliedLayer | undefined;
  blob(digest: Digest): ReliedLayer | undefined;
}

const NOWHERE: Elsewhere = { layer: () => undefined, blob: () => undefined };

/** A delta of a layer, in a file (src/delta/ makes them): what the bundle stores instead when it is smaller. */
export interface DeltaFile {
  path: string;
  digest: Digest;
  size: number;
  references: { diffId: DiffId; size: number; blob?: BlobDescriptor }[];
}

/**
 * DeltaOffer is asked, once a layer to store is compressed, for a delta of it: its uncompressed tar waits at `tar`.
 * It may say none (undefined); a delta no smaller than the whole blob is not taken.
 */
export type DeltaOffer = (layer: { tar: string; diffId: DiffId; size: number; wholeSize: number }) => Promise<DeltaFile | undefined>;

/** What addLayer did with a layer: stored it (or found it stored), or dropped it as `keep` asked. */
export type AddedLayer = (StoredLayer & { repeat: boolean; dropped?: undefined }) | { diffId: DiffId; uncompressedSize: number; dropped: true };

export class BundleWriter {
  readonly id = randomUUID();
  private readonly tar: TarFileWriter;
  private readonly compressor: LayerCompressor;
  private readonly compression: Compression;
  private readonly signer: Signer | undefined;
  private readonly layers = new Map<DiffId, StoredLayer>();
  private readonly blobs = new Map<Digest, BundleBlob>();
  /** Layers stored as deltas, by diffID (images name them by their uncompressed form). */
  private readonly deltas = new Map<DiffId, BundleDelta>();
  private readonly images: BundleImage[] = [];
  private readonly indexes: BundleImageIndex[] = [];
  /** Layers the images use and the bundle does not hold, as ferry.json's reliesOn lists them. */
  private readonly reliesOn = new Map<Digest, ReliedLayer>();
  /** diffID checks of kept layers still running (see addBlob). */
  private readonly checks = new Set<Promise<void>>();
  private checkFailure: unknown;
  private layerChecks: LayerChecks | undefined;

  /** A killed run's temp file for the same bundle, whose finished blobs may be taken (see reuseLeftovers). */
  private readonly leftover: Leftover | undefined;
  private reusedCount = 0;

  private constructor(tar: TarFileWriter, opts: BundleWriterOptions, leftover: Leftover | undefined) {
    this.tar = tar;
    this.leftover = leftover;
    this.compression = opts.compression;
    this.signer = opts.signer;
    this.compressor = new LayerCompressor(opts);
  }

  static async create(path: string, opts: BundleWriterOptions): Promise<BundleWriter> {
    // Opened before the new temp file is made, which removes the old one from the directory (not from us).
    const leftover = await Leftover.find(path);
    const tar = await TarFileWriter.create(path);
    try {
      await tar.addFile(OCI_LAYOUT, OCI_LAYOUT_BYTES);
    } catch (err) {
      await tar.abort();
      await leftover?.close();
      throw err;
    }
    return new BundleWriter(tar, opts, leftover);
  }

  /** reused is how many blobs were taken from a killed run's temp file. */
  get reused(): number {
    return this.reusedCount;
  }

  /**
   * reuseLeftovers stores the blobs a killed run finished for these images, each checked (digest, and diffID
   * beside the copy), so sources need not pull or compress them again: kept blobs by digest, layers ferry
   * compressed by the layer they decompress to (when compressed as this run would).
   */
  async reuseLeftovers(images: readonly { diffIds: readonly DiffId[]; keptLayers?: readonly { mediaType: string; digest: Digest; size: number }[] }[]): Promise<number> {
    if (!this.leftover) return 0;
    const n = await this.leftover.reuseInto(this, images, this.compression);
    this.reusedCount += n;
    return n;
  }

  /**
   * layersOfSize lists the layers held with this uncompressed size (stored, or taken from a killed run): a layer
   * passing by with that size is likely one of them, and is better hashed than compressed.
   */
  layersOfSize(size: number): DiffId[] {
    return [...this.layers.values()].filter((l) => l.uncompressedSize === size).map((l) => l.diffId);
  }

  get path(): string {
    return this.tar.path;
  }

  layer(diffId: DiffId): StoredLayer | undefined {
    return this.layers.get(diffId);
  }

  /**
   * addLayer compresses an uncompressed layer tar into the bundle. A layer whose diffID is already stored is
   * dropped (its bytes are overwritten) and the stored one returned with `repeat: true`; one that `keep` refuses
   * (it stays behind: compressed only to learn which layer it was) is dropped too.
   */
  async addLayer(tarStream: AsyncIterable<Buffer>, keep: (diffId: DiffId) => boolean = () => true, delta?: DeltaOffer): Promise<AddedLayer> {
    const entry = this.tar.beginEntry();
    // With a delta on offer, the layer's tar waits beside the bundle while it is compressed, for the delta to read.
    const spool = delta ? await Spool.create(this.tar.path) : undefined;
    try {
      let result;
      try {
        result = await this.compressor.compress(spool ? teed(tarStream, spool) : tarStream, (b) => entry.write(b));
      } catch (err) {
        entry.discard();
        throw err;
      }
      const known = this.layers.get(result.diffId);
      if (known) {
        entry.discard();
        return { ...known, repeat: true };
      }
      if (!keep(result.diffId)) {
        entry.discard();
        return { diffId: result.diffId, uncompressedSize: result.uncompressedSize, dropped: true };
      }
      const d = delta && spool ? await delta({ tar: spool.path, diffId: result.diffId, size: result.uncompressedSize, wholeSize: result.size }) : undefined;
      if (d && d.size < result.size) {
        entry.discard();
        return { ...(await this.addDelta(d, result)), repeat: false };
      }
      await entry.finish(blobPath(result.digest));
      const stored: StoredLayer = { digest: result.digest, size: result.size, mediaType: layerMediaType(this.compression), diffId: result.diffId, uncompressedSize: result.uncompressedSize };
      this.layers.set(result.diffId, stored);
      this.blobs.set(stored.digest, stored);
      return { ...stored, repeat: false };
    } finally {
      await spool?.remove();
    }
  }

  /** addDelta stores a delta blob for a layer: images then name the layer by its uncompressed form. */
  private async addDelta(d: DeltaFile, whole: { diffId: DiffId; uncompressedSize: number; size: number }): Promise<StoredLayer> {
    const entry = this.tar.beginEntry();
    try {
      for await (const chunk of createReadStream(d.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) await entry.write(chunk);
    } catch (err) {
      entry.discard();
      throw err;
    }
    await entry.finish(blobPath(d.digest));
    this.blobs.set(d.digest, { digest: d.digest, size: d.size, mediaType: DELTA_MEDIA_TYPE });
    this.deltas.set(whole.diffId, { diffId: whole.diffId, size: whole.uncompressedSize, blob: d.digest, references: d.references, wholeSize: whole.size });
    const layer: StoredLayer = { digest: whole.diffId as string as Digest, size: whole.uncompressedSize, mediaType: OCI_LAYER_TAR, diffId: whole.diffId, uncompressedSize: whole.uncompressedSize };
    this.layers.set(whole.diffId, layer);
    return layer;
  }

  hasBlob(digest: Digest): boolean {
    return this.blobs.has(digest);
  }

  /**
   * addBlob stores a compressed layer byte for byte (its digest is kept) and checks that it decompresses to the
   * diffID its image claims. The check is not in the copy's way: it runs on a worker thread (see LayerChecks),
   * reading the layer back from the bundle file as the copy writes it, so the copy never waits for it and nothing
   * waits in memory. commit() waits for every check, so a layer that lies still fails the bundle. The blob must not
   * be stored yet (ask hasBlob).
   */
  async addBlob(blob: { mediaType: string; digest: Digest; size: number; diffId: DiffId }, body: AsyncIterable<Buffer>): Promise<StoredLayer> {
    const compression = compressionOf(blob.mediaType);
    if (!compression) throw new Error(`BundleWriter.addBlob: ${blob.mediaType} is not a layer media type`);
    if (this.blobs.has(blob.digest)) throw new Error(`BundleWriter.addBlob: ${blob.digest} is already stored`);
    while (this.checks.size >= MAX_CHECKS) await Promise.race(this.checks);
    if (this.checkFailure !== undefined) throw this.checkFailure;
    const layer: StoredLayer = { digest: blob.digest, size: blob.size, mediaType: blob.mediaType, diffId: blob.diffId, uncompressedSize: 0 };
    const entry = this.tar.beginEntry();
    this.layerChecks ??= new LayerChecks();
    const check = this.layerChecks.start({ path: this.tar.tempPath, offset: entry.offset, compression });
    this.layerChecks.copying(true);
    const out = new WriteBehind(entry, WRITE_BEHIND, (n) => check.grew(n));
    try {
      for await (const chunk of body) await out.push(chunk);
      await out.drain();
      check.end(out.written);
      await entry.finish(blobPath(blob.digest));
    } catch (err) {
      await out.settle();
      entry.discard();
      check.cancel();
      throw err;
    } finally {
      this.layerChecks.copying(false);
    }
    // A check that fails after its copy is done is kept as the writer's failure, for the next addBlob or commit.
    const tracked: Promise<void> = check.result.then(
      (r) => {
        this.checks.delete(tracked);
        if (r.diffId !== blob.diffId) this.checkFailure ??= new LayerMismatchError(blob.digest, blob.diffId, r.diffId);
        layer.uncompressedSize = r.bytes;
      },
      (err: unknown) => {
        this.checks.delete(tracked);
        this.checkFailure ??= err;
      },
    );
    this.checks.add(tracked);
    if (!this.layers.has(layer.diffId)) this.layers.set(layer.diffId, layer);
    this.blobs.set(layer.digest, layer);
    return layer;
  }

  /** addOpaque stores a blob that is not a layer (an artifact's config or content) byte for byte; the caller verified it. */
  async addOpaque(blob: { mediaType: string; digest: Digest; size: number }, body: AsyncIterable<Buffer>): Promise<void> {
    if (this.blobs.has(blob.digest)) throw new Error(`BundleWriter.addOpaque: ${blob.digest} is already stored`);
    const entry = this.tar.beginEntry();
    try {
      for await (const chunk of body) await entry.write(chunk);
    } catch (err) {
      entry.discard();
      throw err;
    }
    await entry.finish(blobPath(blob.digest));
    this.blobs.set(blob.digest, { digest: blob.digest, size: blob.size, mediaType: blob.mediaType });
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

  /**
   * addImage records an image whose layers are all stored. Config and manifest bytes are kept exactly, so the image
   * ID and manifest digest hold; a layer the bundle does not store must be `elsewhere` (a thin bundle's).
   */
  async addImage(img: { refs: string[]; platform: Platform; config: Buffer; diffIds: readonly DiffId[]; manifest: KeptImageManifest }, elsewhere: Elsewhere = NOWHERE): Promise<BundleImage> {
    const m = img.manifest;
    const layers = m.layers.map((l, i) => {
      const here = this.blobs.has(l.digest) || this.deltas.has(l.digest as string as DiffId);
      const relied = here ? undefined : elsewhere.blob(l.digest);
      if (relied) this.reliesOn.set(relied.digest, relied);
      else if (!here) throw new Error(`BundleWriter.addImage: layer blob ${l.digest} was not added`);
      return { digest: l.digest, diffId: img.diffIds[i]! };
    });
    const configBlob = await this.addSmallBlob(img.config, m.config.mediaType);
    if (configBlob.digest !== m.config.digest) throw new Error(`BundleWriter.addImage: config bytes do not match ${m.config.digest}`);
    const manifestBlob = await this.addSmallBlob(m.bytes, m.mediaType);
    const existing = this.images.find((i) => i.manifest.digest === manifestBlob.digest);
    if (existing) {
      for (const r of img.refs) if (!existing.refs.includes(r)) existing.refs.push(r);
      return existing;
    }
    const record: BundleImage = {
      refs: [...img.refs],
      platform: img.platform,
      imageId: configBlob.digest,
      manifest: { mediaType: manifestBlob.mediaType, digest: manifestBlob.digest, size: manifestBlob.size },
      config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
      layers,
    };
    this.images.push(record);
    return record;
  }

  /** addIndex records a multi-platform image kept as an index; every image it lists must be added first. */
  async addIndex(ix: { refs: string[]; manifest: KeptManifest; images: readonly Digest[]; artifacts?: readonly { manifest: KeptManifest; blobs: readonly BlobDescriptor[] }[] }): Promise<BundleImageIndex> {
    const members = ix.images.map((d) => {
      const img = this.images.find((i) => i.manifest.digest === d);
      if (!img) throw new Error(`BundleWriter.addIndex: image ${d} was not added`);
      return img;
    });
    for (const a of ix.artifacts ?? []) {
      for (const b of a.blobs) if (!this.blobs.has(b.digest)) throw new Error(`BundleWriter.addIndex: artifact blob ${b.digest} was not added`);
      await this.addSmallBlob(a.manifest.bytes, a.manifest.mediaType);
    }
    const blob = await this.addSmallBlob(ix.manifest.bytes, ix.manifest.mediaType);
    const existing = this.indexes.find((i) => i.digest === blob.digest);
    if (existing) {
      for (const r of ix.refs) if (!existing.refs.includes(r)) existing.refs.push(r);
      return existing;
    }
    const host = hostPlatform();
    const record: BundleImageIndex = {
      refs: [...ix.refs],
      mediaType: blob.mediaType,
      digest: blob.digest,
      size: blob.size,
      images: [...ix.images],
      ...(ix.artifacts?.length ? { artifacts: ix.artifacts.map((a) => a.manifest.digest) } : {}),
      dockerDefault: (members.find((i) => platformMatches(host, i.platform)) ?? members[0]!).manifest.digest,
    };
    this.indexes.push(record);
    return record;
  }

  /** commit writes the indexes after every blob they name, then renames the temp file into place. */
  async commit(): Promise<BundleIndex> {
    await Promise.all(this.checks);
    await this.layerChecks?.close();
    if (this.checkFailure !== undefined) throw this.checkFailure;
    const deltas = [...this.deltas.values()].sort((a, b) => a.diffId.localeCompare(b.diffId));
    const index: BundleIndex = {
      // Only a bundle with deltas is version 2: older ferries refuse it by name, and read every other bundle.
      mediaType: deltas.length ? BUNDLE_MEDIA_TYPE_V2 : BUNDLE_MEDIA_TYPE,
      version: deltas.length ? BUNDLE_VERSION_V2 : BUNDLE_VERSION,
      id: this.id,
      created: new Date().toISOString(),
      creator: CREATOR,
      images: this.images,
      indexes: this.indexes,
      blobs: [...this.blobs.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
      reliesOn: [...this.reliesOn.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
      ...(deltas.length ? { deltas } : {}),
    };
    await this.tar.addFile('index.json', jsonBytes(ociIndex(this.images, this.indexes)));
    await this.tar.addFile('manifest.json', jsonBytes(dockerManifest(this.images, indexTags(this.indexes))));
    const ferryJson = Buffer.from(JSON.stringify(index, null, 2));
    await this.tar.addFile(FERRY_INDEX, ferryJson);
    if (this.signer) await this.tar.addFile(BUNDLE_SIGNATURE, Buffer.from(JSON.stringify(this.signer.sign(ferryJson, FERRY_INDEX))));
    await this.tar.commit();
    await this.leftover?.close();
    return index;
  }

  async abort(): Promise<void> {
    await this.layerChecks?.close();
    await this.leftover?.close().catch(() => undefined);
    await this.tar.abort();
  }
}

/** LayerMismatchError: a source's layer does not decompress to the diffID its image config claims. */
export class LayerMismatchError extends Error {
  constructor(
    readonly digest: Digest,
    readonly expected: DiffId,
    readonly actual: string,
  ) {
    super(`layer ${digest} decompresses to ${actual}, but its image config says ${expected}`);
    this.name = 'LayerMismatchError';
  }
}

/** teed passes a layer's chunks on after writing each to the spool (a chunk may be reused once the next is asked for). */
async function* teed(src: AsyncIterable<Buffer>, spool: Spool): AsyncGenerator<Buffer> {
  for await (const chunk of src) {
    await spool.write(chunk);
    yield chunk;
  }
}
