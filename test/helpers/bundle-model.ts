// A good bundle taken apart so that tests can tell one lie and keep everything else consistent: change a layer's
// bytes or claims, or an image's config, and the manifests, index.json, manifest.json and ferry.json follow.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { dockerManifest, indexTags, ociIndex, type BundleBlob, type BundleImage, type BundleIndex } from '../../src/bundle/format.js';
import type { DiffId, Digest } from '../../src/image/digest.js';
import { readEntries, tarBytes, type RawEntry } from './crafted-tar.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice(7)}`;
}

export class BundleModel {
  index: BundleIndex;
  /** Blob bytes by the digest ferry.json gives them (normally their real digest). */
  blobs: Map<string, Buffer>;
  /** Entries other than blobs and the three indexes (oci-layout). */
  private readonly others: RawEntry[];

  private constructor(index: BundleIndex, blobs: Map<string, Buffer>, others: RawEntry[]) {
    this.index = index;
    this.blobs = blobs;
    this.others = others;
  }

  static async load(path: string): Promise<BundleModel> {
    const entries = await readEntries(path);
    const get = (n: string): Buffer => entries.find((e) => e.name === n)!.data!;
    const index = JSON.parse(get('ferry.json').toString()) as BundleIndex;
    const blobs = new Map<string, Buffer>();
    for (const e of entries) if (e.name.startsWith('blobs/sha256/')) blobs.set(`sha256:${e.name.slice(13)}`, e.data!);
    const others = entries.filter((e) => !e.name.startsWith('blobs/') && !['index.json', 'manifest.json', 'ferry.json'].includes(e.name));
    return new BundleModel(index, blobs, others);
  }

  clone(): BundleModel {
    return new BundleModel(structuredClone(this.index), new Map(this.blobs), this.others.map((e) => ({ ...e })));
  }

  image(ref: string): BundleImage {
    const img = this.index.images.find((i) => i.refs.includes(ref));
    if (!img) throw new Error(`no image ${ref} in the model`);
    return img;
  }

  /** blob is a blob record: one the bundle holds, or (thin bundles) one it relies on. */
  blob(digest: string): BundleBlob {
    const b = this.index.blobs.find((x) => x.digest === digest) ?? this.index.reliesOn.find((x) => x.digest === digest);
    if (!b) throw new Error(`no blob ${digest} in the model`);
    return b;
  }

  /** layer returns image ref's layer k (0-based) blob record. */
  layer(ref: string, k: number): BundleBlob & { diffId: DiffId; uncompressedSize: number } {
    return this.blob(this.image(ref).layers[k]!.digest) as BundleBlob & { diffId: DiffId; uncompressedSize: number };
  }

  config(ref: string): Record<string, unknown> & { rootfs: { diff_ids: string[] } } {
    return JSON.parse(this.blobs.get(this.image(ref).config.digest)!.toString());
  }

  /**
   * replaceLayer stores new bytes for a layer under `storeAs` (default: their real digest), with the diffID and
   * uncompressed size the caller claims; every image using it and its manifest follow.
   */
  replaceLayer(oldDigest: string, bytes: Buffer, claim: { mediaType?: string; diffId?: string; uncompressedSize?: number; storeAs?: string } = {}): string {
    const old = this.blob(oldDigest);
    const digest = claim.storeAs ?? sha256(bytes);
    this.blobs.delete(oldDigest);
    this.blobs.set(digest, bytes);
    const rec: BundleBlob = {
      digest: digest as Digest,
      size: bytes.length,
      mediaType: claim.mediaType ?? old.mediaType,
      diffId: (claim.diffId ?? old.diffId) as DiffId,
      uncompressedSize: claim.uncompressedSize ?? old.uncompressedSize!,
    };
    this.index.blobs = this.index.blobs.filter((b) => b.digest !== oldDigest).concat(rec);
    for (const img of this.index.images) {
      for (const l of img.layers) {
        if (l.digest === oldDigest) {
          l.digest = digest as Digest;
          l.diffId = rec.diffId!;
        }
      }
    }
    this.rebuild();
    return digest;
  }

  /** setConfig replaces an image's config bytes: its image ID, manifest and indexes follow. */
  setConfig(ref: string, bytes: Buffer): void {
    const img = this.image(ref);
    const digest = sha256(bytes) as Digest;
    this.blobs.set(digest, bytes);
    this.index.blobs.push({ digest, size: bytes.length, mediaType: OCI_CONFIG });
    img.imageId = digest;
    img.config = { mediaType: OCI_CONFIG, digest, size: bytes.length };
    this.rebuild();
  }

  /**
   * setManifest stores other bytes as an image's OCI manifest (a real digest, the records following), for
   * manifests whose content lies while ferry.json, index.json and manifest.json stay consistent with it.
   */
  setManifest(ref: string, bytes: Buffer): string {
    const img = this.image(ref);
    const digest = sha256(bytes) as Digest;
    this.blobs.delete(img.manifest.digest);
    this.index.blobs = this.index.blobs.filter((b) => b.digest !== img.manifest.digest);
    this.blobs.set(digest, bytes);
    this.index.blobs.push({ digest, size: bytes.length, mediaType: OCI_MANIFEST });
    this.index.blobs.sort((a, b) => a.digest.localeCompare(b.digest));
    img.manifest = { mediaType: OCI_MANIFEST, digest, size: bytes.length };
    return digest;
  }

  /** manifest is an image's OCI manifest, parsed. */
  manifest(ref: string): { config: { digest: string; size: number; mediaType: string }; layers: { digest: string; size: number; mediaType: string }[] } {
    return JSON.parse(this.blobs.get(this.image(ref).manifest.digest)!.toString());
  }

  /** setDiffId tells a consistent lie about a layer's diffID: blob record, images and their configs all say `fake`. */
  setDiffId(layerDigest: string, fake: string): void {
    const rec = this.blob(layerDigest);
    const real = rec.diffId!;
    rec.diffId = fake as DiffId;
    for (const img of this.index.images) {
      if (!img.layers.some((l) => l.digest === layerDigest)) continue;
      for (const l of img.layers) if (l.digest === layerDigest) l.diffId = fake as DiffId;
      const ref = img.refs[0]!;
      const cfg = this.config(ref);
      cfg.rootfs.diff_ids = cfg.rootfs.diff_ids.map((d) => (d === real ? fake : d));
      this.setConfig(ref, Buffer.from(JSON.stringify(cfg)));
    }
  }

  /** rebuild writes every image's OCI manifest from its records and drops blobs nothing refers to. */
  rebuild(): void {
    for (const img of this.index.images) {
      const manifest = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: img.config.digest, size: img.config.size },
        layers: img.layers.map((l) => {
          const b = this.blob(l.digest);
          return { mediaType: b.mediaType, digest: b.digest, size: b.size };
        }),
      };
      const bytes = Buffer.from(JSON.stringify(manifest));
      const digest = sha256(bytes) as Digest;
      if (!this.blobs.has(digest)) {
        this.blobs.set(digest, bytes);
        this.index.blobs.push({ digest, size: bytes.length, mediaType: OCI_MANIFEST });
      }
      img.manifest = { mediaType: OCI_MANIFEST, digest, size: bytes.length };
    }
    const used = new Set(this.index.images.flatMap((i) => [i.manifest.digest, i.config.digest, ...i.layers.map((l) => l.digest)]));
    this.index.blobs = this.index.blobs.filter((b) => used.has(b.digest)).sort((a, b) => a.digest.localeCompare(b.digest));
    for (const d of [...this.blobs.keys()]) if (!used.has(d as Digest)) this.blobs.delete(d);
  }

  /** entries lays the bundle out as ferry does: oci-layout, blobs, index.json, manifest.json, ferry.json. */
  entries(overrides: { ferryJson?: Buffer; indexJson?: Buffer; manifestJson?: Buffer } = {}): RawEntry[] {
    return [
      ...this.others,
      ...[...this.blobs.entries()].map(([d, data]) => ({ name: blobName(d), data })),
      { name: 'index.json', data: overrides.indexJson ?? Buffer.from(JSON.stringify(ociIndex(this.index.images, this.index.indexes ?? []))) },
      { name: 'manifest.json', data: overrides.manifestJson ?? Buffer.from(JSON.stringify(dockerManifest(this.index.images, indexTags(this.index.indexes ?? [])))) },
      { name: 'ferry.json', data: overrides.ferryJson ?? Buffer.from(JSON.stringify(this.index, null, 2)) },
    ];
  }

  bytes(overrides: Parameters<BundleModel['entries']>[0] = {}): Buffer {
    return tarBytes(this.entries(overrides));
  }
}

/**
 * zstdRleBomb is one zstd frame of RLE blocks (4 bytes each for 128 KiB of zeros): `bytes` of output from
 * about bytes/32768 of input. Window 128 KiB, so only the size is hostile, not the memory it asks for.
 */
export function zstdRleBomb(bytes: number): Buffer {
  const blocks = Math.ceil(bytes / 131072);
  const out = Buffer.alloc(6 + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0x00; // no content size, no checksum, no dictionary, not single-segment
  out[5] = 7 << 3; // window 2^(10+7) = 128 KiB
  for (let i = 0; i < blocks; i++) {
    const header = (131072 << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0);
    out.writeUIntLE(header, 6 + i * 4, 3);
    out[6 + i * 4 + 3] = 0;
  }
  return out;
}

/** zstdHugeWindow is a frame that asks the decoder for a 2 GiB window before yielding a byte. */
export function zstdHugeWindow(): Buffer {
  const out = Buffer.alloc(10);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0x00;
  out[5] = 21 << 3; // window 2^31
  out.writeUIntLE((131072 << 3) | (1 << 1) | 1, 6, 3);
  out[9] = 0;
  return out;
}

/** gzipBomb concatenates gzip members of 64 MiB of zeros each (gunzip reads them as one stream). */
export function gzipBomb(members: number): Buffer {
  const one = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  return Buffer.concat(Array.from({ length: members }, () => one));
}
