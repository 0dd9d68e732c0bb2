// What a thin pack leaves behind: the target's state gathered from --have files and a catalogued site, planned
// against the resolved images; and the dry run's view of that plan (which layers would travel).
import type { Catalog } from '../catalog/catalog.js';
import type { Compression } from '../image/media-types.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { DiffId } from '../image/digest.js';
import type { SourceImage } from '../sources/source.js';
import { addHave } from '../sync/have.js';
import { planIncremental, type IncrementalPlan } from '../sync/plan.js';
import { addSiteState } from '../sync/site-state.js';
import { TargetState } from '../sync/target-state.js';

export interface PackPlanOptions {
  /** Inventories, receipts and bundles the target holds or applied. */
  haves: readonly string[];
  site?: { catalog: Catalog; name: string; confirmedOnly: boolean };
  /** Kept blobs are recompressed, so the target must hold the layers, not those exact blobs. */
  recompress: boolean;
}

/** A thin pack's plan, and what the target's images of each repository are made of (for deltas). */
export interface PackPlan extends IncrementalPlan {
  byRepository: ReadonlyMap<string, readonly (readonly DiffId[])[]>;
  /** For each layer, a blob the target is known to hold it as. */
  known: ReadonlyMap<DiffId, BlobDescriptor>;
  /** For each layer, the names of the target's images that hold it. */
  refsHolding: ReadonlyMap<DiffId, readonly string[]>;
}

export async function planPack(images: readonly SourceImage[], opts: PackPlanOptions): Promise<PackPlan> {
  const state = new TargetState();
  for (const h of opts.haves) await addHave(state, h);
  if (opts.site) addSiteState(state, opts.site.catalog, opts.site.name, { confirmedOnly: opts.site.confirmedOnly });
  const plan = planIncremental(
    images.map((i) => ({ diffIds: i.diffIds, ...(i.manifest && !opts.recompress ? { keptLayers: i.manifest.layers } : {}) })),
    state,
  );
  return { ...plan, byRepository: state.byRepository, known: state.known, refsHolding: state.refsHolding };
}


/**
 * Stored bytes per uncompressed byte, for estimating layers ferry will compress: zstd -3 took the bench corpus (a
 * Debian base, python, a JRE, build tools, an application) to 0.327 of its tar bytes and the week-2 update to 0.335,
 * rounded up so media planned by it are not too small; gzip -6 runs about a tenth larger than zstd -3.
 */
const RATIO: Record<Compression, number> = { zstd: 0.35, gzip: 0.4, none: 1 };

/** Bytes that would travel: stored in the bundle (exact for kept blobs, estimated for layers ferry compresses) and uncompressed. */
export interface DryRunBytes {
  stored: number;
  /** True when part of stored is an estimate (layers ferry would compress). */
  storedEstimated: boolean;
  /** Uncompressed bytes of the layers whose size is known (kept blobs and some daemon histories are not). */
  uncompressed: number;
  /** Layers that travel with no known uncompressed size (and, for ferry-compressed ones, no stored estimate). */
  unsized: number;
}

export interface DryRunView {
  dryRun: true;
  images: { refs: string[]; imageId: string; travels: number; reliedOn: number; bytes: DryRunBytes }[];
  /** diffIDs of the layers that would travel, and of those the target holds. */
  travel: string[];
  reliedOn: string[];
  /** What the bundle would take, each layer counted once. */
  bytes: DryRunBytes;
}

/** dryRunView says, per image and overall, which layers a pack would carry (and their bytes) and which it would rely on. */
export function dryRunView(images: readonly SourceImage[], plan: IncrementalPlan | undefined, opts: { recompress: boolean; compression: Compression }): DryRunView {
  const kept = (img: SourceImage, i: number) => (img.manifest && !opts.recompress ? img.manifest.layers[i] : undefined);
  const relied = (img: SourceImage, i: number): boolean => {
    const k = kept(img, i);
    return k ? (plan?.reliedBlobs.has(k.digest) ?? false) : (plan?.reliedLayers.has(img.diffIds[i]!) ?? false);
  };
  const travel = new Set<string>();
  const reliedOn = new Set<string>();
  const total = noBytes();
  const counted = new Set<string>();
  const out = images.map((img) => {
    const bytes = noBytes();
    const marks = img.diffIds.map((d, i) => {
      const r = relied(img, i);
      (r ? reliedOn : travel).add(d);
      if (r) return true;
      const k = kept(img, i);
      const key = k?.digest ?? d;
      const size = img.layerSizes?.[i];
      for (const into of counted.has(key) ? [bytes] : [bytes, total]) {
        if (k) into.stored += k.size;
        else if (size !== undefined) into.stored += Math.round(size * RATIO[opts.compression]);
        if (!k) into.storedEstimated = true;
        if (size !== undefined) into.uncompressed += size;
        else into.unsized++;
      }
      counted.add(key);
      return false;
    });
    return { refs: img.refs, imageId: img.id, travels: marks.filter((m) => !m).length, reliedOn: marks.filter(Boolean).length, bytes };
  });
  return { dryRun: true, images: out, travel: [...travel].sort(), reliedOn: [...reliedOn].sort(), bytes: total };
}

function noBytes(): DryRunBytes {
  return { stored: 0, storedEstimated: false, uncompressed: 0, unsized: 0 };
}
