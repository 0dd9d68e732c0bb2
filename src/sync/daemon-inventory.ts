// inventoryOfDaemon: what a Docker daemon holds, from its images (every layer a daemon keeps belongs to one).
import type { DockerEngineClient } from '../engine/client.js';
import { diffIdsOf, listImages } from '../engine/images.js';
import type { Digest } from '../image/digest.js';
import { formatReference, parseReference } from '../image/reference.js';
import { INVENTORY_MEDIA_TYPE, type Inventory, type TargetInfo } from './documents.js';
import { HoldingsBuilder } from '../image/holdings.js';

/** describeDaemon names a daemon as reports do: its ID (stable while its data root lives) and host name. */
export async function describeDaemon(engine: DockerEngineClient, signal?: AbortSignal): Promise<TargetInfo> {
  const info = await engine.json<{ ID?: string; Name?: string }>({ method: 'GET', path: '/info', ...(signal ? { signal } : {}) });
  return { kind: 'docker-daemon', ...(info.ID ? { id: info.ID } : {}), name: info.Name ?? engine.host };
}

export async function inventoryOfDaemon(engine: DockerEngineClient, signal?: AbortSignal): Promise<Inventory> {
  const target = await describeDaemon(engine, signal);
  const b = new HoldingsBuilder();
  for (const img of await listImages(engine, signal)) {
    const refs = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>').flatMap((t) => {
      try {
        return [formatReference(parseReference(t))];
      } catch {
        return [];
      }
    });
    b.addImage({ id: img.Id as Digest, refs, diffIds: diffIdsOf(img) });
  }
  return {
    mediaType: INVENTORY_MEDIA_TYPE,
    version: 1,
    target,
    ...b.build(),
  };
}
