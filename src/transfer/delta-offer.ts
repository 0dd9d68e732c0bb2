// PackDeltas: a thin pack's offer of deltas. A layer that travels is encoded against layers the target holds that it
// most likely changed from (last week's version in the target's image of the same repository, and the layers below
// it), read from wherever they are (--have bundles, the layer cache, the source's other images).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeltaFile, DeltaOffer } from '../bundle/writer.js';
import { encodeDelta } from '../delta/encode.js';
import { DeltaError } from '../delta/recipe.js';
import { hex, type DiffId } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { SourceImage } from '../sources/source.js';
import { repositoryOf } from '../sync/target-state.js';
import type { ReferenceLayers } from './delta-references.js';

/**
 * At most this many reference layers per delta: each is read whole on both sides (a daemon saves whole images to
 * hand it back), so a few likely ones beat many possible ones.
 */
const MAX_REFERENCES = 4;

/**
 * worthADelta: a delta costs the far side reading its references whole, so it must save a real share of the layer,
 * not the few bytes by which a delta and a whole layer of a tiny or mostly new layer differ (by which the choice
 * also flipped between two builds of the same layer, their tars' timestamps aside).
 */
export function worthADelta(deltaBytes: number, wholeBytes: number): boolean {
  return deltaBytes <= wholeBytes * 0.75 && wholeBytes - deltaBytes >= 4096;
}

export interface DeltaCandidates {
  images: readonly SourceImage[];
  /** The target holds this layer. */
  held(diffId: DiffId): boolean;
  /** The target's images by repository, each as its layers. */
  byRepository: ReadonlyMap<string, readonly (readonly DiffId[])[]>;
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
    let d;
    try {
      d = await encodeDelta({ path: layer.tar, diffId: layer.diffId, size: layer.size }, files, out, { maxNew: Math.floor(layer.size / 2), ...(this.opts.level !== undefined ? { level: this.opts.level } : {}) });
    } catch (err) {
      // A tar the delta's reader cannot walk (an old GNU form, say) still travels: whole, as it came.
      if (err instanceof DeltaError) return undefined;
      throw err;
    }
    if (!d || !worthADelta(d.size, layer.wholeSize)) return rm(out, { force: true }).then(() => undefined);
    // Each reference is named with the blob the target holds it as, where known: a registry or content store reads it back by that.
    const references = d.references.map((r) => ({ ...r, ...(this.candidates.blobOf(r.diffId) ? { blob: this.candidates.blobOf(r.diffId)! } : {}) }));
    const file: DeltaFile = { path: out, digest: d.digest, size: d.size, references };
    return file;
  };

  async close(): Promise<void> {
    await this.refs.close();
  }

  /**
   * referencesFor lists the held layers a new layer most likely changed from, likeliest first: in last week's image
   * of the same repository, the layer at the same place in the stack (the one it replaced), else that image's top
   * layer; then the layers below it in its own image, nearest first (an upgrade rewrites files they hold).
   */
  private referencesFor(diffId: DiffId): DiffId[] {
    const replaced = new Set<DiffId>();
    const below = new Set<DiffId>();
    for (const img of this.candidates.images.filter((i) => i.diffIds.includes(diffId))) {
      const at = img.diffIds.indexOf(diffId);
      for (const ref of img.refs) {
        const path = pathOf(repositoryOf(ref));
        if (!path) continue;
        // A registry holds it under its own host, perhaps under a prefix (registry.site/mirror/team/app for team/app).
        for (const [repo, images] of this.candidates.byRepository) {
          const there = pathOf(repo);
          if (there !== path && !there?.endsWith(`/${path}`)) continue;
          for (const layers of images) {
            const old = layers[at] !== undefined && layers.length === img.diffIds.length ? layers[at] : layers.at(-1);
            if (old !== undefined && !img.diffIds.includes(old)) replaced.add(old);
          }
        }
      }
      for (const d of img.diffIds.slice(0, at).reverse()) if (this.candidates.held(d)) below.add(d);
    }
    // With the layer it replaced found, one layer below is enough; without, look further down.
    return [...replaced, ...[...below].slice(0, replaced.size ? 1 : MAX_REFERENCES)].slice(0, MAX_REFERENCES);
  }

}

/** pathOf is a repository without its registry host: docker.io/library/nginx is library/nginx. */
function pathOf(repo: string | undefined): string | undefined {
  return repo?.slice(repo.indexOf('/') + 1);
}
