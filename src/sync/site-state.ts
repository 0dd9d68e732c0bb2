// What planning believes a catalogued site holds: its last inventory, the receipts since, and (unless only confirmed
// facts count) every bundle made for it since, as if each was applied: a one-way link needs no feedback. A receipt
// for a bundle replaces the assumption with what really happened.
import type { Catalog, CatalogRecord } from '../catalog/catalog.js';
import { carriedLayers, type BundleIndex } from '../bundle/format.js';
import { holdingsOfBundle } from './have.js';
import { TargetState, type HoldingsMeaning } from './target-state.js';

export interface CountingRecord {
  record: CatalogRecord;
  meaning: HoldingsMeaning;
}

/** siteRecords lists the records that count for a site, oldest first, each with how its holdings count. */
export function siteRecords(catalog: Catalog, siteName: string, opts: { confirmedOnly?: boolean } = {}): CountingRecord[] {
  const site = catalog.requireSite(siteName);
  const since = catalog.lastInventory(siteName);
  const records = catalog.records(siteName, { since: since ?? 0, withHoldings: true });
  const reported = new Set(records.filter((r) => r.kind === 'receipt').flatMap((r) => r.bundles));
  // A daemon reuses a layer only on the same layers below it; a registry or containerd's content store by its blob.
  const asSite: HoldingsMeaning = { chains: site.kind === 'docker-daemon', blobs: site.kind === 'registry' || site.kind === 'containerd' };
  const byBlob = site.kind === 'containerd';
  const out: CountingRecord[] = [];
  for (const record of records) {
    if (record.kind === 'inventory') out.push({ record, meaning: asSite });
    else if (record.kind === 'receipt') out.push({ record, meaning: { chains: record.operation !== 'push' && !byBlob, blobs: record.operation === 'push' || byBlob } });
    else if (!opts.confirmedOnly && !reported.has(record.ref)) out.push({ record, meaning: asSite });
  }
  return out;
}

export function siteState(catalog: Catalog, siteName: string, opts: { confirmedOnly?: boolean } = {}): TargetState {
  return addSiteState(new TargetState(), catalog, siteName, opts);
}

/** addSiteState merges what a catalogued site holds into state. */
export function addSiteState(state: TargetState, catalog: Catalog, siteName: string, opts: { confirmedOnly?: boolean } = {}): TargetState {
  const counting = siteRecords(catalog, siteName, opts);
  // Older records say nothing about what the site holds now, but still name the blobs that carried its layers
  // (and which bundle did): relied-on layers are then named as shipped.
  const first = counting[0]?.record.seq ?? Number.MAX_SAFE_INTEGER;
  for (const r of catalog.records(siteName, { withHoldings: true })) {
    if (r.seq < first && r.kind !== 'inventory') state.add(r.holdings, { chains: false, blobs: false }, `site ${siteName}: names from ${r.kind} ${r.ref.slice(0, 19)}`);
  }
  for (const { record: r, meaning } of counting) {
    state.add(r.holdings, meaning, `site ${siteName}: ${r.kind} ${r.ref.slice(0, 19)} (${r.created})`);
  }
  return state;
}

/** recordBundles records bundles made for a site (a set volume by volume: receipts name the volumes they loaded). */
export function recordBundles(catalog: Catalog, site: string, bundles: readonly { path: string; index: BundleIndex }[]): void {
  for (const { path, index } of bundles) {
    const layers = carriedLayers(index);
    catalog.record({
      site,
      kind: 'bundle',
      ref: index.id,
      bundles: [],
      created: index.created,
      path,
      summary: { images: index.images.length, layers: layers.length, bytes: index.blobs.reduce((s, b) => s + b.size, 0), reliesOn: index.reliesOn.length },
      holdings: holdingsOfBundle(index),
    });
  }
}
