// missingFor: which layers a bundle relies on that a target (as its inventories, receipts or bundles say) lacks.
import type { BundleIndex } from '../bundle/format.js';
import { chainIds } from '../image/digest.js';
import { familiarReference, parseReference } from '../image/reference.js';
import type { TargetState } from './target-state.js';

/** missingFor lists them; `carried` names blobs the bundles given with it hold between them (a volume set's spanning blobs). */
export function missingFor(index: BundleIndex, target: TargetState, carried: ReadonlySet<string> = new Set()): string[] {
  // A delta layer is carried (as its uncompressed form's digest); what it is rebuilt from must be at the target.
  const held = new Set([...index.blobs.map((b) => b.digest as string), ...(index.deltas ?? []).map((d) => d.diffId as string), ...carried]);
  const relied = new Map(index.reliesOn.map((r) => [r.digest as string, r]));
  const missing = new Map<string, { needed: string[]; carriedBy?: string }>();
  for (const img of index.images) {
    const chains = chainIds(img.layers.map((l) => l.diffId));
    img.layers.forEach((l, i) => {
      if (held.has(l.digest) || target.chains.has(chains[i]!) || target.blobs.has(l.digest)) return;
      const m = missing.get(l.diffId) ?? { needed: [] };
      m.needed.push(`${img.refs[0] ? familiarReference(parseReference(img.refs[0])) : img.imageId.slice(0, 19)} (layer ${i + 1} of ${img.layers.length})`);
      const carrier = relied.get(l.digest)?.carriedBy;
      if (carrier) m.carriedBy = carrier;
      missing.set(l.diffId, m);
    });
  }
  const lines = [...missing].map(([d, m]) => `${d}: needed by ${m.needed.join(', ')}; ${m.carriedBy ? `carried by bundle ${m.carriedBy}` : 'no bundle is known to have carried it'}`);
  for (const delta of index.deltas ?? []) {
    for (const r of delta.references) if (!target.layers.has(r.diffId)) lines.push(`${r.diffId}: reference of delta layer ${delta.diffId}, which is rebuilt from it`);
  }
  return lines;
}
