// DockerDaemonSource: images from the Docker daemon at DOCKER_HOST, exported with concurrent `docker save`
// streams so that the daemon prepares one group while ferry compresses another.
import { DockerEngineClient } from '../engine/client.js';
import { HttpFramingError } from '../engine/http-response-framer.js';
import { diffIdsOf, inspectImage, layerSizes, type EngineImage } from '../engine/images.js';
import { imagesHolding } from '../engine/layer-tars.js';
import { hex, type DiffId } from '../image/digest.js';
import { formatReference, parseReference, ReferenceError } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import { hashOnly, readSaveStream, SaveFormatError } from '../engine/save-stream.js';
import type { ExportedImage, ImageSource, LayerSink, Resolved, ResolveOptions, SourceImage } from './source.js';

/** An image ID or any prefix of one, as docker takes it (`docker save 401f`); an all-hex name is tried as a name first. */
const IMAGE_ID = /^(sha256:)?[a-f0-9]{1,64}$/;

export interface DockerDaemonSourceOptions {
  /**
   * How many `docker save` requests run at once (default 3; 1 for a single stream). The daemon writes a whole
   * export to disk before its first byte, on about one core: several let it prepare the next groups while ferry
   * compresses one (measured on two cores, medians of 4: 3 saves 0.85× `docker save | zstd -T2`, 2 saves 0.83×,
   * within noise of each other; 1 save 1.08×).
   */
  concurrentSaves?: number;
}

export class DockerDaemonSource implements ImageSource {
  readonly transport = 'docker-daemon';
  private readonly engine: DockerEngineClient;
  private readonly concurrentSaves: number;

  constructor(engine: DockerEngineClient, opts: DockerDaemonSourceOptions = {}) {
    this.engine = engine;
    this.concurrentSaves = Math.max(1, opts.concurrentSaves ?? 3);
  }

  /** resolve inspects each name; images named several ways collapse into one with every tag asked for. */
  async resolve(names: readonly string[], opts: ResolveOptions = {}): Promise<Resolved> {
    const signal = opts.signal;
    const byId = new Map<string, SourceImage>();
    for (const asked of names) {
      const name = asked.replace(/^docker-daemon:/, '');
      const byIdName = IMAGE_ID.test(name);
      let ref: ReturnType<typeof parseReference> | undefined;
      if (!byIdName) {
        try {
          ref = parseReference(name);
        } catch (err) {
          throw new FerryError('USAGE', (err as ReferenceError).message, { hint: 'name images as docker does: nginx:1.27, registry.example/team/app:2.4, an image ID, or name@sha256:…' });
        }
      }
      const img = await inspectImage(this.engine, ref ? formatReference(ref) : name, signal);
      if (!img) {
        throw new FerryError('IMAGE_NOT_FOUND', `image "${asked}" is not in the Docker daemon at ${this.engine.host}`, {
          hint: 'check the name with `docker images`, or pull it first',
        });
      }
      // The daemon, like docker, tried an all-hex name as a repository before as an ID prefix: say which it found.
      if (byIdName) ref = hexNameAsTag(name, img);
      const known = byId.get(img.Id) ?? toSourceImage(asked, img, await layerSizes(this.engine, img, signal));
      if (ref && ref.tag && !ref.digest) {
        const full = formatReference(ref);
        if (!known.refs.includes(full)) known.refs.push(full);
      }
      byId.set(img.Id, known);
    }
    return { images: [...byId.values()], indexes: [] };
  }

  async imagesWithLayers(diffIds: readonly DiffId[], _candidates: readonly string[], signal?: AbortSignal): Promise<string[]> {
    return imagesHolding(this.engine, diffIds, signal);
  }

  async export(images: readonly SourceImage[], sink: LayerSink, signal?: AbortSignal): Promise<ExportedImage[]> {
    const groups = groupForSaves(images, this.concurrentSaves);
    // Ask for every group at once and read each as soon as it is ready: the daemon writes a whole export to disk
    // before its first byte, so the others get ready while one is compressed.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort);
    const pending = groups.map((g) => this.engine.streamGet({ path: '/images/get', query: { names: g.map((i) => i.id) }, signal: controller.signal }));
    // A save still waiting its turn when the export stops fails with no one awaiting it: expected, not a crash.
    pending.forEach((p) => p.catch(() => undefined));
    const seenKeys = new Map<string, DiffId>();
    const expected = new Set(images.flatMap((i) => i.diffIds.map((d) => hex(d))));
    const exported: ExportedImage[][] = [];
    const waiting = new Map(pending.map((p, gi) => [gi, p.then((res) => ({ gi, res }))]));
    try {
      while (waiting.size > 0) {
        const { gi, res } = await Promise.race(waiting.values());
        waiting.delete(gi);
        const group = groups[gi]!;
        if (res.statusCode >= 300) throw await this.engine.httpError(res, { method: 'GET', path: '/images/get' });
        let contents;
        try {
          contents = await readSaveStream(res.body, {
            isLayerBlob: (h) => expected.has(h),
            layer: async (key, size, body) => {
              // The same layer path in two saves of one daemon is the same layer: check it, don't store it twice.
              const seen = seenKeys.get(key);
              if (seen !== undefined && sink.has(seen)) {
                const d = await hashOnly(body);
                if (d !== seen) throw new SaveFormatError(`${key} changed between two saves (${seen} then ${d})`);
                return d;
              }
              const d = await sink.put(body, { size });
              seenKeys.set(key, d);
              return d;
            },
          });
        } catch (err) {
          if (err instanceof SaveFormatError || err instanceof HttpFramingError) throw new FerryError('DAEMON_ERROR', `unexpected docker save output from ${this.engine.host}: ${err.message}`);
          throw this.engine.unreachable(err);
        }
        exported[gi] = group.map((img) => matchExport(img, contents));
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
      for (const p of pending) p.then((r) => r.destroy(), () => undefined);
    }
    return exported.flat();
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

/** hexNameAsTag is the reference an all-hex name found the image by (cafe is cafe:latest), if it was a tag, not an ID prefix. */
function hexNameAsTag(name: string, img: EngineImage): ReturnType<typeof parseReference> | undefined {
  if (name.startsWith('sha256:') || name.length === 64) return undefined;
  const asName = formatReference(parseReference(name));
  const tagged = (img.RepoTags ?? []).some((t) => {
    try {
      return formatReference(parseReference(t)) === asName;
    } catch {
      return false;
    }
  });
  return tagged ? parseReference(name) : undefined;
}

function toSourceImage(asked: string, img: EngineImage, sizes: number[] | undefined): SourceImage {
  return {
    asked,
    refs: [],
    id: img.Id,
    platform: { os: img.Os, architecture: img.Architecture, ...(img.Variant ? { variant: img.Variant } : {}) },
    diffIds: diffIdsOf(img),
    size: img.Size,
    ...(sizes ? { layerSizes: sizes } : {}),
  };
}

/** matchExport finds an image's config and layers in a save's manifest.json and confirms them against inspect. */
function matchExport(img: SourceImage, contents: Awaited<ReturnType<typeof readSaveStream>>): ExportedImage {
  const idHex = hex(img.id);
  const entry = contents.entries.find((e) => e.Config === `${idHex}.json` || e.Config === `blobs/sha256/${idHex}`);
  const config = entry && contents.configs.get(entry.Config);
  if (!entry || !config) throw new FerryError('DAEMON_ERROR', `docker save did not include image ${img.id}`);
  const got = entry.Layers.map((p) => contents.layerAt(p));
  if (got.length !== img.diffIds.length || got.some((d, i) => d !== img.diffIds[i])) {
    throw new FerryError('DAEMON_ERROR', `docker save gave layers for ${img.asked} that differ from what the daemon reported for it`);
  }
  return { ...img, config };
}

/**
 * groupForSaves splits images into up to n groups, one `docker save` each, balanced by the bytes each group
 * must export and keeping images that share layers together where that keeps the balance: a layer two groups
 * both hold is exported twice by the daemon (and only checked, not stored, the second time).
 */
export function groupForSaves(images: readonly SourceImage[], n: number): SourceImage[][] {
  const groups = Array.from({ length: Math.max(1, Math.min(n, images.length)) }, () => ({ images: [] as SourceImage[], load: 0 }));
  for (const img of [...images].sort((a, b) => b.size - a.size)) {
    const costs = groups.map((g) => Math.max(0, img.size - Math.max(0, ...g.images.map((j) => sharedBytes(img, j)))));
    // Least makespan first; on a tie, least new work (a layer exported twice is wasted daemon time).
    const makespan = (k: number): number => Math.max(...groups.map((g, i) => g.load + (i === k ? costs[i]! : 0)));
    let best = 0;
    for (let k = 1; k < groups.length; k++) {
      const [mk, mb] = [makespan(k), makespan(best)];
      if (mk < mb || (mk === mb && costs[k]! < costs[best]!)) best = k;
    }
    groups[best]!.load += costs[best]!;
    groups[best]!.images.push(img);
  }
  return groups.map((g) => g.images).filter((g) => g.length > 0);
}

/** sharedBytes estimates the bytes two images share from their common layer prefix and their sizes. */
function sharedBytes(a: SourceImage, b: SourceImage): number {
  let k = 0;
  while (k < a.diffIds.length && k < b.diffIds.length && a.diffIds[k] === b.diffIds[k]) k++;
  if (k === 0) return 0;
  if (k === b.diffIds.length) return b.size;
  if (k === a.diffIds.length) return a.size;
  return (Math.min(a.size, b.size) * k) / Math.max(a.diffIds.length, b.diffIds.length);
}
