// Volumes for fixed-size media: a finished bundle split into NAME.001.ferry.tar, NAME.002.ferry.tar… Each volume is
// a bundle on its own (the images placed in it, the blobs they add, its own indexes; layers in other volumes are
// relied on, named with the volume that carries them), and all of them together are the set.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Digest } from '../image/digest.js';
import { OCI_LAYER_TAR } from '../image/media-types.js';
import type { Signer } from '../sign/signature.js';
import { BUNDLE_SIGNATURE } from '../sign/signature.js';
import { TarFileWriter } from '../tar/file-writer.js';
import {
  blobPath,
  BUNDLE_MEDIA_TYPE,
  BUNDLE_MEDIA_TYPE_V2,
  BUNDLE_VERSION,
  BUNDLE_VERSION_V2,
  dockerManifest,
  FERRY_INDEX,
  indexTags,
  jsonBytes,
  OCI_LAYOUT,
  OCI_LAYOUT_BYTES,
  ociIndex,
  type BundleBlob,
  type BundleImage,
  type BundleImageIndex,
  type BundleIndex,
} from './format.js';
import type { BundleReader } from './reader.js';
import { partPath, type BlobPart } from './format.js';

const BLOCK = 512;
/** Tar space of an entry: its header and its content padded to whole blocks. */
const entrySize = (size: number): number => BLOCK + Math.ceil(size / BLOCK) * BLOCK;

/** volumePath names volume n of a set written for `output`: NAME.ferry.tar becomes NAME.001.ferry.tar. */
export function volumePath(output: string, n: number): string {
  const base = basename(output);
  const m = /^(.*?)((?:\.ferry)?\.tar)$/.exec(base);
  const [stem, ext] = m ? [m[1]!, m[2]!] : [base, '.ferry.tar'];
  return join(dirname(output), `${stem}.${String(n).padStart(3, '0')}${ext}`);
}

interface Volume {
  id: string;
  blobs: Set<Digest>;
  /** Pieces of blobs too big for any volume, in order: the one case a blob spans volumes. */
  parts: BlobPart[];
  images: BundleImage[];
  indexes: BundleImageIndex[];
  /** Tar bytes the blobs take. */
  bytes: number;
}

/**
 * planVolumes places images whole where they fit (a fresh volume before splitting one), blobs in the order their
 * images need them; an image too big for any volume spreads over several. Each volume keeps room for its indexes.
 */
export function planVolumes(index: BundleIndex, maxSize: number): Volume[] {
  const blobs = new Map(index.blobs.map((b) => [b.digest as string, b]));
  const volumes: Volume[] = [];
  const fresh = (): Volume => {
    const v: Volume = { id: randomUUID(), blobs: new Set(), parts: [], images: [], indexes: [], bytes: entrySize(OCI_LAYOUT_BYTES.length) };
    volumes.push(v);
    return v;
  };
  let cur = fresh();
  const placed = new Set<string>();
  // Metadata grows with what a volume lists; a generous estimate keeps every volume under the limit.
  const meta = (v: Volume, extraImages: number, extraBlobs: number): number => 16384 + (v.images.length + extraImages) * 4096 + (v.blobs.size + extraBlobs) * 600;
  const room = (v: Volume, bytes: number, images: number, blobCount: number): boolean => v.bytes + bytes + meta(v, images, blobCount) <= maxSize;
  const place = (digest: Digest): void => {
    const b = blobs.get(digest);
    if (!b || cur.blobs.has(digest)) return;
    const size = entrySize(b.size);
    if (!room(cur, size, 1, 1)) {
      if (cur.blobs.size > 0) cur = fresh();
      if (!room(cur, size, 1, 1)) {
        span(digest, b.size);
        return;
      }
    }
    cur.blobs.add(digest);
    cur.bytes += size;
    placed.add(digest);
  };
  // A blob bigger than a volume: cut into pieces that fill volumes in turn (the one case a blob spans volumes).
  const span = (digest: Digest, size: number): void => {
    const pieces: { v: Volume; offset: number; size: number }[] = [];
    let offset = 0;
    while (offset < size) {
      let fits = maxSize - cur.bytes - meta(cur, 1, 1) - BLOCK * 2;
      if (fits < 64 << 10) {
        cur = fresh();
        fits = maxSize - cur.bytes - meta(cur, 1, 1) - BLOCK * 2;
      }
      const n = Math.min(size - offset, Math.floor(fits / BLOCK) * BLOCK);
      pieces.push({ v: cur, offset, size: n });
      cur.bytes += entrySize(n);
      offset += n;
    }
    pieces.forEach((p, k) => p.v.parts.push({ digest, part: k + 1, parts: pieces.length, offset: p.offset, size: p.size }));
    placed.add(digest);
  };
  // A layer carried as a delta is placed as its delta blob.
  const deltaBlob = new Map((index.deltas ?? []).map((d) => [d.diffId as string, d.blob]));
  const needs = (img: BundleImage): Digest[] => [...img.layers.map((l) => deltaBlob.get(l.digest) ?? l.digest), img.config.digest, img.manifest.digest].filter((d) => blobs.has(d));
  // Smallest images first: more of them end up whole in one volume, and a big one spreads over fewer.
  const weight = (img: BundleImage): number => needs(img).reduce((s, d) => s + blobs.get(d)!.size, 0);
  const order = index.images.map((img, k) => ({ img, k, w: weight(img) })).sort((a, b) => a.w - b.w || a.k - b.k);
  for (const { img } of order) {
    const todo = needs(img).filter((d) => !placed.has(d));
    const bytes = todo.reduce((s, d) => s + entrySize(blobs.get(d)!.size), 0);
    // Whole in this volume, else whole in a fresh one, else spread.
    if (!room(cur, bytes, 1, todo.length) && cur.blobs.size > 0) {
      const blank: Volume = { id: '', blobs: new Set(), parts: [], images: [], indexes: [], bytes: entrySize(OCI_LAYOUT_BYTES.length) };
      if (room(blank, bytes, 1, todo.length)) cur = fresh();
    }
    for (const d of todo) place(d);
    // An image lives where its manifest and config are; when those were placed earlier for another image, the
    // small blobs are held again here so this volume stands on its own.
    for (const d of [img.config.digest, img.manifest.digest]) {
      if (!cur.blobs.has(d)) {
        cur.blobs.add(d);
        cur.bytes += entrySize(blobs.get(d)!.size);
      }
    }
    cur.images.push(img);
  }
  const byManifest = new Map(index.images.map((i) => [i.manifest.digest as string, i]));
  for (const ix of index.indexes ?? []) {
    // An index goes with its last image, and lists its other images there too (their layers relied on).
    const home = volumes.find((v) => v.images.some((i) => i.manifest.digest === ix.images[ix.images.length - 1])) ?? cur;
    for (const d of ix.images) {
      const img = byManifest.get(d)!;
      if (!home.images.includes(img)) home.images.push(img);
      for (const small of [img.config.digest, img.manifest.digest]) {
        if (!home.blobs.has(small)) {
          home.blobs.add(small);
          home.bytes += entrySize(blobs.get(small)!.size);
        }
      }
    }
    for (const d of [ix.digest, ...(ix.artifacts ?? [])]) {
      if (!home.blobs.has(d)) {
        home.blobs.add(d);
        home.bytes += entrySize(blobs.get(d)!.size);
      }
      placed.add(d);
    }
    home.indexes.push(ix);
  }
  // What no image or index named (artifact contents) goes last.
  for (const b of index.blobs) if (!placed.has(b.digest) && ![...volumes].some((v) => v.blobs.has(b.digest))) place(b.digest);
  return volumes.filter((v) => v.blobs.size > 0 || v.parts.length > 0 || v.images.length > 0);
}

/**
 * writeVolumes copies a finished bundle's blobs into the planned volumes and writes each one's indexes. Every
 * volume is written to a temp file first; only when all are complete are they renamed into place.
 */
export async function writeVolumes(full: BundleReader, output: string, maxSize: number, opts: { signer?: Signer; signal?: AbortSignal } = {}): Promise<{ path: string; index: BundleIndex }[]> {
  const index = full.index;
  const plan = planVolumes(index, maxSize);
  const set = randomUUID();
  const blobs = new Map(index.blobs.map((b) => [b.digest as string, b]));
  const holder = new Map<string, string>();
  for (const v of plan) for (const d of v.blobs) if (!holder.has(d)) holder.set(d, v.id);
  const writers: TarFileWriter[] = [];
  const out: { path: string; index: BundleIndex }[] = [];
  try {
    for (const [k, v] of plan.entries()) {
      const path = volumePath(output, k + 1);
      const tar = await TarFileWriter.create(path);
      writers.push(tar);
      await tar.addFile(OCI_LAYOUT, OCI_LAYOUT_BYTES);
      const held: BundleBlob[] = [];
      for (const d of v.blobs) {
        opts.signal?.throwIfAborted();
        const entry = tar.beginEntry();
        try {
          for await (const chunk of full.stream(blobPath(d))) await entry.write(chunk as Buffer);
        } catch (err) {
          entry.discard();
          throw err;
        }
        await entry.finish(blobPath(d));
        held.push(blobs.get(d)!);
      }
      for (const p of v.parts) {
        opts.signal?.throwIfAborted();
        const entry = tar.beginEntry();
        try {
          for await (const chunk of take(full.stream(blobPath(p.digest), p.offset), p.size)) await entry.write(chunk);
        } catch (err) {
          entry.discard();
          throw err;
        }
        await entry.finish(partPath(p.digest, p.part));
      }
      const volIndex = volumeIndex(index, v, { set, number: k + 1, count: plan.length }, held, holder);
      await tar.addFile('index.json', jsonBytes(ociIndex(v.images, v.indexes)));
      await tar.addFile('manifest.json', jsonBytes(dockerManifest(v.images, indexTags(v.indexes))));
      const ferryJson = Buffer.from(JSON.stringify(volIndex, null, 2));
      await tar.addFile(FERRY_INDEX, ferryJson);
      if (opts.signer) await tar.addFile(BUNDLE_SIGNATURE, Buffer.from(JSON.stringify(opts.signer.sign(ferryJson, FERRY_INDEX))));
      if (tar.bytesWritten + 2 * BLOCK > maxSize) {
        throw new Error(`volume ${k + 1} came to ${tar.bytesWritten} bytes, over the ${maxSize} planned (metadata estimate too small)`);
      }
      out.push({ path, index: volIndex });
    }
    for (const w of writers) await w.commit();
  } catch (err) {
    // A set is whole or absent: volumes already renamed into place go too.
    await Promise.all(writers.map((w) => w.abort()));
    await Promise.all(out.map((o) => rm(o.path, { force: true })));
    throw err;
  }
  return out;
}

/** volumeIndex is one volume's ferry.json: its images, the blobs it holds, what it relies on (and which volume carries it). */
function volumeIndex(index: BundleIndex, v: Volume, volume: NonNullable<BundleIndex['volume']>, held: BundleBlob[], holder: ReadonlyMap<string, string>): BundleIndex {
  const set = volume.set;
  const blobs = new Map(index.blobs.map((b) => [b.digest as string, b]));
  const relied = new Map(index.reliesOn.map((r) => [r.digest as string, r]));
  const deltas = new Map((index.deltas ?? []).map((d) => [d.diffId as string, d]));
  const reliesOn: BundleIndex['reliesOn'] = [];
  const seen = new Set<string>();
  for (const img of v.images) {
    for (const l of img.layers) {
      const delta = deltas.get(l.digest);
      if (v.blobs.has(delta?.blob ?? l.digest) || seen.has(l.digest)) continue;
      seen.add(l.digest);
      // A delta layer in another volume is relied on in its uncompressed form, carried by that volume.
      if (delta) {
        reliesOn.push({ digest: l.digest, size: delta.size, mediaType: OCI_LAYER_TAR, diffId: l.diffId, uncompressedSize: delta.size, carriedBy: holder.get(delta.blob) ?? set });
        continue;
      }
      const b = blobs.get(l.digest);
      // A spanning blob is carried by the set itself: its pieces are in several volumes.
      if (b) reliesOn.push({ ...b, diffId: l.diffId, carriedBy: holder.get(l.digest) ?? set });
      else if (relied.has(l.digest)) reliesOn.push(relied.get(l.digest)!);
    }
  }
  const heldDeltas = (index.deltas ?? []).filter((d) => v.blobs.has(d.blob));
  const { deltas: _whole, ...rest } = index;
  const volIndex: BundleIndex = {
    ...rest,
    // Only a volume that holds deltas is format version 2.
    mediaType: heldDeltas.length ? BUNDLE_MEDIA_TYPE_V2 : BUNDLE_MEDIA_TYPE,
    version: heldDeltas.length ? BUNDLE_VERSION_V2 : BUNDLE_VERSION,
    ...(heldDeltas.length ? { deltas: heldDeltas } : {}),
    id: v.id,
    images: v.images,
    indexes: v.indexes,
    blobs: held.sort((a, b) => a.digest.localeCompare(b.digest)),
    reliesOn: reliesOn.sort((a, b) => a.digest.localeCompare(b.digest)),
    volume,
    ...(v.parts.length ? { parts: v.parts } : {}),
  };
  return volIndex;
}

/** take yields the first `size` bytes of src, then stops reading it. */
async function* take(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let left = size;
  for await (const chunk of src) {
    if (left <= 0) break;
    const c = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= c.length;
    yield c;
    if (left <= 0) break;
  }
  if (left > 0) throw new Error(`a blob ended ${left} bytes short of the piece being cut`);
}
