// inventoryOfContainerd: what one namespace of a containerd holds: each named image (and each platform of a named
// index) whose manifest and config are in its content store, with the layer blobs the store still has.
import type { ContainerdClient } from '../containerd/index.js';
import { isSha256, sha256Of, type DiffId, type Digest } from '../image/digest.js';
import { HoldingsBuilder } from '../image/holdings.js';
import { formatReference, parseReference } from '../image/reference.js';
import { compressionOf, isImageManifestType, isIndexType, MAX_MANIFEST_BYTES } from '../image/media-types.js';
import type { ImageConfig, OciIndex, OciManifest } from '../image/model.js';
import { INVENTORY_MEDIA_TYPE, type Inventory, type TargetInfo } from './documents.js';

const MAX_CONFIG_BYTES = 16 << 20;

/** describeContainerd names a containerd as reports do: its server UUID (stable while its root lives), socket and namespace. */
export async function describeContainerd(client: ContainerdClient, signal?: AbortSignal): Promise<TargetInfo> {
  const uuid = await client.introspection.uuid(signal).catch(() => '');
  return { kind: 'containerd', ...(uuid ? { id: `${uuid}/${client.namespace}` } : {}), name: `${client.address} (namespace ${client.namespace})` };
}

export async function inventoryOfContainerd(client: ContainerdClient, signal?: AbortSignal): Promise<Inventory> {
  const target = await describeContainerd(client, signal);
  const b = new HoldingsBuilder();
  // A document containerd holds is read once and checked against its digest: the store is trusted for nothing.
  const read = async (digest: string, max: number): Promise<unknown> => {
    const bytes = await client.content.readSmall(digest, max, signal).catch(() => undefined);
    if (!bytes || sha256Of(bytes) !== digest) return undefined;
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  };
  const addManifest = async (desc: { mediaType: string; digest: string }, refs: string[]): Promise<void> => {
    if (isIndexType(desc.mediaType)) {
      const ix = (await read(desc.digest, MAX_MANIFEST_BYTES)) as OciIndex | undefined;
      for (const d of ix?.manifests ?? []) if (isImageManifestType(d.mediaType)) await addManifest(d, []);
      return;
    }
    if (!isImageManifestType(desc.mediaType)) return;
    const doc = (await read(desc.digest, MAX_MANIFEST_BYTES)) as OciManifest | undefined;
    const layers = Array.isArray(doc?.layers) ? doc.layers : [];
    // Artifacts (signatures, attestations) are not images: their "layers" are no filesystem.
    if (!doc?.config || layers.some((l) => compressionOf(l.mediaType) === undefined)) return;
    const cfg = (await read(doc.config.digest, MAX_CONFIG_BYTES)) as ImageConfig | undefined;
    const diffIds = cfg?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every(isSha256) || diffIds.length !== layers.length) return;
    // A layer blob the store dropped (the CRI's discard_unpacked_layers) is no blob to rely on.
    const blobs = await Promise.all(layers.map(async (l) => ((await client.content.info(l.digest, signal)) ? { digest: l.digest as Digest, size: l.size, mediaType: l.mediaType } : undefined)));
    b.addImage({ id: doc.config.digest as Digest, refs, manifest: desc.digest as Digest, diffIds: diffIds as DiffId[], blobs });
  };
  for (const img of await client.images.list([], signal)) await addManifest(img.target, asReference(img.name));
  return { mediaType: INVENTORY_MEDIA_TYPE, version: 1, target, ...b.build() };
}

/** asReference keeps an image record's name when it is a reference (ctr import may leave other names). */
function asReference(name: string): string[] {
  try {
    return [formatReference(parseReference(name))];
  } catch {
    return [];
  }
}
