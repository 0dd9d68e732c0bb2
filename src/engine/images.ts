// What the Engine API says about images: inspect, list, and the chain IDs a daemon holds.
import { asDiffId, chainIds, type ChainId, type DiffId } from '../image/digest.js';
import { Limiter } from '../stream/limiter.js';
import type { DockerEngineClient } from './client.js';

export interface EngineImage {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Os: string;
  Architecture: string;
  Variant?: string;
  Size: number;
  RootFS: { Type: string; Layers?: string[] };
}

/** inspectImage returns undefined when the daemon has no such image (404), and throws on anything else. */
export async function inspectImage(engine: DockerEngineClient, nameOrId: string, signal?: AbortSignal): Promise<EngineImage | undefined> {
  const req = { method: 'GET' as const, path: `/images/${encodeURIComponent(nameOrId)}/json`, ...(signal ? { signal } : {}) };
  const res = await engine.request(req);
  if (res.statusCode === 404) {
    await res.body.text();
    return undefined;
  }
  if (res.statusCode >= 300) throw await engine.httpError(res, req);
  return (await res.body.json()) as EngineImage;
}

export function diffIdsOf(img: EngineImage): DiffId[] {
  return (img.RootFS.Layers ?? []).map(asDiffId);
}

/** listImages inspects every image the daemon has, intermediate ones included, a few at a time. */
export async function listImages(engine: DockerEngineClient, signal?: AbortSignal): Promise<EngineImage[]> {
  const list = await engine.json<{ Id: string }[]>({ method: 'GET', path: '/images/json', query: { all: '1' }, ...(signal ? { signal } : {}) });
  const inspecting = new Limiter(8);
  // An image removed while we list it is simply not there.
  const out = await Promise.all(list.map((img) => inspecting.run(() => inspectImage(engine, img.Id, signal))));
  return out.filter((i): i is EngineImage => i !== undefined);
}

/** heldChains lists every layer chain the daemon holds, learned from the images that use them. */
export async function heldChains(engine: DockerEngineClient, signal?: AbortSignal): Promise<Set<ChainId>> {
  const out = new Set<ChainId>();
  for (const img of await listImages(engine, signal)) for (const c of chainIds(diffIdsOf(img))) out.add(c);
  return out;
}

/** tagImage points repo:tag at the image; it replaces an existing tag as `docker tag` does. */
export async function tagImage(engine: DockerEngineClient, imageId: string, repo: string, tag: string): Promise<void> {
  const res = await engine.request({ method: 'POST', path: `/images/${encodeURIComponent(imageId)}/tag`, query: { repo, tag } });
  if (res.statusCode >= 300) throw await engine.httpError(res, { method: 'POST', path: `/images/${imageId}/tag` });
  await res.body.text();
}

/** The diffID of an empty layer tar (1024 zero bytes): a daemon's history gives it no size of its own. */
const EMPTY_LAYER = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/**
 * layerSizes reads each layer's size from the image's history (entries that made a layer have a size; empty
 * ones, such as ENV, have none), or undefined when the history does not line up with the layers.
 */
export async function layerSizes(engine: DockerEngineClient, img: EngineImage, signal?: AbortSignal): Promise<number[] | undefined> {
  let history: { Size: number }[];
  try {
    history = await engine.json<{ Size: number }[]>({ method: 'GET', path: `/images/${encodeURIComponent(img.Id)}/history`, ...(signal ? { signal } : {}) });
  } catch {
    // Sizes only feed estimates (a dry run's bytes): a history the daemon cannot give is no reason to fail.
    signal?.throwIfAborted();
    return undefined;
  }
  if (!Array.isArray(history)) return undefined;
  const sized = history
    .map((h) => h.Size)
    .filter((n) => n > 0)
    .reverse();
  const diffIds = diffIdsOf(img);
  if (sized.length !== diffIds.filter((d) => d !== EMPTY_LAYER).length) return undefined;
  let k = 0;
  return diffIds.map((d) => (d === EMPTY_LAYER ? 0 : sized[k++]!));
}
