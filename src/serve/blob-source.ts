// The bytes `ferry serve` sends: each blob checked once against its digest before it is first served, then read
// by range straight from the bundle file; a bundle that changes on disk while served is no longer served as good.
import { stat } from 'node:fs/promises';
import type { BundleReader } from '../bundle/reader.js';
import { MAX_MANIFEST_BYTES } from '../image/media-types.js';
import { Sha256Counter, verified } from '../stream/hash.js';
import type { ServedBlob } from './served-set.js';

/** Why a blob cannot be served as good. */
export class BlobFault extends Error {}

interface FileState {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** How long a bundle file's state is trusted before it is looked at again (many requests, one stat). */
const STAT_TTL_MS = 1000;

export class BlobSource {
  private readonly checks = new Map<string, Promise<void>>();
  private readonly manifests = new Map<string, Buffer>();
  private readonly files = new Map<string, { at: FileState; seen: number; changed: boolean }>();

  private constructor(private readonly bundles: readonly BundleReader[]) {}

  /** open notes each bundle file's state, to tell later whether it changed. */
  static async open(bundles: readonly BundleReader[]): Promise<BlobSource> {
    const src = new BlobSource(bundles);
    for (const b of bundles) src.files.set(b.openPath, { at: await fileState(b.openPath), seen: Date.now(), changed: false });
    return src;
  }

  /** ready resolves once the blob was checked against its digest (once, shared by every request), or throws BlobFault. */
  async ready(blob: ServedBlob): Promise<void> {
    await this.unchanged();
    let check = this.checks.get(blob.digest);
    if (!check) {
      check = (async () => {
        const h = new Sha256Counter();
        for await (const chunk of blob.stream(0)) {
          h.update(chunk);
          if (h.bytes > blob.size) break;
        }
        if (h.bytes !== blob.size || h.digest() !== blob.digest) throw new BlobFault(`${blob.where} is not the blob its index names (damaged or altered): not served`);
      })();
      this.checks.set(blob.digest, check);
    }
    await check;
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

  /** range reads bytes [start, end] of a blob (after ready). */
  async *range(blob: ServedBlob, start: number, end: number): AsyncGenerator<Buffer> {
    let left = end - start + 1;
    if (left <= 0) return;
    for await (const chunk of blob.stream(start)) {
      const c = chunk as Buffer;
      if (c.length >= left) {
        yield c.subarray(0, left);
        return;
      }
      left -= c.length;
      yield c;
    }
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
      if (f.changed) throw new BlobFault(`${b.path} changed on disk while it was served: nothing of it is served any more (verify it, then serve it again)`);
    }
  }
}

async function fileState(path: string): Promise<FileState> {
  const st = await stat(path);
  return { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}
