// What a thin pack leaves behind: the target's state gathered from --have files and a catalogued site, planned
// against the resolved images; and the dry run's view of that plan (which layers would travel).
import type { Catalog } from '../catalog/catalog.js';
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

export async function planPack(images: readonly SourceImage[], opts: PackPlanOptions): Promise<IncrementalPlan> {
  const state = new TargetState();
  for (const h of opts.haves) await addHave(state, h);
  if (opts.site) addSiteState(state, opts.site.catalog, opts.site.name, { confirmedOnly: opts.site.confirmedOnly });
  return planIncremental(
    images.map((i) => ({ diffIds: i.diffIds, ...(i.manifest && !opts.recompress ? { keptLayers: i.manifest.layers } : {}) })),
    state,
  );
}

export interface DryRunView {
  dryRun: true;
  images: { refs: string[]; imageId: string; travels: number; reliedOn: number }[];
  /** diffIDs of the layers that would travel, and of those the target holds. */
  travel: string[];
  reliedOn: string[];
}

/** dryRunView says, per image and overall, which layers a pack would carry and which it would rely on. */
export function dryRunView(images: readonly SourceImage[], plan: IncrementalPlan | undefined, recompress: boolean): DryRunView {
  const relied = (img: SourceImage, i: number): boolean => {
    const kept = img.manifest && !recompress ? img.manifest.layers[i] : undefined;
    return kept ? (plan?.reliedBlobs.has(kept.digest) ?? false) : (plan?.reliedLayers.has(img.diffIds[i]!) ?? false);
  };
  const travel = new Set<string>();
  const reliedOn = new Set<string>();
  const out = images.map((img) => {
    const marks = img.diffIds.map((d, i) => {
      const r = relied(img, i);
      (r ? reliedOn : travel).add(d);
      return r;
    });
    return { refs: img.refs, imageId: img.id, travels: marks.filter((m) => !m).length, reliedOn: marks.filter(Boolean).length };
  });
  return { dryRun: true, images: out, travel: [...travel].sort(), reliedOn: [...reliedOn].sort() };
}
