// inventoryOfRegistry: what a registry holds under a prefix: every tagged image (and each platform of a tagged
// index) with its manifest, config and layer blobs, and the diffIDs its config names.
import type { DiffId, Digest } from '../image/digest.js';
import { isSha256 } from '../image/digest.js';
import { compressionOf, isImageManifestType, isIndexType } from '../image/media-types.js';
import type { ImageConfig, OciIndex, OciManifest } from '../image/model.js';
import type { RegistryClient } from '../registry/client.js';
import { collect } from '../stream/hash.js';
import { Limiter } from '../stream/limiter.js';
import { INVENTORY_MEDIA_TYPE, type Inventory } from './documents.js';
import { HoldingsBuilder } from '../image/holdings.js';

const MAX_CONFIG_BYTES = 16 << 20;
const LANES = 8;

export async function inventoryOfRegistry(client: RegistryClient, prefix: string, signal?: AbortSignal): Promise<Inventory> {
  const repos = (await client.listRepositories(signal)).filter((r) => prefix === '' || r === prefix || r.startsWith(`${prefix}/`)).sort();
  const b = new HoldingsBuilder();
  const configs = new Map<Digest, Promise<DiffId[] | undefined>>();
  const diffIdsOf = (repo: string, desc: { digest: Digest; size: number }): Promise<DiffId[] | undefined> => {
    let p = configs.get(desc.digest);
    if (!p) {
      p = (async () => {
        const bytes = await collect(await client.blob(repo, desc.digest, desc.size, signal), MAX_CONFIG_BYTES);
        let cfg: ImageConfig;
        try {
          cfg = JSON.parse(bytes.toString('utf8')) as ImageConfig;
        } catch {
          return undefined;
        }
        const ids = cfg.rootfs?.diff_ids;
        return Array.isArray(ids) && ids.every(isSha256) ? (ids as DiffId[]) : undefined;
      })();
      configs.set(desc.digest, p);
    }
    return p;
  };
  const addManifest = async (repo: string, ref: string, refs: string[]): Promise<void> => {
    const m = await client.getManifest(repo, ref, signal);
    if (isIndexType(m.mediaType)) {
      const ix = JSON.parse(m.bytes.toString('utf8')) as OciIndex;
      for (const d of ix.manifests ?? []) if (isImageManifestType(d.mediaType)) await addManifest(repo, d.digest, []);
      return;
    }
    const doc = JSON.parse(m.bytes.toString('utf8')) as OciManifest;
    const layers = Array.isArray(doc.layers) ? doc.layers : [];
    // Artifacts (signatures, attestations) are not images: their "layers" are no filesystem.
    if (!doc.config || layers.some((l) => compressionOf(l.mediaType) === undefined)) return;
    const diffIds = await diffIdsOf(repo, { digest: doc.config.digest as Digest, size: doc.config.size });
    if (!diffIds || diffIds.length !== layers.length) return;
    b.addImage({
      id: doc.config.digest as Digest,
      refs,
      manifest: m.digest,
      diffIds,
      blobs: layers.map((l) => ({ digest: l.digest as Digest, size: l.size, mediaType: l.mediaType })),
    });
  };
  const work: (() => Promise<void>)[] = [];
  for (const repo of repos) {
    for (const tag of await client.listTags(repo, signal)) work.push(() => addManifest(repo, tag, [`${client.registry}/${repo}:${tag}`]));
  }
  const lanes = new Limiter(LANES);
  await Promise.all(work.map((job) => lanes.run(job)));
  return { mediaType: INVENTORY_MEDIA_TYPE, version: 1, target: { kind: 'registry', id: client.registry, name: prefix ? `${client.registry}/${prefix}` : client.registry }, ...b.build() };
}
