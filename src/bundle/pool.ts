// pooled: a bundle seen together with the others given with it (the volumes of a set, a chain): a blob it lacks
// but another holds is read from there, and a blob spanning volumes is read piece by piece across them, so an
// image spread over volumes loads and pushes whole.
import type { Digest } from '../image/digest.js';
import { partPath, type BundleBlob } from './format.js';
import type { BundleReader } from './reader.js';
import { compressionOf } from '../image/media-types.js';
import { decompress } from '../stream/decompress.js';
import { Sha256Counter, verified } from '../stream/hash.js';

const BLOB = /^blobs\/sha256\/([a-f0-9]{64})$/;

interface Spanning {
  blob: BundleBlob;
  pieces: { from: BundleReader; name: string; offset: number; size: number }[];
}

/** spanningBlobs gathers the blobs whose every piece is among the pool, with what a relied-on record says of them. */
export function spanningBlobs(pool: readonly BundleReader[]): Map<string, Spanning> {
  const out = new Map<string, Spanning>();
  const pieces = new Map<string, { part: number; parts: number; from: BundleReader; name: string; offset: number; size: number }[]>();
  for (const b of pool) {
    for (const p of b.index.parts ?? []) {
      const list = pieces.get(p.digest) ?? [];
      if (!list.some((x) => x.part === p.part)) list.push({ part: p.part, parts: p.parts, from: b, name: partPath(p.digest, p.part), offset: p.offset, size: p.size });
      pieces.set(p.digest, list);
    }
  }
  for (const [digest, list] of pieces) {
    list.sort((a, b) => a.part - b.part);
    const whole = list.length === list[0]!.parts && list.every((p, k) => p.part === k + 1 && p.offset === (k ? list[k - 1]!.offset + list[k - 1]!.size : 0));
    const record = pool.flatMap((b) => b.index.reliesOn).find((r) => r.digest === digest);
    if (whole && record && record.size === list[list.length - 1]!.offset + list[list.length - 1]!.size) out.set(digest, { blob: record, pieces: list });
  }
  return out;
}

export function pooled(bundle: BundleReader, pool: readonly BundleReader[]): BundleReader {
  if (pool.length <= 1) return bundle;
  const spanning = spanningBlobs(pool);
  const holder = (digest: string): BundleReader | undefined => (bundle.blob(digest as Digest) ? bundle : pool.find((b) => b !== bundle && b.blob(digest as Digest)));
  return new Proxy(bundle, {
    get(target, prop) {
      if (prop === 'blob') return (digest: Digest) => holder(digest)?.blob(digest) ?? spanning.get(digest)?.blob;
      if (prop === 'stream') {
        return (name: string, from = 0) => {
          const m = BLOB.exec(name);
          const h = m ? holder(`sha256:${m[1]}`) : undefined;
          const s = m && !h ? spanning.get(`sha256:${m[1]}`) : undefined;
          if (s) return piecesFrom(s, from);
          return (h ?? target).stream(name, from);
        };
      }
      if (prop === 'extents') {
        return (name: string, from = 0) => {
          const m = BLOB.exec(name);
          const h = m ? holder(`sha256:${m[1]}`) : undefined;
          const s = m && !h ? spanning.get(`sha256:${m[1]}`) : undefined;
          if (s) return s.pieces.filter((p) => p.offset + p.size > from).flatMap((p) => p.from.extents(p.name, Math.max(0, from - p.offset)));
          return (h ?? target).extents(name, from);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** piecesFrom reads a spanning blob from byte `from` on, across the volumes holding its pieces. */
async function* piecesFrom(s: Spanning, from: number): AsyncGenerator<Buffer> {
  for (const p of s.pieces) {
    if (p.offset + p.size <= from) continue;
    yield* p.from.stream(p.name, Math.max(0, from - p.offset)) as AsyncIterable<Buffer>;
  }
}


/** checkSpanning reads each spanning blob whole across the pool: its digest and size, and a layer's diffID. */
export async function checkSpanning(pool: readonly BundleReader[]): Promise<string[]> {
  const faults: string[] = [];
  for (const [digest, s] of spanningBlobs(pool)) {
    try {
      const compression = compressionOf(s.blob.mediaType);
      const stored = verified(piecesFrom(s, 0), { digest, size: s.blob.size, what: `${digest} (in ${s.pieces.length} pieces)` });
      if (compression && s.blob.diffId && s.blob.uncompressedSize !== undefined) {
        const raw = new Sha256Counter();
        for await (const chunk of decompress(stored, compression, s.blob.uncompressedSize, { transient: true })) raw.update(chunk);
        const got = raw.digest();
        if ((got as string) !== s.blob.diffId) faults.push(`${digest}: its pieces decompress to ${got}, not the diffID ${s.blob.diffId}`);
      } else for await (const _ of stored);
    } catch (err) {
      faults.push(`${digest}: ${(err as Error).message}`);
    }
  }
  const spans = new Set(pool.flatMap((b) => (b.index.parts ?? []).map((p) => p.digest as string)));
  const whole = spanningBlobs(pool);
  for (const d of spans) if (!whole.has(d)) faults.push(`${d}: pieces of this blob are missing or overlap`);
  return faults;
}
