// push: bundles into a registry through the one copy loop, and --dry-run: what a push would do with each blob,
// asking the registry but writing nothing.
import type { BundleImage } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { pooled } from '../bundle/pool.js';
import type { Digest } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import { applyRetag, type RetagRule } from '../image/retag.js';
import type { RegistryTarget } from '../targets/registry.js';
import { copyBundles, type CopyOptions, type CopyResult } from './copy.js';
import { checkBundles } from './preflight.js';
import { checkRetagRules } from './retag-check.js';
import { chooseAcross } from './select.js';

export type PushOptions = Omit<CopyOptions, 'verb'>;

/** pushBundles applies bundles in order (a later volume may rely on blobs an earlier one pushed); see copyBundles. */
export function pushBundles(bundles: readonly BundleReader[], target: RegistryTarget, opts: PushOptions = {}): Promise<CopyResult> {
  return copyBundles(bundles, target, { ...opts, verb: 'push' });
}

export interface DryRunRepo {
  repo: string;
  tags: string[];
  blobs: { digest: string; size: number; action: string }[];
}

/** dryRun says, per repository, what a push would do with each blob, asking the registry but writing nothing. */
export async function dryRun(bundles: readonly BundleReader[], target: RegistryTarget, opts: Pick<PushOptions, 'select' | 'retag' | 'signal'> = {}): Promise<{ repos: DryRunRepo[]; untagged: BundleImage[] }> {
  await checkBundles(bundles, 'pushed');
  const retag: readonly RetagRule[] = opts.retag ?? [];
  const rename = (refs: readonly string[]): string[] => refs.map((r) => applyRetag(r, retag));
  const choices = chooseAcross(bundles.map((b) => b.index), opts.select ?? [], undefined);
  checkRetagRules(retag, choices);
  const repos = new Map<string, DryRunRepo & { seen: Set<string> }>();
  const entries: { bundle: BundleReader; image: BundleImage; repo: string }[] = [];
  const names: string[] = [];
  const tag = (name: string): { repo: string } => {
    names.push(name);
    const p = target.placed(name);
    const full = `${target.registry}/${p.repo}`;
    if (!repos.has(p.repo)) repos.set(p.repo, { repo: full, tags: [], blobs: [], seen: new Set() });
    const r = repos.get(p.repo)!;
    if (!p.ref.startsWith('sha256:') && !r.tags.includes(p.ref)) r.tags.push(p.ref);
    return p;
  };
  for (const [k, c] of choices.entries()) {
    const bundle = pooled(bundles[k]!, bundles);
    for (const { image, refs } of c.images) for (const n of rename(refs)) entries.push({ bundle, image, repo: tag(n).repo });
    for (const { index, refs } of c.indexes) {
      for (const n of rename(refs)) {
        const { repo } = tag(n);
        for (const d of index.images) entries.push({ bundle, image: bundle.index.images.find((i) => i.manifest.digest === d)!, repo });
      }
    }
  }
  target.willPut(names);
  for (const { bundle, image, repo } of entries) {
    const r = repos.get(repo)!;
    const relied = new Map(bundle.index.reliesOn.map((x) => [x.digest as string, x]));
    for (const b of [...image.layers.map((l) => bundle.blob(l.digest) ?? relied.get(l.digest)!), image.config]) {
      if (r.seen.has(b.digest)) continue;
      r.seen.add(b.digest);
      const action = relied.has(b.digest)
        ? `relied on: ${(await target.find(repo, b.digest as Digest, opts.signal)) ?? 'MISSING from the registry'}`
        : target.layerForm(b.mediaType) === 'gzip' && compressionOf(b.mediaType) !== 'gzip'
          ? `${compressionOf(b.mediaType) === 'none' ? 'compress' : 'recompress'} to gzip, upload`
          : await target.check(repo, b.digest as Digest, opts.signal);
      r.blobs.push({ digest: b.digest, size: b.size, action });
    }
  }
  const list = [...repos.values()].sort((a, b) => a.repo.localeCompare(b.repo)).map(({ repo, tags, blobs }) => ({ repo, tags, blobs }));
  return { repos: list, untagged: choices.flatMap((c) => c.untagged) };
}
