// Layers a daemon holds, read back as their tars: the images that together hold them found by inspecting every
// image, then saved (one request) and each layer handed over as it passes. Where a delta's reference layers come from.
import { FerryError } from '../ui/errors.js';
import type { DiffId } from '../image/digest.js';
import type { DockerEngineClient } from './client.js';
import { diffIdsOf, listImages } from './images.js';
import { readSaveStream, SaveFormatError } from './save-stream.js';

/** imagesHolding names the fewest images it can (greedily) that together hold as many of these layers as the daemon has. */
export async function imagesHolding(engine: DockerEngineClient, diffIds: readonly DiffId[], signal?: AbortSignal): Promise<string[]> {
  const wanted = new Set(diffIds);
  const images = (await listImages(engine, signal)).map((img) => ({ id: img.Id, has: diffIdsOf(img).filter((d) => wanted.has(d)), layers: diffIdsOf(img).length }));
  const names: string[] = [];
  for (;;) {
    // Most wanted layers first; of those, the fewest layers in all (a save carries every layer of the image).
    let best: { id: string; n: number; layers: number } | undefined;
    for (const i of images) {
      const n = i.has.filter((d) => wanted.has(d)).length;
      if (n > 0 && (n > (best?.n ?? 0) || (n === best?.n && i.layers < best.layers))) best = { id: i.id, n, layers: i.layers };
    }
    if (!best) return names;
    names.push(best.id);
    for (const d of images.find((i) => i.id === best!.id)!.has) wanted.delete(d);
  }
}

/**
 * saveLayers saves the images that hold these layers and hands `take` every layer of the save as it passes (take
 * hashes it, keeps the ones it wants and returns its diffID). It says which of the wanted layers were found.
 */
export async function saveLayers(engine: DockerEngineClient, diffIds: readonly DiffId[], take: (body: AsyncIterable<Buffer>, size: number) => Promise<DiffId>, signal?: AbortSignal): Promise<Set<DiffId>> {
  const found = new Set<DiffId>();
  const names = await imagesHolding(engine, diffIds, signal);
  if (names.length === 0) return found;
  const res = await engine.streamGet({ path: '/images/get', query: { names }, ...(signal ? { signal } : {}) });
  try {
    if (res.statusCode >= 300) throw await engine.httpError(res, { method: 'GET', path: '/images/get' });
    await readSaveStream(res.body, {
      isLayerBlob: () => true,
      layer: async (_key, size, body) => {
        const d = await take(body, size);
        found.add(d);
        return d;
      },
    });
  } catch (err) {
    if (err instanceof SaveFormatError) throw new FerryError('DAEMON_ERROR', `unexpected docker save output from ${engine.host}: ${err.message}`);
    throw err;
  } finally {
    res.destroy();
  }
  return found;
}
