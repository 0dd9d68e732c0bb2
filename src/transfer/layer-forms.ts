// layer-forms: a bundle's blobs in the form a target wants: as stored (checked as read), converted to gzip once
// per blob (into a temp file, so the new digest and size are known before the upload), or as the layer's tar.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { blobPath, type BundleBlob } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { inflatedOnWorker, scannedOnWorker } from '../bundle/blob-check-pool.js';
import type { Digest } from '../image/digest.js';
import { compressionOf, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_LAYER_GZIP } from '../image/media-types.js';
import { decompress } from '../stream/decompress.js';
import { inflateChecked } from '../stream/inflate-check.js';
import { Sha256Counter, sized, verified } from '../stream/hash.js';
import { Limiter } from '../stream/limiter.js';
import { bundleError } from '../ui/errors.js';
import type { BlobToWrite } from '../targets/target.js';
import { failingAs } from './bundle-faults.js';
import { entriesChecked, entryInspector, unsafeLayer } from './unsafe-layers.js';

/** Layers smaller than this are decompressed in this thread: a worker's round trips would cost more than they save. */
const ON_WORKER = 1 << 20;

export class LayerForms {
  private readonly converted = new Map<Digest, Promise<BlobToWrite>>();
  /** Entry scans of stored layers on a worker, once per blob however often its write is retried. */
  private readonly scanned = new Map<Digest, Promise<void>>();
  /** gzip keeps a core busy: one conversion per core at a time. */
  private readonly converting = new Limiter(availableParallelism());
  private work: Promise<string> | undefined;

  /** bundle is the one blobs are read from (a pooled view of a chain or volume set); readers hold every bundle, for workers. */
  constructor(
    private readonly bundle: BundleReader,
    private readonly readers: readonly BundleReader[],
    readonly stopped: string,
    private readonly signal?: AbortSignal,
    /** Send layers whose tar entries reach outside the root (--allow-unsafe-layers) instead of refusing them. */
    private readonly allowUnsafe = false,
  ) {}

  /**
   * stored hands out a blob as the bundle holds it, checked against its digest and size when read from the start.
   * With checkLayer, a layer is also decompressed on the side and checked against its diffID and uncompressed size
   * (read from the start even when a write resumes): for a target that unpacks it where ferry cannot watch, a lie
   * must fail the write before it completes. Unless unsafe layers are allowed, every layer is decompressed on the
   * side for its tar entries too (unsafe-layers.ts); a registry's upload closes only once that check has passed.
   * (A registry gets no diffID check: whoever pulls checks it, so the push does not hash the layer too.)
   */
  stored(blob: { digest: Digest; size: number; mediaType: string }, checkLayer = false): BlobToWrite {
    const entry = blobPath(blob.digest);
    const { bundle, stopped } = this;
    const layer = bundle.blob(blob.digest);
    const compression = compressionOf(blob.mediaType);
    // A target that only stores the layer (a registry) gets its entries checked on a worker beside the send: the
    // decompression, the costly part, runs on another core, and the blob ends only once the scan has passed.
    const side = !checkLayer && !this.allowUnsafe && compression && layer?.uncompressedSize !== undefined ? this.scanOnWorker({ ...layer, uncompressedSize: layer.uncompressedSize }, compression) : undefined;
    if (side) {
      return {
        digest: blob.digest,
        size: blob.size,
        mediaType: blob.mediaType,
        open: (offset) => failingAs(endsAfter(offset === 0 ? verified(bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }) : bundle.stream(entry, offset), side), bundle.path, entry, stopped),
      };
    }
    const checked = (src: AsyncIterable<Buffer>, offset: number): AsyncIterable<Buffer> =>
      (checkLayer || !this.allowUnsafe) && compression && layer?.diffId !== undefined && layer.uncompressedSize !== undefined
        ? inflateChecked(
            src,
            compression,
            { digest: checkLayer ? layer.diffId : undefined, size: layer.uncompressedSize, what: `${entry} (uncompressed)` },
            offset,
            this.allowUnsafe ? undefined : entryInspector(bundle.path, entry, stopped),
          )
        : offset === 0
          ? src
          : bundle.stream(entry, offset);
    return {
      digest: blob.digest,
      size: blob.size,
      mediaType: blob.mediaType,
      open: (offset) => failingAs(checked(verified(bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }), offset), bundle.path, entry, stopped),
    };
  }

  /** scanOnWorker starts (once) a worker's decompression of a big stored layer with its entries scanned here; undefined where none can run. */
  private scanOnWorker(blob: BundleBlob & { uncompressedSize: number }, compression: NonNullable<ReturnType<typeof compressionOf>>): (() => Promise<void>) | undefined {
    if (blob.size < ON_WORKER) return undefined;
    const entry = blobPath(blob.digest);
    const holder = this.readers.find((r) => r.blob(blob.digest));
    const at = holder?.entries.get(entry);
    if (!holder || !at) return undefined;
    const job = { path: holder.openPath, offset: at.offset, length: at.size, digest: blob.digest, size: blob.size, what: entry, compression, limit: blob.uncompressedSize };
    if (!inflatedOnWorker(job)) return undefined;
    return () => {
      let p = this.scanned.get(blob.digest);
      if (!p) {
        p = scannedOnWorker(job)!.then((unsafe) => {
          if (unsafe.length > 0) throw unsafeLayer(this.bundle.path, entry, this.stopped, unsafe);
        });
        p.catch(() => undefined);
        this.scanned.set(blob.digest, p);
      }
      return p;
    };
  }

  /** gzip converts a zstd layer to gzip once (later asks share it), checking its diffID on the way. */
  gzip(blob: BundleBlob, manifestType: string): Promise<BlobToWrite> {
    let p = this.converted.get(blob.digest);
    if (!p) {
      p = this.converting.run(() => this.convert(blob, manifestType === DOCKER_MANIFEST ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP));
      p.catch(() => undefined);
      this.converted.set(blob.digest, p);
    }
    return p;
  }

  /** tar streams a layer's uncompressed tar, its stored bytes checked; big ones are read and decompressed on a worker. */
  tar(blob: BundleBlob | undefined, digest: Digest): AsyncIterable<Buffer> {
    const compression = blob && compressionOf(blob.mediaType);
    if (!blob || !compression || blob.uncompressedSize === undefined) throw bundleError(this.bundle.path, blobPath(digest), 'layer is not in this bundle');
    const entry = blobPath(blob.digest);
    const holder = blob.size >= ON_WORKER ? this.readers.find((r) => r.blob(blob.digest)) : undefined;
    const at = holder?.entries.get(entry);
    const inflated =
      at && holder
        ? inflatedOnWorker({ path: holder.openPath, offset: at.offset, length: at.size, digest: blob.digest, size: blob.size, what: entry, compression, limit: blob.uncompressedSize })
        : undefined;
    const raw = sized(
      inflated ?? decompress(verified(this.bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }), compression, blob.uncompressedSize),
      blob.uncompressedSize,
      `${entry} (uncompressed)`,
    );
    // A daemon load streams the layer into the request as it is checked (a first pass would decompress it twice): a
    // chunk goes on only once its entries are checked, and a refused layer stops the request before its end, so the
    // daemon, which unpacks a request's layers only once the whole archive has arrived, unpacks nothing of it.
    return failingAs(this.allowUnsafe ? raw : entriesChecked(raw, this.bundle.path, entry, this.stopped), this.bundle.path, entry, this.stopped);
  }

  /** close waits for conversions under way and removes their files. */
  async close(): Promise<void> {
    await Promise.allSettled(this.converted.values());
    if (this.work) await rm(await this.work, { recursive: true, force: true });
  }

  private async convert(blob: BundleBlob, mediaType: string): Promise<BlobToWrite> {
    this.work ??= mkdtemp(join(tmpdir(), 'ferry-gzip-'));
    const path = join(await this.work, blob.digest.slice(7));
    const entry = blobPath(blob.digest);
    const raw = verified(decompress(verified(this.bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }), compressionOf(blob.mediaType) ?? 'zstd', blob.uncompressedSize ?? 0), {
      digest: blob.diffId!,
      size: blob.uncompressedSize ?? 0,
      what: `${entry} (uncompressed)`,
    });
    const inflated = this.allowUnsafe ? raw : entriesChecked(raw, this.bundle.path, entry, this.stopped);
    const h = new Sha256Counter();
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        h.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(Readable.from(failingAs(inflated, this.bundle.path, entry, this.stopped)), createGzip(), hashing, createWriteStream(path), { signal: this.signal ?? new AbortController().signal });
    return { digest: h.digest(), size: h.bytes, mediaType, open: (offset) => createReadStream(path, { start: offset, highWaterMark: 1 << 20 }) };
  }
}

/** endsAfter passes src on while check runs beside it, and ends only once the check has passed (or throws its error). */
async function* endsAfter(src: AsyncIterable<Buffer>, check: () => Promise<void>): AsyncGenerator<Buffer> {
  const done = check();
  yield* src;
  await done;
}
