// siteState: what planning believes a catalogued site holds. Its last inventory, the receipts since, and (unless
// only confirmed facts count) every bundle made for it since, as if each was applied: a one-way link needs no
// feedback. A receipt for a bundle replaces the assumption with what really happened.
import type { Catalog, CatalogRecord } from '../catalog/catalog.js';
import { TargetState } from './target-state.js';

export function siteState(catalog: Catalog, siteName: string, opts: { confirmedOnly?: boolean } = {}): TargetState {
  const site = catalog.requireSite(siteName);
  const since = catalog.lastInventory(siteName);
  const records = catalog.records(siteName, { since: since ?? 0, withHoldings: true });
  const reported = new Set(records.filter((r) => r.kind === 'receipt').flatMap((r) => r.bundles));
  const state = new TargetState();
  const what = (r: CatalogRecord): string => `site ${siteName}: ${r.kind} ${r.ref.slice(0, 19)} (${r.created})`;
  for (const r of records) {
    if (r.kind === 'inventory') state.add(r.holdings, { chains: site.kind === 'docker-daemon', blobs: site.kind === 'registry' }, what(r));
    else if (r.kind === 'receipt') state.add(r.holdings, { chains: r.operation !== 'push', blobs: r.operation === 'push' }, what(r));
    else if (!opts.confirmedOnly && !reported.has(r.ref)) {
      state.add(r.holdings, { chains: site.kind === 'docker-daemon', blobs: site.kind === 'registry' }, what(r));
    }
  }
  return state;
}
