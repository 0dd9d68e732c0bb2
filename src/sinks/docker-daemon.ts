// DockerDaemonSink: images into the Docker daemon at DOCKER_HOST through its load endpoint. It streams a
// docker-save archive with only the layers whose chain the daemon lacks, checks the answer, then tags.
import { once } from 'node:events';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { DockerEngineClient } from '../engine/client.js';
import { heldChains, inspectImage, tagImage } from '../engine/images.js';
import { chainIds, hex, type ChainId } from '../image/digest.js';
import type { DockerSaveEntry } from '../image/model.js';
import type { Platform } from '../image/platform.js';
import { parseReference, repository } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import type { ImageSink, ImageToLoad, LoadedImage } from './sink.js';

export class DockerDaemonSink implements ImageSink {
  private readonly engine: DockerEngineClient;

  constructor(engine: DockerEngineClient) {
    this.engine = engine;
  }

  async platform(signal?: AbortSignal): Promise<Platform> {
    const v = await this.engine.json<{ Os?: string; Arch?: string }>({ method: 'GET', path: '/version', signal });
    return { os: v.Os ?? 'linux', architecture: v.Arch ?? 'amd64' };
  }

  heldChains(signal?: AbortSignal): Promise<Set<ChainId>> {
    return heldChains(this.engine, signal);
  }

  async load(images: readonly ImageToLoad[], held: ReadonlySet<ChainId>, events: { layer?(diffId: string): void } = {}, signal?: AbortSignal): Promise<LoadedImage[]> {
    const present = new Set<string>();
    for (const img of images) if (await inspectImage(this.engine, img.imageId, signal)) present.add(img.imageId);
    const toLoad = images.filter((i) => !present.has(i.imageId));
    const results = new Map<string, LoadedImage>();
    if (toLoad.length > 0) {
      for (const r of await this.stream(toLoad, held, events, signal)) results.set(r.imageId, r);
    }
    for (const img of toLoad) {
      if (!(await inspectImage(this.engine, img.imageId, signal))) throw new FerryError('LOAD_FAILED', `the daemon reported success but has no image ${img.imageId}`);
    }
    for (const img of images) {
      if (!results.has(img.imageId)) results.set(img.imageId, { imageId: img.imageId, tags: img.tags, status: 'present', layersSent: 0, layersPresent: img.layers.length });
    }
    return images.map((i) => results.get(i.imageId)!);
  }

  async tag(images: readonly ImageToLoad[]): Promise<void> {
    for (const img of images) {
      for (const t of img.tags) {
        const ref = parseReference(t);
        await tagImage(this.engine, img.imageId, repository(ref), ref.tag ?? 'latest');
      }
    }
  }

  /** stream sends one docker-save archive; the daemon unpacks it whole before it registers anything. */
  private async stream(images: readonly ImageToLoad[], held: ReadonlySet<ChainId>, events: { layer?(diffId: string): void }, signal?: AbortSignal): Promise<LoadedImage[]> {
    const pack = tar.pack();
    const sent = new Set<string>();
    const plan: { img: ImageToLoad; send: boolean[] }[] = images.map((img) => {
      const chains = chainIds(img.layers.map((l) => l.diffId));
      const send = img.layers.map((l, i) => {
        if (held.has(chains[i]!) || sent.has(l.diffId)) return false;
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
    // stop ends a feed stuck on backpressure when the daemon has stopped reading (the request failed first).
    const stop = new AbortController();
    const feed = async (): Promise<void> => {
      const add = async (name: string, bytes: Buffer): Promise<void> => {
        await new Promise<void>((res, rej) => pack.entry({ name, size: bytes.length, mtime: new Date(0) }, bytes, (err) => (err ? rej(err) : res())));
      };
      await add('manifest.json', Buffer.from(JSON.stringify(manifest)));
      for (const { img, send } of plan) {
        await add(`${hex(img.imageId)}.json`, img.config);
        for (const [i, l] of img.layers.entries()) {
          if (!send[i]) continue;
          const w = pack.entry({ name: `${hex(l.diffId)}/layer.tar`, size: l.uncompressedSize, mtime: new Date(0) });
          // The entry errors when the pack is destroyed; that is reported through the pack, not here.
          let broken: unknown;
          w.on('error', (err: unknown) => void (broken = err));
          for await (const chunk of l.open()) {
            signal?.throwIfAborted();
            if (broken) throw broken;
            if (!w.write(chunk)) await once(w, 'drain', { signal: stop.signal });
          }
          const finished = once(w, 'finish', { signal: stop.signal });
          w.end(undefined);
          await finished;
          events.layer?.(l.diffId);
        }
      }
      pack.finalize();
    };
    const request = this.engine.request({
      method: 'POST',
      path: '/images/load',
      query: { quiet: '1' },
      headers: { 'content-type': 'application/x-tar' },
      body: Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false }),
      long: true,
      ...(signal ? { signal } : {}),
    });
    // A failed feed breaks the stream, so the daemon's unpack fails before it registers anything.
    const fed = feed().then(
      () => undefined,
      (err: unknown) => {
        pack.destroy(err instanceof Error ? err : new Error(String(err)));
        return err;
      },
    );
    let res;
    try {
      res = await request;
    } catch (err) {
      stop.abort();
      pack.destroy();
      const feedError = await fed;
      throw feedError && (feedError as Error).name !== 'AbortError' ? feedError : err;
    }
    const feedError = await fed;
    if (feedError) {
      res.body.destroy();
      throw feedError;
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
      tags: img.tags,
      status: 'loaded' as const,
      layersSent: send.filter(Boolean).length,
      layersPresent: send.filter((s) => !s).length,
    }));
  }
}
