// pack: the pipeline from sources into a new bundle. Each source's layers stream once into the writer (kept
// byte for byte, or compressed as they pass), then images and indexes are recorded and the bundle committed.
// On any failure nothing is left.
import { LayerMismatchError, type AddedLayer, type BundleWriter } from '../bundle/writer.js';
import type { BundleImage, BundleIndex } from '../bundle/format.js';
import { jsonBytes } from '../bundle/format.js';
import type { DiffId, Digest } from '../image/digest.js';
import { sha256Of } from '../image/digest.js';
import { compressionOf, OCI_INDEX } from '../image/media-types.js';
import type { OciIndex } from '../image/model.js';
import type { ImageSource, LayerSink, Resolved } from '../sources/source.js';
import { FerryError } from '../ui/errors.js';
import { decompress } from '../stream/decompress.js';
import { Sha256Counter } from '../stream/hash.js';
import { Spool } from '../stream/spool.js';
import type { IncrementalPlan } from '../sync/plan.js';
import { ThinPlan } from './thin-plan.js';

export interface PackEvents {
  layer?(info: { digest: string; size: number; uncompressedSize: number; repeat: boolean; done: number; total: number }): void;
}

export interface PackPart {
  source: ImageSource;
  resolved: Resolved;
}

export interface PackOptions {
  /** Decompress kept blobs and compress them as the writer does: smaller, but manifest and index digests change. */
  recompress?: boolean;
  events?: PackEvents;
  /** A thin bundle: the layers the target already has stay behind (see planIncremental). */
  plan?: IncrementalPlan;
  signal?: AbortSignal;
}

/** packImages writes every part's images into writer and commits it; the writer is aborted (temp file removed) on failure. */
export async function packImages(parts: readonly PackPart[], writer: BundleWriter, opts: PackOptions = {}): Promise<BundleIndex> {
  const { events = {}, signal } = opts;
  const recompress = opts.recompress ?? false;
  try {
    const thin = new ThinPlan(opts.plan);
    // What a killed run of this same pack finished is taken first, so sources skip it.
    await writer.reuseLeftovers(parts.flatMap((p) => p.resolved.images.map((i) => ({ diffIds: i.diffIds, ...(i.manifest && !recompress ? { keptLayers: i.manifest.layers } : {}) }))));
    const keys = new Set<string>();
    for (const p of parts) {
      for (const img of p.resolved.images) {
        // Layers that stay behind are not progress.
        if (img.manifest && !recompress) for (const l of img.manifest.layers) !thin.leavesOutBlob(l.digest) && keys.add(l.digest);
        else for (const d of img.diffIds) !thin.staysBehind(d as DiffId) && keys.add(d);
      }
    }
    const total = keys.size;
    let done = writer.reused;
    const report = (l: { digest: string; size: number; uncompressedSize: number }, repeat: boolean): void => {
      if (!repeat) done++;
      events.layer?.({ ...l, repeat, done, total });
    };
    // A layer that stays behind is compressed only to learn which one it was; then the plan names it.
    const keep = (d: DiffId): boolean => !thin.staysBehind(d);
    const took = (l: AddedLayer): DiffId => {
      if (l.dropped) thin.passed(l.diffId, l.uncompressedSize);
      else report(l, l.repeat);
      return l.diffId;
    };
    const putMaybeHeld = async (body: AsyncIterable<Buffer>): Promise<DiffId> => {
      const spool = await Spool.create(writer.path);
      try {
        const h = new Sha256Counter();
        for await (const chunk of body) {
          h.update(chunk);
          await spool.write(chunk);
        }
        const d = h.digest() as string as DiffId;
        const held = writer.layer(d);
        if (held) {
          report(held, true);
          return d;
        }
        if (thin.leavesOut(d)) return d;
        return took(await writer.addLayer(spool.read(), keep));
      } finally {
        await spool.remove();
      }
    };
    const sink: LayerSink = {
      has: (d) => writer.layer(d) !== undefined || thin.leavesOut(d),
      wantsBlob: (b) => (recompress ? writer.layer(b.diffId) === undefined && !thin.leavesOut(b.diffId) : !writer.hasBlob(b.digest) && !thin.leavesOutBlob(b.digest)),
      put: async (body, info) => {
        // A layer of the same size as one already held (stored from another save, taken from a killed run, or to
        // stay behind) is hashed first, parked in a spool: if it is that layer, it is not compressed again.
        if (writer.layersOfSize(info.size).length || thin.layersOfSize(info.size).length) return putMaybeHeld(body);
        return took(await writer.addLayer(body, keep));
      },
      putBlob: async (blob, body) => {
        if (!recompress) {
          report(await writer.addBlob(blob, body), false);
          return;
        }
        const l = await writer.addLayer(decompress(body, compressionOf(blob.mediaType) ?? 'none', Number.MAX_SAFE_INTEGER), keep);
        if (l.diffId !== blob.diffId) {
          throw new FerryError('RUNTIME', `layer ${blob.digest} decompresses to ${l.diffId}, but its image config says ${blob.diffId}`, {
            hint: 'the source holds a corrupt or altered image',
          });
        }
        took(l);
      },
      hasOpaque: (d) => writer.hasBlob(d),
      putOpaque: (blob, body) => writer.addOpaque(blob, body),
    };
    for (const { source, resolved } of parts) {
      const exported = await source.export(resolved.images, sink, signal);
      // Artifacts (attestations) name their images by digest: after recompressing, they would name nothing.
      if (!recompress) await source.exportArtifacts?.(resolved.indexes, sink, signal);
      const added = new Map<Digest, BundleImage>();
      for (const img of exported) {
        const kept = recompress ? undefined : img.manifest;
        const rec = await writer.addImage({ refs: img.refs, platform: img.platform, config: img.config, diffIds: img.diffIds as DiffId[], ...(kept ? { manifest: kept } : {}) }, thin.elsewhere);
        if (img.manifest) added.set(img.manifest.digest, rec);
      }
      for (const ix of resolved.indexes) {
        if (!recompress) {
          await writer.addIndex({ refs: ix.refs, manifest: ix.manifest, images: ix.images, artifacts: ix.artifacts });
          continue;
        }
        // Recompressed images have new manifests, so their index is written anew, as OCI.
        const members = ix.images.map((d) => added.get(d)!);
        const index: OciIndex = {
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: members.map((m) => ({ mediaType: m.manifest.mediaType, digest: m.manifest.digest, size: m.manifest.size, platform: { ...m.platform } })),
        };
        const bytes = jsonBytes(index);
        await writer.addIndex({ refs: ix.refs.filter((r) => !r.includes('@')), manifest: { bytes, mediaType: OCI_INDEX, digest: sha256Of(bytes) }, images: members.map((m) => m.manifest.digest) });
      }
    }
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    if (err instanceof LayerMismatchError) throw new FerryError('RUNTIME', err.message, { hint: 'the source holds a corrupt or altered image; nothing was written' });
    throw err;
  }
}
