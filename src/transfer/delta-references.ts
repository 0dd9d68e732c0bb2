// ReferenceLayers: reference layers' uncompressed tars, each fetched once into a work directory from wherever it is
// (a bundle, a source's images, a target), checked against its diffID: what delta encoding and rebuilding read by range.
import { processAlive } from '../process-alive.js';
import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { blobPath } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import { hex, type DiffId, type Digest } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import type { ImageSource, LayerSink } from '../sources/source.js';
import type { ImageTarget, LayerKeeper, WantedLayer } from '../targets/target.js';
import { decompress } from '../stream/decompress.js';
import { Sha256Counter, verified } from '../stream/hash.js';

/** Hands over the layers it holds of those wanted, each as its uncompressed tar. */
export interface ReferenceOrigin {
  readonly name: string;
  fetch(wanted: readonly WantedLayer[], keeper: LayerKeeper, signal?: AbortSignal): Promise<void>;
}

export interface ReferenceFile {
  diffId: DiffId;
  path: string;
  size: number;
}

/** Work directories are named after the process, so a run after a killed one removes what that one left. */
const WORK_PREFIX = 'ferry-delta-';

async function removeAbandoned(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(/^ferry-delta-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}

export class ReferenceLayers {
  private readonly got = new Map<DiffId, ReferenceFile>();
  /** Layers asked of every origin and found in none: not asked again. */
  private readonly missing = new Set<DiffId>();
  private dir: Promise<string> | undefined;

  constructor(
    private readonly origins: readonly ReferenceOrigin[],
    /** Closes what the origins read from. */
    private readonly closeOrigins: () => Promise<void> = async () => undefined,
  ) {}

  /** files returns those of the layers some origin holds, fetching the ones not fetched yet. */
  async files(layers: readonly WantedLayer[], signal?: AbortSignal): Promise<ReferenceFile[]> {
    let wanted = layers.filter((w) => !this.got.has(w.diffId) && !this.missing.has(w.diffId));
    for (const o of this.origins) {
      if (wanted.length === 0) break;
      this.asking = new Set(wanted.map((w) => w.diffId));
      this.askingSizes = wanted.every((w) => w.size !== undefined) ? new Set(wanted.map((w) => w.size!)) : undefined;
      await o.fetch(wanted, this.keeper, signal);
      wanted = wanted.filter((w) => !this.got.has(w.diffId));
    }
    for (const w of wanted) this.missing.add(w.diffId);
    return layers.flatMap((w) => this.got.get(w.diffId) ?? []);
  }

  /** A work directory beside the references, for files made from them (removed with them). */
  async workDir(): Promise<string> {
    this.dir ??= removeAbandoned().then(() => mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`)));
    return this.dir;
  }

  async close(): Promise<void> {
    await this.closeOrigins();
    if (this.dir) await rm(await this.dir, { recursive: true, force: true });
  }

  /** Layers asked for in the fetch under way: a layer taken unnamed is kept only if it is one of them. */
  private asking = new Set<DiffId>();
  /** Their sizes, when every one is known. */
  private askingSizes: Set<number> | undefined;

  private readonly keeper: LayerKeeper = {
    put: (d, tar) => this.keep(d, tar),
    take: (tar, size) => this.take(tar, size),
  };

  /** take writes a layer aside while hashing it, and keeps it under its diffID if it is wanted. */
  private async take(tar: AsyncIterable<Buffer>, size?: number): Promise<DiffId> {
    if (size !== undefined && this.askingSizes && !this.askingSizes.has(size)) {
      const h = new Sha256Counter();
      for await (const chunk of tar) h.update(chunk);
      return h.digest() as string as DiffId;
    }
    const path = join(await this.workDir(), `incoming-${randomBytes(6).toString('hex')}`);
    const h = new Sha256Counter();
    const fh = await open(path, 'w');
    try {
      for await (const chunk of tar) {
        h.update(chunk);
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
    const d = h.digest() as string as DiffId;
    if (this.asking.has(d) && !this.got.has(d)) {
      const to = join(await this.workDir(), `${hex(d)}.tar`);
      await rename(path, to);
      this.got.set(d, { diffId: d, path: to, size: h.bytes });
    } else await rm(path, { force: true });
    return d;
  }

  /** keep writes a layer to its file; bytes that are not the layer they claim to be are dropped, not kept. */
  private async keep(diffId: DiffId, tar: AsyncIterable<Buffer>): Promise<void> {
    if (this.got.has(diffId)) {
      for await (const _ of tar) void _;
      return;
    }
    const dir = await this.workDir();
    const path = join(dir, `${hex(diffId)}.tar`);
    const h = new Sha256Counter();
    const hashing = new Transform({
      transform(chunk: Buffer, _e, cb) {
        h.update(chunk);
        cb(null, Buffer.from(chunk));
      },
    });
    await pipeline(Readable.from(tar), hashing, createWriteStream(`${path}.part`));
    if (h.digest() !== (diffId as string)) {
      await rm(`${path}.part`, { force: true });
      return;
    }
    await rename(`${path}.part`, path);
    this.got.set(diffId, { diffId, path, size: (await stat(path)).size });
  }
}

/** bundleOrigin reads reference layers a bundle stores (an earlier bundle given with --have, or one given beside). */
export function bundleOrigin(reader: BundleReader): ReferenceOrigin {
  return {
    name: `bundle ${reader.path}`,
    async fetch(wanted, keeper) {
      for (const { diffId: d } of wanted) {
        const b = reader.index.blobs.find((x) => x.diffId === d && compressionOf(x.mediaType) !== undefined);
        if (!b || b.uncompressedSize === undefined) continue;
        const entry = blobPath(b.digest);
        await keeper.put(d, decompress(verified(reader.stream(entry), { digest: b.digest, size: b.size, what: entry }), compressionOf(b.mediaType)!, b.uncompressedSize));
      }
    },
  };
}

/**
 * sourceOrigin reads reference layers from a source's other images: a daemon still holding last week's, or a
 * registry asked for the names the target holds them under (`candidates`).
 */
export function sourceOrigin(source: ImageSource, candidates: (diffIds: readonly DiffId[]) => string[] = () => []): ReferenceOrigin | undefined {
  if (!source.imagesWithLayers) return undefined;
  return {
    name: `${source.transport} source`,
    async fetch(wanted, keeper, signal) {
      const diffIds = wanted.map((w) => w.diffId);
      const names = await source.imagesWithLayers!(diffIds, candidates(diffIds), signal);
      if (names.length === 0) return;
      const resolved = await source.resolve(names, signal ? { signal } : {});
      await source.export(resolved.images, layerFiles(new Set(diffIds), keeper), signal);
    },
  };
}

/** layerFiles is a sink that keeps the wanted layers a source hands over and lets the rest pass. */
function layerFiles(wanted: Set<DiffId>, keeper: LayerKeeper): LayerSink {
  const done = new Set<DiffId>();
  return {
    has: (d) => !wanted.has(d) || done.has(d),
    wantsBlob: (b) => wanted.has(b.diffId) && !done.has(b.diffId),
    // A daemon's save says which layer is which only by hashing it.
    put: async (body, info) => {
      const d = await keeper.take(body, info.size);
      done.add(d);
      return d;
    },
    async putBlob(blob: BlobDescriptor & { diffId: DiffId }, body) {
      const c = compressionOf(blob.mediaType);
      if (!c || done.has(blob.diffId)) return;
      done.add(blob.diffId);
      await keeper.put(blob.diffId, decompress(verified(body, { digest: blob.digest, size: blob.size, what: blob.digest }), c, Number.MAX_SAFE_INTEGER));
    },
    async putOpaque(_b, body) {
      for await (const _ of body) void _;
    },
    hasOpaque: (_d: Digest) => true,
  };
}

/** targetOrigin reads reference layers the target holds (a daemon's images saved, a content store's blobs). */
export function targetOrigin(target: ImageTarget): ReferenceOrigin | undefined {
  if (!target.layerTars) return undefined;
  return { name: target.description, fetch: (wanted, keeper, signal) => target.layerTars!(wanted, keeper, signal) };
}
