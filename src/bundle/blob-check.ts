// checkBlob: one blob of a bundle read from its byte range, checked against its digest and size and, for a
// layer, its diffID and uncompressed size after decompression and its tar entries (LayerEntryScan) on the same bytes.
// Returns the faults; throws only on I/O errors.
import { createReadStream, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { compressionOf, type Compression } from '../image/media-types.js';
import { chunksOf } from '../stream/chunks.js';
import { decompress, DecompressError, syncDecompressor } from '../stream/decompress.js';
import { DigestMismatchError, Sha256Counter, verified } from '../stream/hash.js';
import { LayerEntryScan } from '../tar/layer-entries.js';
import type { BundleBlob } from './format.js';

export interface BlobCheck {
  path: string;
  entry: string;
  offset: number;
  /** Bytes the entry really holds; the blob record's size is what they are checked against. */
  length: number;
  blob: BundleBlob;
}

/** Reads of a stored blob, and bytes read between two looks at the event loop. */
const STORED_READ = 512 << 10;
const STORED_SLICE = 8 << 20;

export async function checkBlob(job: BlobCheck): Promise<string[]> {
  const { blob: b, entry } = job;
  const compression = b.diffId ? compressionOf(b.mediaType) : undefined;
  if (b.diffId && !compression) return [`unknown layer media type ${b.mediaType}`];
  // One reused read buffer and a decompressor that writes into its own: nothing allocated per chunk.
  const inflater = compression && syncDecompressor(compression);
  if (compression && !inflater) return checkBlobStreamed(job);
  const faults: string[] = [];
  const entries = inflater ? new LayerEntryScan() : undefined;
  const fh = await open(job.path, 'r');
  try {
    const raw = new Sha256Counter();
    const limit = b.uncompressedSize ?? 0;
    const take = (pieces: Iterable<Buffer>): void => {
      for (const p of pieces) {
        if (raw.bytes + p.length > limit) throw new DecompressError(`decompresses to more than its declared ${limit} bytes`);
        raw.update(p);
        entries?.write(p);
      }
    };
    await readStored(fh, job, { digest: b.digest, size: b.size, what: entry }, (bytes) => {
      if (inflater) take(inflater.write(bytes));
    });
    if (inflater) {
      take(inflater.end());
      if (raw.bytes !== b.uncompressedSize) faults.push(`decompresses to ${raw.bytes} bytes, ferry.json says ${b.uncompressedSize}`);
      const got = raw.digest() as string;
      if (got !== b.diffId) faults.push(`diffID after decompression is ${got}, ferry.json says ${b.diffId}`);
      faults.push(...entries!.report());
    }
  } catch (err) {
    if (err instanceof DigestMismatchError) faults.push(err.message.replace(`${entry} `, ''));
    else if (err instanceof DecompressError) faults.push(err.message);
    else throw err;
  } finally {
    inflater?.close();
    await fh.close();
  }
  return faults;
}

/** checkBlobStreamed is checkBlob through zlib's stream, when this Node offers no synchronous one. */
async function checkBlobStreamed(job: BlobCheck): Promise<string[]> {
  const { blob: b, entry } = job;
  const faults: string[] = [];
  const raw = job.length === 0 ? (async function* () {})() : createReadStream(job.path, { start: job.offset, end: job.offset + job.length - 1, highWaterMark: 256 << 10 });
  const stored = verified(raw, { digest: b.digest, size: b.size, what: entry });
  try {
    const h = new Sha256Counter();
    const entries = new LayerEntryScan();
    for await (const chunk of decompress(stored, compressionOf(b.mediaType)!, b.uncompressedSize ?? 0, { transient: true })) {
      h.update(chunk);
      entries.write(chunk);
    }
    if (h.bytes !== b.uncompressedSize) faults.push(`decompresses to ${h.bytes} bytes, ferry.json says ${b.uncompressedSize}`);
    const d = h.digest() as string;
    if (d !== b.diffId) faults.push(`diffID after decompression is ${d}, ferry.json says ${b.diffId}`);
    faults.push(...entries.report());
  } catch (err) {
    if (err instanceof DigestMismatchError) faults.push(err.message.replace(`${entry} `, ''));
    else if (err instanceof DecompressError) faults.push(err.message);
    else throw err;
  }
  return faults;
}

/**
 * A layer being copied into a bundle, checked from the bundle file itself as the copy writes it: the check trails
 * the copy on disk (the page cache), so however far behind it falls, it holds no more than one read in memory.
 */
export interface LayerFollow {
  path: string;
  /** Where the entry's content starts in the file. */
  offset: number;
  compression: Compression;
}

/** LayerTail says how many bytes of a followed entry are on disk, and when there are no more to come. */
export class LayerTail {
  private written = 0;
  private ended = false;
  private failed: { err: unknown } | undefined;
  private wake: (() => void) | undefined;

  /** grew: the first n bytes are written. */
  grew(n: number): void {
    this.written = n;
    this.notify();
  }

  end(n: number): void {
    this.written = n;
    this.ended = true;
    this.notify();
  }

  fail(err: unknown): void {
    this.failed ??= { err };
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** beyond resolves with how many bytes are written once more than pos are, or undefined at the end. */
  async beyond(pos: number): Promise<number | undefined> {
    for (;;) {
      if (this.failed) throw this.failed.err;
      if (this.written > pos) return this.written;
      if (this.ended) return undefined;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** Reads of a followed layer. */
const FOLLOW_READ = 512 << 10;
/** Bytes decompressed between two looks at the event loop (for the copy when the check runs on its thread). */
const FOLLOW_SLICE = 4 << 20;

/**
 * followLayer decompresses and hashes a layer as its bytes reach the file; it returns what they decompress to. It
 * works synchronously, slice by slice, so it belongs on a thread of its own (blob-check-worker), one layer at a time.
 */
export async function followLayer(job: LayerFollow, tail: LayerTail): Promise<{ diffId: string; bytes: number }> {
  const h = new Sha256Counter();
  const fh = await open(job.path, 'r');
  const inflater = syncDecompressor(job.compression);
  try {
    let pos = 0;
    const buf = Buffer.allocUnsafe(FOLLOW_READ);
    /** read fills buf with the next stored bytes once they are written; 0 at the end. */
    const read = async (into: Buffer): Promise<number> => {
      const written = await tail.beyond(pos);
      if (written === undefined) return 0;
      const bytesRead = readSync(fh.fd, into, 0, Math.min(into.length, written - pos), job.offset + pos);
      if (bytesRead === 0) throw new Error(`${job.path}: ends at ${job.offset + pos}, before the bytes written`);
      pos += bytesRead;
      return bytesRead;
    };
    if (!inflater) await gunzipInto(read, h);
    else {
      let slice = 0;
      for (let n = await read(buf); n > 0; n = await read(buf)) {
        for (const out of inflater.write(buf.subarray(0, n))) h.update(out);
        slice += n;
        if (slice >= FOLLOW_SLICE) {
          slice = 0;
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      for (const out of inflater.end()) h.update(out);
    }
    return { diffId: h.digest(), bytes: h.bytes };
  } finally {
    inflater?.close();
    await fh.close();
  }
}

/**
 * gunzipInto hashes what the gzip stream read() gives decompresses to, through zlib's stream (when this Node offers
 * no synchronous one). Two input buffers take turns: one is read into while zlib works on the other.
 */
async function gunzipInto(read: (buf: Buffer) => Promise<number>, h: Sha256Counter): Promise<void> {
  // 256 KiB output chunks: zlib's default 16 KiB makes gunzip spend twice as long crossing into JavaScript.
  const gunzip = createGunzip({ chunkSize: 256 << 10 });
  let readFailure: { err: unknown } | undefined;
  const feed = async (): Promise<void> => {
    const bufs = [Buffer.allocUnsafe(FOLLOW_READ), Buffer.allocUnsafe(FOLLOW_READ)];
    // A write's callback says zlib is done with its buffer (or failed: the stream then says why).
    const consumed: Promise<unknown>[] = [Promise.resolve(), Promise.resolve()];
    for (let k = 0; !gunzip.destroyed; k ^= 1) {
      await consumed[k];
      let n: number;
      try {
        n = await read(bufs[k]!);
      } catch (err) {
        readFailure = { err };
        gunzip.destroy(err as Error);
        return;
      }
      if (n === 0) break;
      consumed[k] = new Promise((resolve) => gunzip.write(bufs[k]!.subarray(0, n), resolve));
    }
    await Promise.all(consumed);
    if (!gunzip.destroyed) gunzip.end();
  };
  const fed = feed();
  try {
    for await (const chunk of chunksOf(gunzip)) h.update(chunk);
  } catch (err) {
    // The feed stops at its next step; it may be waiting for the copy, so it is not waited for.
    gunzip.destroy();
    if (readFailure) throw readFailure.err;
    throw new DecompressError(`gzip data is corrupt: ${(err as Error).message}`);
  }
  await fed;
}

/** A stored blob of a bundle to stream decompressed (ferry load): where it is, what it must be, how big it may get. */
export interface InflateJob {
  path: string;
  offset: number;
  /** Bytes the entry holds; the blob is checked against size and digest. */
  length: number;
  digest: string;
  size: number;
  /** The entry's name, for messages. */
  what: string;
  compression: Compression;
  /** Most bytes it may decompress to (bomb-proof, see decompress). */
  limit: number;
}

/** Chunks inflateBlob hands out. */
const INFLATE_CHUNK = 1 << 20;

/**
 * inflateBlob reads a stored blob, checks it against its digest and size and decompresses it within its limit, as
 * the load's own stream does (verified, decompress), handing out its bytes in fresh chunks of their own, so a worker
 * can move them to the thread that sends them without a copy. It throws as they throw. Nothing else is allocated
 * per chunk: one read buffer and the decompressor's own are reused.
 */
export async function inflateBlob(job: InflateJob, emit: (chunk: Buffer) => Promise<void>): Promise<void> {
  const inflater = syncDecompressor(job.compression);
  if (!inflater) return inflateBlobStreamed(job, emit);
  const fh = await open(job.path, 'r');
  try {
    const out = new Chunker(emit);
    let total = 0;
    const take = async (pieces: Iterable<Buffer>): Promise<void> => {
      for (const piece of pieces) {
        total += piece.length;
        if (total > job.limit) throw new DecompressError(`decompresses to more than its declared ${job.limit} bytes`);
        await out.add(piece);
      }
    };
    // The decompressor writes straight into the chunk being filled: no copy on the way out.
    await readStored(fh, job, job, (bytes) => take(inflater.write(bytes, out.space)));
    await take(inflater.end(out.space));
    await out.flush();
  } finally {
    inflater.close();
    await fh.close();
  }
}

/**
 * Chunker gathers bytes into fresh chunks of INFLATE_CHUNK and hands each out once full (a worker moves them to
 * another thread, so none is reused). Bytes written into `space()` are taken without a copy.
 */
class Chunker {
  private chunk = Buffer.allocUnsafeSlow(INFLATE_CHUNK);
  private held = 0;

  constructor(private readonly emit: (chunk: Buffer) => Promise<void>) {}

  /** space is the unfilled rest of the chunk being gathered. */
  readonly space = (): Buffer => this.chunk.subarray(this.held);

  async add(piece: Buffer): Promise<void> {
    if (piece.buffer === this.chunk.buffer && piece.byteOffset === this.chunk.byteOffset + this.held) {
      this.held += piece.length;
      return this.handOutIfFull();
    }
    while (piece.length > 0) {
      const n = piece.copy(this.chunk, this.held);
      this.held += n;
      piece = piece.subarray(n);
      await this.handOutIfFull();
    }
  }

  async flush(): Promise<void> {
    if (this.held > 0) await this.emit(this.chunk.subarray(0, this.held));
  }

  private async handOutIfFull(): Promise<void> {
    if (this.held < this.chunk.length) return;
    const full = this.chunk;
    this.chunk = Buffer.allocUnsafeSlow(INFLATE_CHUNK);
    this.held = 0;
    await this.emit(full);
  }
}

/** inflateBlobStreamed is inflateBlob through zlib's stream, when this Node offers no synchronous one. */
/**
 * scanBlob is inflateBlob for a reader that only looks: each decompressed piece goes to `look` in the decompressor's
 * own reused buffer, valid until look returns, so a whole layer passes through a few hundred KiB.
 */
export async function scanBlob(job: InflateJob, look: (piece: Buffer) => void): Promise<void> {
  const inflater = syncDecompressor(job.compression);
  if (!inflater) return inflateBlobStreamed(job, async (chunk) => look(chunk));
  const fh = await open(job.path, 'r');
  try {
    let total = 0;
    const take = (pieces: Iterable<Buffer>): void => {
      for (const piece of pieces) {
        total += piece.length;
        if (total > job.limit) throw new DecompressError(`decompresses to more than its declared ${job.limit} bytes`);
        look(piece);
      }
    };
    await readStored(fh, job, job, (bytes) => take(inflater.write(bytes)));
    take(inflater.end());
  } finally {
    inflater.close();
    await fh.close();
  }
}

async function inflateBlobStreamed(job: InflateJob, emit: (chunk: Buffer) => Promise<void>): Promise<void> {
  const raw = job.length === 0 ? (async function* () {})() : createReadStream(job.path, { start: job.offset, end: job.offset + job.length - 1, highWaterMark: INFLATE_CHUNK });
  const out = new Chunker(emit);
  for await (const chunk of decompress(verified(raw, { digest: job.digest, size: job.size, what: job.what }), job.compression, job.limit)) await out.add(chunk);
  await out.flush();
}

/**
 * readStored reads a stored blob's byte range, held to its recorded size and digest as it passes (see verified);
 * each piece read goes to `piece`, valid until that returns.
 */
async function readStored(
  fh: FileHandle,
  at: { offset: number; length: number },
  want: { digest: string; size: number; what: string },
  piece: (bytes: Buffer) => void | Promise<void>,
): Promise<void> {
  for await (const bytes of verified(storedRange(fh, at), want)) await piece(bytes);
}

/**
 * storedRange yields a byte range of the bundle through one reused buffer (each piece valid until the next is asked
 * for), looking at the event loop between slices so a check on this thread leaves room for the rest.
 */
async function* storedRange(fh: FileHandle, at: { offset: number; length: number }): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(STORED_READ);
  let slice = 0;
  for (let pos = 0; pos < at.length; ) {
    const n = readSync(fh.fd, buf, 0, Math.min(buf.length, at.length - pos), at.offset + pos);
    if (n === 0) return;
    pos += n;
    yield buf.subarray(0, n);
    slice += n;
    if (slice >= STORED_SLICE) {
      slice = 0;
      await new Promise<void>((r) => setImmediate(r));
    }
  }
}
