// LayerCache: the connected side's copies of the layers ferry shipped, compressed as their bundles stored them, so a
// later delta can be made against them when the source no longer holds last week's images. Bounded by size, least
// recently used removed first; `ferry cache prune` empties it or brings it under a size.
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { hex, type DiffId, type Digest } from '../image/digest.js';
import { Sha256Counter } from '../stream/hash.js';
import type { Compression } from '../image/media-types.js';

/** The default bound: room for a few weeks of a site's rebuilt layers, far less than the images themselves. */
export const DEFAULT_CACHE_BYTES = 10 * 1024 ** 3;

const EXT: Record<Compression, string> = { zstd: '.tar.zst', gzip: '.tar.gz', none: '.tar' };

export interface CachedLayer {
  diffId: DiffId;
  path: string;
  compression: Compression;
  size: number;
}

/** cacheDir is $FERRY_CACHE_DIR, else $FERRY_HOME/cache, else the XDG cache directory's ferry/. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_CACHE_DIR) return env.FERRY_CACHE_DIR;
  if (env.FERRY_HOME) return join(env.FERRY_HOME, 'cache');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ferry');
}

export class LayerCache {
  private constructor(readonly dir: string) {}

  /** open returns the cache, or undefined when FERRY_CACHE=off. */
  static open(env: NodeJS.ProcessEnv = process.env): LayerCache | undefined {
    if (env.FERRY_CACHE === 'off') return undefined;
    return new LayerCache(join(cacheDir(env), 'layers'));
  }

  /** find returns the cached copy of a layer, marking it used (its mtime) so pruning keeps it longest. */
  async find(diffId: DiffId): Promise<CachedLayer | undefined> {
    for (const [compression, ext] of Object.entries(EXT) as [Compression, string][]) {
      const path = join(this.dir, `${hex(diffId)}${ext}`);
      const st = await stat(path).catch(() => undefined);
      if (!st) continue;
      const now = new Date();
      await utimes(path, now, now).catch(() => undefined);
      return { diffId, path, compression, size: st.size };
    }
    return undefined;
  }

  /**
   * add keeps a layer's stored bytes, copied from a byte range of a file (a bundle) through one reused buffer and
   * checked against their digest; the file appears under its name only once complete and right.
   */
  async add(diffId: DiffId, compression: Compression, from: { path: string; offset: number; size: number; digest: Digest }): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${hex(diffId)}${EXT[compression]}`);
    const part = `${path}.${process.pid}.part`;
    const src = await open(from.path, 'r');
    try {
      const out = await open(part, 'w');
      try {
        const h = new Sha256Counter();
        const buf = Buffer.allocUnsafe(1 << 20);
        for (let done = 0; done < from.size; ) {
          const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, from.size - done), from.offset + done);
          if (bytesRead === 0) throw new Error(`${from.path} ends inside ${from.digest}`);
          h.update(buf.subarray(0, bytesRead));
          await out.write(buf, 0, bytesRead);
          done += bytesRead;
        }
        if (h.digest() !== from.digest) throw new Error(`${from.path}: ${from.digest} changed while it was cached`);
      } finally {
        await out.close();
      }
      await rename(part, path);
    } finally {
      await src.close();
      await rm(part, { force: true });
    }
  }

  read(layer: CachedLayer): AsyncIterable<Buffer> {
    return createReadStream(layer.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }

  /** prune removes the least recently used layers until the cache holds at most maxBytes; it says what it removed. */
  async prune(maxBytes: number): Promise<{ removed: number; bytes: number; kept: number; keptBytes: number }> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const files = [];
    for (const name of names) {
      const st = await stat(join(this.dir, name)).catch(() => undefined);
      // A .part older than a day is a copy a killed run left.
      if (st && (!name.endsWith('.part') || Date.now() - st.mtimeMs > 86_400_000)) files.push({ name, size: st.size, used: name.endsWith('.part') ? 0 : st.mtimeMs });
    }
    files.sort((a, b) => a.used - b.used);
    let total = files.reduce((s, f) => s + f.size, 0);
    let removed = 0;
    let bytes = 0;
    for (const f of files) {
      if (total <= maxBytes && !f.name.endsWith('.part')) break;
      await rm(join(this.dir, f.name), { force: true });
      total -= f.size;
      removed++;
      bytes += f.size;
    }
    return { removed, bytes, kept: files.length - removed, keptBytes: total };
  }
}
