// The bytes `ferry serve` sends: each blob checked once against its digest, ahead in the background or as it is
// first sent whole (its last bytes held back until the digest matches) or before a first range of it, then read
// straight from the bundle file; a bundle that changes on disk while served is no longer served as good.
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { BundleReader } from '../bundle/reader.js';
import { MAX_MANIFEST_BYTES } from '../image/media-types.js';
import { Sha256Counter, verified } from '../stream/hash.js';
import { pump, type PumpWatch } from './response-pump.js';
import type { ServedBlob } from './served-set.js';

/** Why a blob cannot be served as good. */
export class BlobFault extends Error {}

/** A bundle file changed on disk: nothing of it is served any more. */
class BundleChanged extends BlobFault {}

interface FileState {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** How long a bundle file's state is trusted before it is looked at again (many requests, one stat). */
const STAT_TTL_MS = 1000;

export class BlobSource {
  private readonly checks = new Map<string, Promise<void>>();
  /** Blobs whose check has ended, either way. */
  private readonly settled = new Set<string>();
  /** Blob responses being sent: checking ahead waits while there are any. */
  private sending = 0;
  private readonly manifests = new Map<string, Buffer>();
  private readonly files = new Map<string, { at: FileState; seen: number; changed: boolean }>();

  private constructor(private readonly bundles: readonly BundleReader[]) {}

  /** open notes each bundle file's state, to tell later whether it changed. */
  static async open(bundles: readonly BundleReader[]): Promise<BlobSource> {
    const src = new BlobSource(bundles);
    for (const b of bundles) src.files.set(b.openPath, { at: await fileState(b.openPath), seen: Date.now(), changed: false });
    return src;
  }

  /**
   * ready resolves once the blob was checked against its digest (once, shared by every request), or throws BlobFault.
   * A check stopped by `signal` (the server stopping) fails and is not recorded.
   */
  async ready(blob: ServedBlob, signal?: AbortSignal): Promise<void> {
    await this.unchanged();
    let check = this.checks.get(blob.digest);
    if (!check) {
      check = (async () => {
        const h = new Sha256Counter();
        for await (const chunk of blob.stream(0)) {
          if (signal?.aborted) {
            // Not recorded: whoever waits on it is answered 500, never sent bytes unchecked.
            this.checks.delete(blob.digest);
            throw new BlobFault('the server is stopping');
          }
          h.update(chunk);
          if (h.bytes > blob.size) break;
        }
        this.settled.add(blob.digest);
        if (h.bytes !== blob.size || h.digest() !== blob.digest) throw new BlobFault(`${blob.where} is not the blob its index names (damaged or altered): not served`);
      })();
      this.checks.set(blob.digest, check);
    }
    await check;
  }

  /**
   * checkAhead checks every blob not checked yet, one at a time, whenever no blob is being sent: pulls then send
   * bytes already checked instead of hashing them on the way (a first pull of the bench corpus cost ~10 % more),
   * and a damaged blob is reported (`warn`) as soon as it is found rather than when a node asks for it.
   */
  async checkAhead(blobs: readonly ServedBlob[], warn: (m: string) => void, signal: AbortSignal): Promise<void> {
    for (const blob of blobs) {
      while (this.sending > 0 && !signal.aborted) await new Promise((r) => setTimeout(r, 100));
      if (signal.aborted) return;
      if (this.checks.has(blob.digest)) continue;
      try {
        await this.ready(blob, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof BlobFault)) throw err;
        warn(err.message);
        if (err instanceof BundleChanged) return;
      }
    }
  }

  /**
   * checked says whether a blob's check has ended, so it can be sent as it is; false means none has, and the
   * response checks the bytes as it sends them. Throws BlobFault for a blob known bad.
   */
  async checked(blob: ServedBlob): Promise<boolean> {
    await this.unchanged();
    const check = this.checks.get(blob.digest);
    // A check under way (ahead, or for a range) is not waited for: this response checks the bytes as they go.
    if (!check || !this.settled.has(blob.digest)) return false;
    await check;
    return true;
  }

  /**
   * send writes bytes [start, end] of a blob into the response and ends it; checkAsSent hashes a whole blob as it
   * passes (hashing before sending cost a skopeo pull of the bench corpus ~10 %, measured). Its last chunk is held
   * back until the digest matches, so a damaged blob never reaches a client whole, and is known bad from then on.
   * Several first requests may each hash their own copy; the first to finish records the outcome.
   */
  async send(res: ServerResponse, blob: ServedBlob, start: number, end: number, checkAsSent = false): Promise<void> {
    const source = blob.extents ? blob.extents(start) : blob.stream(start);
    this.sending++;
    try {
      await pump(res, source, end - start + 1, checkAsSent ? this.watch(blob) : undefined);
    } finally {
      this.sending--;
    }
  }

  private watch(blob: ServedBlob): PumpWatch {
    const h = new Sha256Counter();
    return {
      chunk: (bytes) => h.update(bytes),
      beforeLast: () => {
        if (h.digest() === blob.digest) return this.record(blob.digest, Promise.resolve());
        const fault = new BlobFault(`${blob.where} is not the blob its index names (damaged or altered): not served`);
        const bad = Promise.reject(fault);
        bad.catch(() => undefined); // awaited by later requests, not necessarily any time soon
        this.record(blob.digest, bad);
        throw fault;
      },
    };
  }

  /** record keeps a check's outcome, unless another check of the blob has ended first (both read the same bytes). */
  private record(digest: string, outcome: Promise<void>): void {
    if (this.settled.has(digest)) return;
    this.checks.set(digest, outcome);
    this.settled.add(digest);
  }

  /** manifest returns a manifest's bytes, checked against its digest (kept: manifests are small). */
  async manifest(blob: ServedBlob): Promise<Buffer> {
    await this.unchanged();
    const known = this.manifests.get(blob.digest);
    if (known) return known;
    if (blob.size > MAX_MANIFEST_BYTES) throw new BlobFault(`manifest ${blob.digest} is ${blob.size} bytes, over ${MAX_MANIFEST_BYTES}`);
    const parts: Buffer[] = [];
    try {
      for await (const c of verified(blob.stream(0), { digest: blob.digest, size: blob.size, what: blob.where })) parts.push(c);
    } catch (err) {
      throw new BlobFault(`${blob.where}: ${(err as Error).message}`);
    }
    const bytes = Buffer.concat(parts);
    this.manifests.set(blob.digest, bytes);
    return bytes;
  }

  /** unchanged throws BlobFault once any bundle file differs from when serving began. */
  private async unchanged(): Promise<void> {
    for (const b of this.bundles) {
      const f = this.files.get(b.openPath)!;
      if (!f.changed && Date.now() - f.seen > STAT_TTL_MS) {
        const now = await fileState(b.openPath).catch(() => undefined);
        f.seen = Date.now();
        f.changed = !now || now.size !== f.at.size || now.mtimeMs !== f.at.mtimeMs || now.ino !== f.at.ino;
      }
      if (f.changed) throw new BundleChanged(`${b.path} changed on disk while it was served: nothing of it is served any more (verify it, then serve it again)`);
    }
  }
}

async function fileState(path: string): Promise<FileState> {
  const st = await stat(path);
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}
