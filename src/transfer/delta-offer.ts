// PackDeltas: a thin pack's offer of deltas. A layer that travels is encoded against layers the target holds that it
// most likely changed from (the layers below it in its own image, and those of the target's images of the same
// repository: last week's version), read from wherever they are (--have bundles, the source's other images).
import { join } from 'node:path';
import type { DeltaFile, DeltaOffer } from '../bundle/writer.js';
import { encodeDelta } from '../delta/encode.js';
import { hex, type DiffId } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { SourceImage } from '../sources/source.js';
import { repositoryOf } from '../sync/target-state.js';
import type { ReferenceLayers } from './delta-references.js';

/** At most this many reference layers per delta: each is read whole (its headers, and the contents a match needs). */
const MAX_REFERENCES = 16;

export interface DeltaCandidates {
  images: readonly SourceImage[];
  /** The target holds this layer. */
  held(diffId: DiffId): boolean;
  /** The target's layers by repository. */
  byRepository: ReadonlyMap<string, ReadonlySet<DiffId>>;
  /** The blob the target is known to hold a layer as (registries, content stores), if known. */
  blobOf(diffId: DiffId): BlobDescriptor | undefined;
}

export class PackDeltas {
  constructor(
    private readonly candidates: DeltaCandidates,
    private readonly refs: ReferenceLayers,
    private readonly opts: { level?: number; signal?: AbortSignal } = {},
  ) {}

  readonly offer: DeltaOffer = async (layer) => {
    const wanted = this.referencesFor(layer.diffId).map((d) => ({ diffId: d, ...(this.candidates.blobOf(d) ? { blob: this.candidates.blobOf(d)! } : {}) }));
    if (wanted.length === 0) return undefined;
    const files = await this.refs.files(wanted, this.opts.signal);
    if (files.length === 0) return undefined;
    const out = join(await this.refs.workDir(), `${hex(layer.diffId)}.delta`);
    // Mostly new bytes: the whole layer, compressed fast, is as small and far quicker.
    const d = await encodeDelta({ path: layer.tar, diffId: layer.diffId, size: layer.size }, files, out, { maxNew: Math.floor(layer.size / 2), ...(this.opts.level !== undefined ? { level: this.opts.level } : {}) });
    if (!d) return undefined;
    // Each reference is named with the blob the target holds it as, where known: a registry or content store reads it back by that.
    const references = d.references.map((r) => ({ ...r, ...(this.candidates.blobOf(r.diffId) ? { blob: this.candidates.blobOf(r.diffId)! } : {}) }));
    const file: DeltaFile = { path: out, digest: d.digest, size: d.size, references };
    return file;
  };

  async close(): Promise<void> {
    await this.refs.close();
  }

  /** referencesFor lists the held layers a new layer most likely changed from, nearest first. */
  private referencesFor(diffId: DiffId): DiffId[] {
    const out = new Set<DiffId>();
    const users = this.candidates.images.filter((i) => i.diffIds.includes(diffId));
    for (const img of users) {
      // Last week's version of the same repository first: a rebuilt layer's old self is there.
      for (const ref of img.refs) {
        const path = pathOf(repositoryOf(ref));
        if (!path) continue;
        // A registry holds it under its own host, perhaps under a prefix (registry.site/mirror/team/app for team/app).
        for (const [repo, layers] of this.candidates.byRepository) {
          const there = pathOf(repo);
          if (there === path || there?.endsWith(`/${path}`)) for (const d of [...layers].reverse()) out.add(d);
        }
      }
    }
    for (const img of users) for (const d of [...img.diffIds].reverse()) if (this.candidates.held(d)) out.add(d);
    out.delete(diffId);
    return [...out].slice(0, MAX_REFERENCES);
  }
}

/** pathOf is a repository without its registry host: docker.io/library/nginx is library/nginx. */
function pathOf(repo: string | undefined): string | undefined {
  return repo?.slice(repo.indexOf('/') + 1);
}
