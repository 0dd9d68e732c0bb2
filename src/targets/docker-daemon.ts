// DockerDaemonTarget: images into the Docker daemon at DOCKER_HOST through its load endpoint. It streams a
// docker-save archive with only the layers whose chain the daemon lacks, checks the answer; commit tags.
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import type { DockerEngineClient } from '../engine/client.js';
import { heldChains, inspectImage, tagImage } from '../engine/images.js';
import { saveLayers } from '../engine/layer-tars.js';
import { chainIds, hex, type ChainId, type DiffId, type Digest } from '../image/digest.js';
import type { DockerSaveEntry } from '../image/model.js';
import type { Platform } from '../image/platform.js';
import { parseReference, repository } from '../image/reference.js';
import { Limiter } from '../stream/limiter.js';
import { BLOCK, encodeHeader } from '../tar/header.js';
import { FerryError } from '../ui/errors.js';
import { planLoadRequests, type LoadStep } from './load-requests.js';
import type { ImageTarget, ImageToPut, LayerKeeper, LayerQuestion, NamedRef, PutImage, PutOptions, WantedLayer } from './target.js';

const ZEROS = Buffer.alloc(BLOCK);
/** Load requests at once: dockerd unpacks each on one core (two on two cores measured as fast as three). */
const SIDE_BY_SIDE = Math.min(4, Math.max(2, availableParallelism()));
/** The end of a tar: two zero blocks. */
const END = Buffer.alloc(2 * BLOCK);

/** file is one small tar entry: header, content, padding. */
function* file(name: string, bytes: Buffer): Generator<Buffer> {
  yield encodeHeader(name, bytes.length);
  yield bytes;
  if (bytes.length % BLOCK) yield ZEROS.subarray(0, BLOCK - (bytes.length % BLOCK));
}

export class DockerDaemonTarget implements ImageTarget {
  readonly reuse = 'chain';
  readonly needsNames = false;
  private readonly engine: DockerEngineClient;
  private chains: Promise<Set<ChainId>> | undefined;
  /** Images put, to be tagged at commit. */
  private readonly put: ImageToPut[] = [];

  constructor(engine: DockerEngineClient) {
    this.engine = engine;
  }

  get description(): string {
    return `the Docker daemon at ${this.engine.host}`;
  }

  get inventoryCommand(): string {
    return 'ferry inventory';
  }

  async platform(signal?: AbortSignal): Promise<Platform> {
    const v = await this.engine.json<{ Os?: string; Arch?: string }>({ method: 'GET', path: '/version', signal });
    return { os: v.Os ?? 'linux', architecture: v.Arch ?? 'amd64' };
  }

  layerForm(): 'uncompressed' {
    return 'uncompressed';
  }

  /** holds: the daemon reuses a layer only on the same layers below it, so a layer is held when its chain is. */
  async holds(layer: LayerQuestion, _names: readonly string[], signal?: AbortSignal): Promise<boolean> {
    this.chains ??= heldChains(this.engine, signal);
    return (await this.chains).has(layer.chainId);
  }

  async putImages(images: readonly ImageToPut[], _indexes: unknown, opts: PutOptions = {}): Promise<PutImage[]> {
    const { signal } = opts;
    const present = new Set<string>();
    for (const img of images) if (await inspectImage(this.engine, img.imageId, signal)) present.add(img.imageId);
    const toLoad = images.filter((i) => !present.has(i.imageId));
    const results = new Map<string, PutImage>();
    if (toLoad.length > 0) {
      const held = new Set<ChainId>();
      for (const img of images) for (const l of img.layers) if (l.held) held.add(l.chainId);
      for (const r of await this.streamAll(toLoad, held, opts.onLayer ?? (() => undefined), signal)) results.set(r.imageId, r);
    }
    for (const img of toLoad) {
      if (!(await inspectImage(this.engine, img.imageId, signal))) throw new FerryError('LOAD_FAILED', `the daemon reported success but has no image ${img.imageId}`);
    }
    for (const img of images) {
      if (!results.has(img.imageId)) results.set(img.imageId, { imageId: img.imageId, status: 'present', layersSent: 0, layersPresent: img.layers.length });
    }
    this.put.push(...images);
    return images.map((i) => results.get(i.imageId)!);
  }

  /**
   * commit tags every image put; a name moved from another image leaves that one without it, as docker load does, and
   * says which image that was (asked just before the tag moves).
   */
  async commit(signal?: AbortSignal): Promise<NamedRef[]> {
    const out: NamedRef[] = [];
    for (const img of this.put) {
      for (const t of img.names) {
        const ref = parseReference(t);
        if (ref.digest) continue;
        const name = `${repository(ref)}:${ref.tag ?? 'latest'}`;
        const before = (await inspectImage(this.engine, name, signal))?.Id;
        await tagImage(this.engine, img.imageId, repository(ref), ref.tag ?? 'latest');
        out.push({ name: t, digest: img.imageId, imageId: img.imageId, ...(before && before !== img.imageId ? { movedFrom: before as Digest } : {}) });
      }
    }
    return out;
  }

  /** abort names nothing: images already loaded stay, untagged, and a re-run finds them there. */
  /** layerTars saves the daemon's images that hold these layers and hands each layer over as it passes. */
  async layerTars(wanted: readonly WantedLayer[], keeper: LayerKeeper, signal?: AbortSignal): Promise<void> {
    await saveLayers(this.engine, wanted.map((w) => w.diffId), (body, size) => keeper.take(body, size), signal);
  }

  async abort(): Promise<void> {
    this.put.length = 0;
  }

  /**
   * streamAll sends the images as planLoadRequests splits them, up to SIDE_BY_SIDE requests at once. A request that
   * builds on another starts as soon as that one has started: its layers stream into the daemon (which unpacks the
   * upload to a temporary directory first) while the other's are being registered, and it holds back the end of
   * its archive, the daemon's cue to register, until the other has finished. The first failure stops the rest.
   */
  private async streamAll(images: readonly ImageToPut[], held: ReadonlySet<ChainId>, onLayer: (diffId: DiffId) => void, signal?: AbortSignal): Promise<PutImage[]> {
    const chains = images.map((img) => chainIds(img.layers.map((l) => l.diffId)));
    const steps = planLoadRequests(
      images.map((img, i) => ({ chains: chains[i]!, sizes: img.layers.map((l) => l.uncompressedSize) })),
      held,
      SIDE_BY_SIDE,
    );
    const stop = new AbortController();
    const stopped = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const out: PutImage[] = [];
    let failure: { err: unknown } | undefined;
    const requests = new Limiter(SIDE_BY_SIDE);
    const run = async (step: LoadStep, heldNow: ReadonlySet<ChainId>, before?: Promise<void>): Promise<void> => {
      let next: Promise<void>[] = [];
      await requests.run(async () => {
        let finished!: { resolve(): void; reject(err: unknown): void };
        const done = new Promise<void>((resolve, reject) => (finished = { resolve, reject }));
        done.catch(() => undefined);
        const after = new Set(heldNow);
        for (const i of step.images) for (const c of chains[i]!) after.add(c);
        // The ones that build on this one start now, as slots allow, and upload while it registers; it holds its slot
        // already, so it never waits for them.
        next = step.then.map((s) => run(s, after, done));
        try {
          if (failure) throw failure.err;
          out.push(...(await this.stream(step.images.map((i) => images[i]!), heldNow, onLayer, stopped, before)));
          finished.resolve();
        } catch (err) {
          failure ??= { err };
          stop.abort();
          finished.reject(err);
        }
      });
      await Promise.all(next);
    };
    await Promise.all(steps.map((s) => run(s, held)));
    if (failure) throw failure.err;
    return out;
  }

  /**
   * stream sends one docker-save archive; the daemon unpacks it whole before it registers anything. The archive is
   * framed here (headers, the layers' own chunks, padding), each chunk handed to the request as it comes.
   */
  private async stream(
    images: readonly ImageToPut[],
    held: ReadonlySet<ChainId>,
    onLayer: (diffId: DiffId) => void,
    signal?: AbortSignal,
    /** The archive's end waits for this: until then the daemon holds the upload and registers nothing. */
    before?: Promise<void>,
  ): Promise<PutImage[]> {
    const sent = new Set<string>();
    const plan: { img: ImageToPut; send: boolean[] }[] = images.map((img) => {
      const send = img.layers.map((l) => {
        if (held.has(l.chainId) || sent.has(l.diffId)) return false;
        sent.add(l.diffId);
        return true;
      });
      return { img, send };
    });
    const manifest: DockerSaveEntry[] = images.map((img) => ({
      Config: `${hex(img.imageId)}.json`,
      RepoTags: null,
      Layers: img.layers.map((l) => `${hex(l.diffId)}/layer.tar`),
    }));
    // Why the archive stopped, when it was the archive (a layer that failed its checks) and not the daemon.
    let feedError: { err: unknown } | undefined;
    let fedNow: () => void = () => undefined;
    const fed = new Promise<void>((r) => (fedNow = r));
    const archive = async function* (): AsyncGenerator<Buffer> {
      try {
        yield* file('manifest.json', Buffer.from(JSON.stringify(manifest)));
        for (const { img, send } of plan) {
          yield* file(`${hex(img.imageId)}.json`, img.config.bytes);
          for (const [i, l] of img.layers.entries()) {
            if (!send[i]) continue;
            const name = `${hex(l.diffId)}/layer.tar`;
            yield encodeHeader(name, l.uncompressedSize);
            let n = 0;
            for await (const chunk of l.tar()) {
              signal?.throwIfAborted();
              n += chunk.length;
              if (n > l.uncompressedSize) throw new Error(`${name}: more than the ${l.uncompressedSize} bytes its header says`);
              yield chunk;
            }
            if (n !== l.uncompressedSize) throw new Error(`${name}: ${n} bytes, not the ${l.uncompressedSize} its header says`);
            if (n % BLOCK) yield ZEROS.subarray(0, BLOCK - (n % BLOCK));
            onLayer(l.diffId);
          }
        }
        if (before) await untilAborted(before, signal);
        yield END;
      } catch (err) {
        // A failed archive breaks the request, so the daemon's unpack fails before it registers anything.
        feedError = { err };
        throw err;
      } finally {
        fedNow();
      }
    };
    let res;
    try {
      res = await this.engine.request({
        method: 'POST',
        path: '/images/load',
        query: { quiet: '1' },
        headers: { 'content-type': 'application/x-tar' },
        body: Readable.from(archive(), { objectMode: false, highWaterMark: 1 << 20 }),
        long: true,
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (feedError) throw feedError.err;
      throw err;
    }
    // The daemon may answer before it has read everything: what was sent must have been sent whole.
    await fed;
    if (feedError) {
      res.body.destroy();
      throw feedError.err;
    }
    const text = await res.body.text();
    if (res.statusCode >= 300) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        /* keep text */
      }
      throw new FerryError('LOAD_FAILED', `the Docker daemon at ${this.engine.host} refused the load: ${message.trim()}`);
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let msg: { error?: string; errorDetail?: { message?: string } };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.error || msg.errorDetail) {
        throw new FerryError('LOAD_FAILED', `the Docker daemon at ${this.engine.host} failed to load: ${(msg.errorDetail?.message ?? msg.error ?? '').trim()}`);
      }
    }
    return plan.map(({ img, send }) => ({
      imageId: img.imageId,
      status: 'put' as const,
      layersSent: send.filter(Boolean).length,
      layersPresent: send.filter((s) => !s).length,
    }));
  }
}

/** untilAborted waits for p, or throws the signal's reason once it is aborted. */
function untilAborted(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
