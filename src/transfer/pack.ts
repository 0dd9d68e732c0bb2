// pack: images from sources into a target that stores layers itself (a bundle being written), through the same
// target contract as load and push: blobs written under no name, images and indexes put, then one commit; abort on
// any failure. Sources hand layers over in their own order (a daemon's save is one stream), so the feed takes them
// as they pass, applying a thin bundle's plan (what stays behind).
import { jsonBytes } from '../bundle/format.js';
import type { DeltaOffer } from '../bundle/writer.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import { chainIds, sha256Of, type DiffId, type Digest } from '../image/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../image/media-types.js';
import type { OciIndex, OciManifest } from '../image/model.js';
import type { ExportedImage, ImageSource, Resolved, SourceIndex } from '../sources/source.js';
import type { BlobToWrite, ImageTarget, ImageToPut, IndexToPut, LayerIngest, LayerToPut, NamedRef } from '../targets/target.js';
import type { IncrementalPlan } from '../sync/plan.js';
import { SourceFeed } from './source-feed.js';
import { ThinPlan } from './thin-plan.js';

export interface PackEvents {
  layer?(info: { digest: string; size: number; uncompressedSize: number; repeat: boolean; done: number; total: number }): void;
  /** The bytes sources are expected to hand over (an estimate: a daemon's images by their size), told once at the start. */
  planned?(bytes: number): void;
  /** Bytes sources handed over, as they pass. */
  read?(bytes: number): void;
}

export interface PackPart {
  source: ImageSource;
  resolved: Resolved;
}

export interface PackOptions {
  /** The target takes stored layers uncompressed (to compress them itself): manifest and index digests change. */
  recompress?: boolean;
  events?: PackEvents;
  /** A thin bundle: the layers the target already has stay behind (see planIncremental). */
  plan?: IncrementalPlan;
  /** A thin bundle's deltas: a layer that travels may be stored as a delta against layers the target holds. */
  delta?: DeltaOffer;
  signal?: AbortSignal;
}

type PackTarget = ImageTarget & LayerIngest;

/** packImages puts every part's images into target and commits it; the target is aborted (nothing named) on failure. */
export async function packImages(parts: readonly PackPart[], target: PackTarget, opts: PackOptions = {}): Promise<NamedRef[]> {
  const { events = {}, signal } = opts;
  const recompress = opts.recompress ?? false;
  try {
    const thin = new ThinPlan(opts.plan);
    // What a killed run of this same pack finished is taken first, so sources skip it.
    const reused = await target.resume(parts.flatMap((p) => p.resolved.images.map((i) => ({ diffIds: i.diffIds, ...(i.manifest && !recompress ? { keptLayers: i.manifest.layers } : {}) }))));
    const keys = new Set<string>();
    let bytes = 0;
    for (const p of parts) {
      for (const img of p.resolved.images) {
        // Layers that stay behind are not progress.
        if (img.manifest && !recompress) {
          for (const l of img.manifest.layers) {
            if (thin.leavesOutBlob(l.digest) || keys.has(l.digest)) continue;
            keys.add(l.digest);
            bytes += l.size;
          }
        } else {
          for (const d of img.diffIds) !thin.staysBehind(d) && keys.add(d);
          // A daemon's save carries every layer of the image, held or not.
          bytes += img.size;
        }
      }
    }
    events.planned?.(bytes);
    let done = reused;
    const feed = new SourceFeed(target, thin, (l, repeat) => {
      if (!repeat) done++;
      events.layer?.({ ...l, repeat, done, total: keys.size });
    }, (n) => events.read?.(n), opts.delta);
    for (const { source, resolved } of parts) {
      const exported = await source.export(resolved.images, feed, signal);
      // Artifacts (attestations) name their images by digest: after recompressing, they would name nothing.
      if (!recompress) await source.exportArtifacts?.(resolved.indexes, feed, signal);
      const images = exported.map((img) => imageToPut(img, target, thin, recompress));
      const bySourceManifest = new Map<Digest, ImageToPut>();
      exported.forEach((img, k) => img.manifest && bySourceManifest.set(img.manifest.digest, images[k]!));
      const indexes = resolved.indexes.map((ix) => indexToPut(ix, ix.images.map((d) => bySourceManifest.get(d)!), recompress));
      await target.putImages(images, indexes, signal ? { signal } : {});
    }
    return await target.commit(signal);
  } catch (err) {
    await target.abort(err);
    throw err;
  }
}

/**
 * imageToPut is an exported image as the target records it: a kept manifest byte for byte (its blobs stored or
 * left behind as they are), else an OCI manifest over the layers as the target stored them or the plan relies on.
 */
function imageToPut(img: ExportedImage, target: PackTarget, thin: ThinPlan, recompress: boolean): ImageToPut {
  const chains = chainIds(img.diffIds);
  const kept = recompress ? undefined : img.manifest;
  const layers = img.diffIds.map((diffId, i): LayerToPut => {
    const keptBlob = kept?.layers[i];
    const relied = keptBlob ? (target.heldBlob(keptBlob.digest) ? undefined : thin.elsewhere.blob(keptBlob.digest)) : target.heldLayer(diffId) ? undefined : thin.elsewhere.layer(diffId);
    const stored = keptBlob ?? target.heldLayer(diffId);
    const blob = relied ?? stored;
    if (!blob) throw new Error(`pack: layer ${diffId} of ${img.id} was neither stored nor left behind by the plan`);
    return {
      diffId,
      chainId: chains[i]!,
      uncompressedSize: target.heldLayer(diffId)?.uncompressedSize ?? relied?.uncompressedSize ?? 0,
      held: relied !== undefined,
      blob: { mediaType: blob.mediaType, digest: blob.digest, size: blob.size },
      ...(relied?.carriedBy !== undefined ? { carriedBy: relied.carriedBy } : {}),
      tar: () => notReadable(diffId),
    };
  });
  const configDigest = sha256Of(img.config);
  let manifest: BlobDescriptor & { bytes: Buffer };
  let config: BlobDescriptor;
  if (kept) {
    manifest = { mediaType: kept.mediaType, digest: kept.digest, size: kept.bytes.length, bytes: kept.bytes };
    config = kept.config;
  } else {
    config = { mediaType: OCI_CONFIG, digest: configDigest, size: img.config.length };
    const doc: OciManifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: layers.map((l) => l.blob!) };
    const bytes = jsonBytes(doc);
    manifest = { mediaType: OCI_MANIFEST, digest: sha256Of(bytes), size: bytes.length, bytes };
  }
  return {
    imageId: configDigest,
    platform: img.platform,
    names: img.refs,
    within: [],
    config: { ...config, bytes: img.config },
    manifest,
    layers,
    // The feed wrote every blob as its source handed it over; the config goes with the image.
    blobs: async () => [],
  };
}

/** indexToPut keeps a source's index byte for byte, or writes one anew (as OCI) over recompressed images. */
function indexToPut(ix: SourceIndex, members: ImageToPut[], recompress: boolean): IndexToPut {
  if (!recompress) {
    return {
      names: ix.refs,
      manifest: { mediaType: ix.manifest.mediaType, digest: ix.manifest.digest, size: ix.manifest.bytes.length, bytes: ix.manifest.bytes },
      images: members,
      artifacts: ix.artifacts.map((a) => ({ manifest: { mediaType: a.mediaType, digest: a.digest, size: a.bytes.length, bytes: a.bytes }, blobs: [a.config, ...a.layers].map(fedAlready) })),
    };
  }
  const index: OciIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: members.map((m) => ({ mediaType: m.manifest.mediaType, digest: m.manifest.digest, size: m.manifest.size, platform: { ...m.platform } })),
  };
  const bytes = jsonBytes(index);
  // A reference by digest named the source's index, which this one is not.
  return { names: ix.refs.filter((r) => !r.includes('@')), manifest: { mediaType: OCI_INDEX, digest: sha256Of(bytes), size: bytes.length, bytes }, images: members, artifacts: [] };
}

/** fedAlready is an artifact blob the feed wrote as its source handed it over: named here, not read again. */
function fedAlready(b: BlobDescriptor): BlobToWrite {
  return { ...b, open: () => notReadable(b.digest) };
}

function notReadable(what: DiffId | Digest): AsyncIterable<Buffer> {
  throw new Error(`pack: ${what} passed from its source once and is not read again`);
}
