// preflight: what a copy checks before anything moves, for every target alike: the bundles' cross-references, and
// that every layer an image needs is in the bundles, earlier in the chain, or already held by the target.
import type { BundleImage, BundleImageIndex } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { checkReferences } from '../bundle/verify.js';
import { chainIds, type ChainId } from '../image/digest.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { Limiter } from '../stream/limiter.js';
import type { ImageTarget } from '../targets/target.js';
import { bundleError, FerryError } from '../ui/errors.js';

/** What one bundle of a copy takes, and which of its layers the target holds (per image, layer by layer). */
export interface LayerPlan {
  bundle: BundleReader;
  /** names: what the image is named by; within: the names of the indexes that list it. */
  images: { image: BundleImage; names: string[]; within: string[] }[];
  indexes: { index: BundleImageIndex; names: string[] }[];
  untagged: BundleImage[];
  skipped: { image: BundleImage; missing: number }[];
  held: Map<BundleImage, boolean[]>;
}

/** checkBundles refuses bundles whose indexes, manifests and configs do not agree, naming every fault. */
export async function checkBundles(bundles: readonly BundleReader[], verb: string): Promise<void> {
  for (const bundle of bundles) {
    const faults: string[] = [];
    await checkReferences(bundle, (entry, problem) => faults.push(`${entry}: ${problem}`));
    if (faults.length) throw bundleError(bundle.path, undefined, `${faults.length} inconsistenc${faults.length === 1 ? 'y' : 'ies'} found; nothing was ${verb}`, faults);
  }
}

/** Questions to a target at once (a registry answers each with a request). */
const ASKING = 8;

/**
 * findMissing asks the target about every layer of the chosen images (once per layer and set of names) and fills
 * each plan's `held`. A layer that is neither held, nor in the bundles, nor put by an earlier bundle of the chain is
 * missing: the copy is refused, listing them all, unless skipIncomplete leaves such images out.
 */
export async function findMissing(plans: LayerPlan[], target: ImageTarget, opts: { skipIncomplete: boolean; verb: string; bundles: number; signal?: AbortSignal }): Promise<void> {
  const asking = new Limiter(ASKING);
  const answers = new Map<string, Promise<boolean>>();
  const earlier = new Set<string>();
  const missing = new Map<string, { needed: string[]; carriedBy?: string; digest: string }>();
  for (const plan of plans) {
    const relied = new Map(plan.bundle.index.reliesOn.map((r) => [r.digest as string, r]));
    const keep: LayerPlan['images'] = [];
    const answered = await Promise.all(
      plan.images.map(({ image, names, within }) => {
        const chains = chainIds(image.layers.map((l) => l.diffId));
        return Promise.all(
          image.layers.map((l, i) => {
            const key = reuseKey(target, chains[i]!, l.digest);
            if (earlier.has(key)) return true;
            const where = [...names, ...within];
            const asked = `${key} ${where.join(' ')}`;
            let a = answers.get(asked);
            if (!a) answers.set(asked, (a = asking.run(() => target.holds({ diffId: l.diffId, chainId: chains[i]!, digest: l.digest }, where, opts.signal))));
            return a;
          }),
        );
      }),
    );
    for (const [k, { image, names, within }] of plan.images.entries()) {
      const held = answered[k]!;
      const lacks = image.layers.map((l, i) => ({ l, i })).filter(({ l, i }) => !held[i] && !plan.bundle.blob(l.digest));
      if (lacks.length && opts.skipIncomplete) {
        plan.skipped.push({ image, missing: lacks.length });
        continue;
      }
      plan.held.set(image, held);
      keep.push({ image, names, within });
      for (const { l, i } of lacks) {
        const m = missing.get(l.diffId) ?? { needed: [], digest: l.digest };
        const name = names[0] ?? within[0] ?? image.refs[0];
        m.needed.push(`${name ? familiarReference(parseReference(name)) : image.imageId.slice(0, 19)} (layer ${i + 1} of ${image.layers.length}, in ${plan.bundle.path})`);
        const carrier = relied.get(l.digest)?.carriedBy;
        if (carrier !== undefined) m.carriedBy = carrier;
        missing.set(l.diffId, m);
      }
    }
    plan.images = keep;
    // An index whose image was left out is left out too: it would name a manifest the target lacks.
    const kept = new Set(keep.map((x) => x.image.manifest.digest as string));
    plan.indexes = plan.indexes.filter((x) => x.index.images.every((d) => kept.has(d)));
    // What this bundle puts, the next ones may build on.
    for (const { image } of keep) {
      const chains = chainIds(image.layers.map((l) => l.diffId));
      image.layers.forEach((l, i) => earlier.add(reuseKey(target, chains[i]!, l.digest)));
    }
  }
  if (missing.size === 0) return;
  const what = target.reuse === 'blob' ? 'layer blob(s)' : 'layer(s)';
  const several = opts.bundles > 1;
  throw new FerryError('MISSING_LAYERS', `${target.description} lacks ${missing.size} ${what} ${several ? 'these bundles rely' : 'this bundle relies'} on but do${several ? '' : 'es'} not hold; nothing was ${opts.verb}`, {
    details: [...missing].map(([d, m]) => `${d} (stored as ${m.digest}): needed by ${m.needed.join(', ')}; ${m.carriedBy ? `carried by bundle ${m.carriedBy}` : 'no bundle is known to have carried it'}`),
    hint: `apply the bundles that carried them first (several given in order apply as a chain), or pack against the target's own inventory (${target.inventoryCommand}) so the bundle names what it holds`,
  });
}

function reuseKey(target: ImageTarget, chain: ChainId, digest: string): string {
  return target.reuse === 'chain' ? chain : digest;
}
