// TargetState: what planning believes a target holds, merged from inventories, receipts and earlier bundles.
// A daemon reuses a layer only on top of the same layers (a chain ID); a registry holds blobs, whatever stacks them.
import { chainIds, type ChainId, type DiffId, type Digest } from '../image/digest.js';
import { diffIdsOf, type HeldBlob, type Holdings } from '../image/holdings.js';
import { parseReference, repository } from '../image/reference.js';

/** repositoryOf is a reference's repository (docker.io/library/nginx), undefined for one that does not parse. */
export function repositoryOf(ref: string): string | undefined {
  try {
    return repository(parseReference(ref));
  } catch {
    return undefined;
  }
}

export interface KnownBlob extends HeldBlob {
  /** The bundle that carried it, when one did. */
  carriedBy?: string;
  uncompressedSize?: number;
}

/** How a document's holdings count: as layer chains a daemon has, as blobs a registry has, or both (a bundle). */
export interface HoldingsMeaning {
  chains: boolean;
  blobs: boolean;
  carriedBy?: string;
}

export class TargetState {
  /** Layer chains a daemon target can build on. */
  readonly chains = new Set<ChainId>();
  /** Blobs a registry target holds (or will, once the bundles that carry them are pushed). */
  readonly blobs = new Set<Digest>();
  /** For each layer, a blob known to carry it: what a relied-on layer is named by in a manifest ferry writes. */
  readonly known = new Map<DiffId, KnownBlob>();
  /** The bundle that carried each blob or layer, for the relied-on list. */
  readonly carriers = new Map<string, string>();
  /** What was merged, for messages. */
  readonly sources: string[] = [];
  /** The target's images by repository (docker.io/library/nginx), each as its layers: what last week's version was made of. */
  readonly byRepository = new Map<string, DiffId[][]>();
  /** Every layer the target's images use: what a delta can be rebuilt from there. */
  readonly layers = new Set<DiffId>();
  /** The names of the target's images that hold each layer: where a source registry may still have it. */
  readonly refsHolding = new Map<DiffId, string[]>();

  get empty(): boolean {
    return this.chains.size === 0 && this.blobs.size === 0;
  }

  /** add merges a document's holdings; images that failed hold nothing. */
  add(h: Holdings, meaning: HoldingsMeaning, source: string): void {
    if (meaning.chains || meaning.blobs) this.sources.push(source);
    for (const l of h.layers) {
      const carriedBy = meaning.carriedBy ?? l.carriedBy;
      if (carriedBy !== undefined && !this.carriers.has(l.diffId)) this.carriers.set(l.diffId, carriedBy);
      for (const b of l.blobs ?? []) {
        if (carriedBy !== undefined && !this.carriers.has(b.digest)) this.carriers.set(b.digest, carriedBy);
        if (!this.known.has(l.diffId)) {
          this.known.set(l.diffId, { ...b, ...(l.size !== undefined ? { uncompressedSize: l.size } : {}), ...(carriedBy !== undefined ? { carriedBy } : {}) });
        }
      }
    }
    for (const img of h.images) {
      if (img.status === 'failed') continue;
      if (meaning.chains) for (const c of chainIds(diffIdsOf(h, img))) this.chains.add(c);
      if (meaning.chains || meaning.blobs) {
        for (const d of diffIdsOf(h, img)) {
          this.layers.add(d);
          const refs = this.refsHolding.get(d) ?? [];
          for (const r of img.refs) if (!refs.includes(r)) refs.push(r);
          this.refsHolding.set(d, refs);
        }
        for (const ref of img.refs) {
          const repo = repositoryOf(ref);
          if (!repo) continue;
          const images = this.byRepository.get(repo) ?? [];
          images.push([...diffIdsOf(h, img)]);
          this.byRepository.set(repo, images);
        }
      }
      if (meaning.blobs) for (const i of img.layers) for (const b of h.layers[i]!.blobs ?? []) this.blobs.add(b.digest);
    }
  }
}
