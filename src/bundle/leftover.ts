// Leftover: what a killed `ferry pack` had written for the same bundle (its temp file), so the next run can take
// the blobs it finished instead of pulling or compressing them again. Every reused blob is checked by its digest.
import { open, type FileHandle } from 'node:fs/promises';
import type { DiffId, Digest } from '../image/digest.js';
import { layerMediaType, type Compression } from '../image/media-types.js';
import { staleTemps } from '../tar/file-writer.js';
import { walkTarFile } from '../tar/offset-walk.js';
import { decompress } from '../stream/decompress.js';
import { Sha256Counter, verified } from '../stream/hash.js';

const BLOB = /^blobs\/sha256\/([a-f0-9]{64})$/;

export interface LeftoverLayer {
  digest: Digest;
  size: number;
  mediaType: string;
  diffId: DiffId;
  uncompressedSize: number;
}

/** What a leftover's blobs go into (the bundle writer): it is asked what it stores, and given what it lacks. */
export interface LeftoverSink {
  hasBlob(digest: Digest): boolean;
  layer(diffId: DiffId): unknown;
  addBlob(blob: { mediaType: string; digest: Digest; size: number; diffId: DiffId }, body: AsyncIterable<Buffer>): Promise<{ uncompressedSize: number }>;
}

export class Leftover {
  private layersFound: Promise<Map<DiffId, LeftoverLayer>> | undefined;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly entries: Map<Digest, { offset: number; size: number }>,
  ) {}

  /** find opens the largest temp file a dead ferry left for `output`, if any (it is removed by the new writer). */
  static async find(output: string): Promise<Leftover | undefined> {
    const stale = (await staleTemps(output)).filter((p) => p.endsWith('.partial'));
    let best: { path: string; fh: FileHandle; size: number } | undefined;
    for (const path of stale) {
      const fh = await open(path, 'r').catch(() => undefined);
      if (!fh) continue;
      const { size } = await fh.stat();
      if (!best || size > best.size) {
        await best?.fh.close();
        best = { path, fh, size };
      } else await fh.close();
    }
    if (!best) return undefined;
    const entries = new Map<Digest, { offset: number; size: number }>();
    // A killed writer's file ends mid-entry or without an end marker: every entry met before that is whole.
    await walkTarFile(best.fh, {
      kind: 'partial bundle',
      fail: (_e, what) => new Error(what),
      visit: (h) => {
        const m = h.type === 'file' ? BLOB.exec(h.name) : null;
        if (m) entries.set(`sha256:${m[1]}` as Digest, { offset: h.offset, size: h.size });
        return h.name;
      },
    }).catch(() => undefined);
    if (entries.size === 0) {
      await best.fh.close();
      return undefined;
    }
    return new Leftover(best.path, best.fh, entries);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * reuseInto stores in sink the blobs this leftover finished for these images, each checked (digest, and diffID
   * beside the copy), so sources need not pull or compress them again: kept blobs by digest, layers ferry
   * compressed by the layer they decompress to (when compressed as this run would). Says how many it took.
   */
  async reuseInto(sink: LeftoverSink, images: readonly { diffIds: readonly DiffId[]; keptLayers?: readonly { mediaType: string; digest: Digest; size: number }[] }[], compression: Compression): Promise<number> {
    let taken = 0;
    const generated: DiffId[] = [];
    for (const img of images) {
      for (const [i, d] of img.diffIds.entries()) {
        const kept = img.keptLayers?.[i];
        if (!kept) generated.push(d);
        else if (this.has(kept.digest) && !sink.hasBlob(kept.digest)) {
          await sink.addBlob({ ...kept, diffId: d }, this.stream(kept.digest));
          taken++;
        }
      }
    }
    if (generated.some((d) => !sink.layer(d))) {
      const found = await this.layers(compression);
      for (const d of generated) {
        const l = found.get(d);
        if (!l || sink.layer(d) || sink.hasBlob(l.digest)) continue;
        const stored = await sink.addBlob(l, this.stream(l.digest));
        // Known now, not only once the check beside the copy ends: pack matches passing layers by it.
        stored.uncompressedSize = l.uncompressedSize;
        taken++;
      }
    }
    return taken;
  }

  has(digest: Digest): boolean {
    return this.entries.has(digest);
  }

  /** stream reads a blob, checked against its digest and size as it passes. */
  stream(digest: Digest): AsyncIterable<Buffer> {
    const e = this.entries.get(digest)!;
    const raw = e.size === 0 ? (async function* () {})() : (this.fh.createReadStream({ autoClose: false, start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
    return verified(raw, { digest, size: e.size, what: `${digest} left by an interrupted pack` });
  }

  /**
   * layers learns which layer each leftover blob of `compression` holds (decompressing and hashing it, which is
   * quicker than compressing it again); blobs that are no such layer, or fail their digest, are skipped.
   */
  layers(compression: Compression): Promise<Map<DiffId, LeftoverLayer>> {
    this.layersFound ??= (async () => {
      const out = new Map<DiffId, LeftoverLayer>();
      for (const [digest, e] of this.entries) {
        if (compression !== 'none' && !(await this.startsWith(e.offset, compression))) continue;
        try {
          const raw = new Sha256Counter();
          for await (const chunk of decompress(this.stream(digest), compression, Number.MAX_SAFE_INTEGER, { transient: true })) raw.update(chunk);
          const diffId = raw.digest() as string as DiffId;
          out.set(diffId, { digest, size: e.size, mediaType: layerMediaType(compression), diffId, uncompressedSize: raw.bytes });
        } catch {
          // Not a layer of this compression (a config, a manifest), or damaged: not reused.
        }
      }
      return out;
    })();
    return this.layersFound;
  }

  private async startsWith(offset: number, compression: Compression): Promise<boolean> {
    const magic = Buffer.alloc(4);
    await this.fh.read(magic, 0, 4, offset);
    return compression === 'zstd' ? magic.readUInt32LE(0) === 0xfd2fb528 : magic[0] === 0x1f && magic[1] === 0x8b;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
