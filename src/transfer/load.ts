// load: the pipeline from a bundle into a sink. Check the bundle's references, choose images, rename them,
// refuse up front if the target lacks a layer the bundle relies on, then stream layers decompressed and verified.
import { blobPath, type BundleImage, type BundleImageIndex, type BundleIndex } from '../bundle/format.js';
import { formatPlatform, platformMatches, type Platform } from '../image/platform.js';
import type { BundleReader } from '../bundle/reader.js';
import { checkReferences } from '../bundle/verify.js';
import { lookup } from '../bundle/lookup.js';
import { pooled } from '../bundle/pool.js';
import { inflatedOnWorker } from '../bundle/blob-check-pool.js';
import { chainIds, sha256Of } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import { applyRetag, type RetagRule } from '../image/retag.js';
import type { ImageSink, ImageToLoad, LoadedImage } from '../targets/sink.js';
import { bundleError, FerryError } from '../ui/errors.js';
import { decompress } from '../stream/decompress.js';
import { failingAs } from './bundle-faults.js';
import { sized, verified } from '../stream/hash.js';

export interface LoadOptions {
  /** Names or image IDs to load; all images when empty. */
  select?: readonly string[];
  retag?: readonly RetagRule[];
  /** Leave out (and report) images whose layers neither the target nor the bundles hold, instead of refusing: one volume of a set given alone. */
  skipIncomplete?: boolean;
  events?: { layer?(diffId: string): void };
  signal?: AbortSignal;
}

/** What loading one bundle of a chain did. */
export interface LoadedBundle {
  bundle: BundleReader;
  /** The chosen images, as the bundle records them, in load order. */
  chosen: BundleImage[];
  images: LoadedImage[];
  /** Images left out for lack of layers (skipIncomplete), with the layers they lack. */
  skipped: { image: BundleImage; missing: number }[];
}

export async function loadBundle(bundle: BundleReader, sink: ImageSink, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  return (await loadBundles([bundle], sink, opts))[0]!.images;
}

/**
 * loadBundles applies bundles in order, as a chain: a thin bundle may rely on layers an earlier one holds. Every
 * bundle is checked, and every relied-on layer found (in the daemon or earlier in the chain), before anything is sent.
 */
export async function loadBundles(bundles: readonly BundleReader[], sink: ImageSink, opts: LoadOptions = {}): Promise<LoadedBundle[]> {
  for (const bundle of bundles) {
    const faults: string[] = [];
    await checkReferences(bundle, (entry, problem) => faults.push(`${entry}: ${problem}`));
    if (faults.length) throw bundleError(bundle.path, undefined, `${faults.length} inconsistenc${faults.length === 1 ? 'y' : 'ies'} found; nothing was loaded`, faults);
  }
  const platform = await sink.platform(opts.signal);
  const choices = chooseAcross(bundles, opts.select ?? [], platform);
  // A layer one bundle lacks may be in another given with it (volumes of a set): read from there.
  const views = bundles.map((b) => pooled(b, bundles));
  const prepared: { bundle: BundleReader; chosen: BundleImage[]; images: ImageToLoad[]; skipped: LoadedBundle['skipped'] }[] = [];
  for (const [k, bundle] of views.entries()) {
    const images: ImageToLoad[] = [];
    for (const { image, refs } of choices[k]!) images.push(await toLoad(bundle, image, refs, opts.retag ?? [], [bundles[k]!, ...bundles]));
    prepared.push({ bundle, chosen: choices[k]!.map((c) => c.image), images, skipped: [] });
  }

  const held = await sink.heldChains(opts.signal);
  const missing = new Map<string, { needed: string[]; carriedBy?: string }>();
  const willHold = new Set(held);
  for (const p of prepared) {
    const relied = new Map(p.bundle.index.reliesOn.map((r) => [r.digest as string, r]));
    const keep: number[] = [];
    for (const [k, img] of p.chosen.entries()) {
      const chains = chainIds(img.layers.map((l) => l.diffId));
      const lacks = img.layers.map((l, i) => ({ l, i })).filter(({ l, i }) => !p.bundle.blob(l.digest) && !willHold.has(chains[i]!));
      if (lacks.length && opts.skipIncomplete) {
        p.skipped.push({ image: img, missing: lacks.length });
        continue;
      }
      keep.push(k);
      for (const { l, i } of lacks) {
        const m = missing.get(l.diffId) ?? { needed: [] };
        m.needed.push(`${p.images[k]!.tags[0] ?? img.imageId.slice(0, 19)} (layer ${i + 1} of ${img.layers.length}, in ${p.bundle.path})`);
        const carrier = relied.get(l.digest)?.carriedBy;
        if (carrier !== undefined) m.carriedBy = carrier;
        missing.set(l.diffId, m);
      }
    }
    p.chosen = keep.map((k) => p.chosen[k]!);
    p.images = keep.map((k) => p.images[k]!);
    // What this bundle loads, the next ones may build on.
    for (const img of p.chosen) for (const c of chainIds(img.layers.map((l) => l.diffId))) willHold.add(c);
  }
  if (missing.size) {
    const details = [...missing].map(([d, m]) => `${d}: needed by ${m.needed.join(', ')}; ${m.carriedBy ? `carried by bundle ${m.carriedBy}` : 'no bundle is known to have carried it'}`);
    throw new FerryError('MISSING_LAYERS', `the target lacks ${missing.size} layer(s) ${bundles.length > 1 ? 'these bundles rely' : 'this bundle relies'} on but do${bundles.length > 1 ? '' : 'es'} not hold; nothing was loaded`, {
      details,
      hint: 'load the bundles that carried them first (several bundles given in order load as a chain), or pack a full bundle',
    });
  }
  const out: LoadedBundle[] = [];
  let now = held;
  for (const { bundle, chosen, images, skipped } of prepared) {
    try {
      out.push({ bundle, chosen, images: images.length ? await sink.load(images, now, opts.events ?? {}, opts.signal) : [], skipped });
    } catch (err) {
      throw asLayerLie(err, bundle) ?? err;
    }
    now = new Set(now);
    for (const img of chosen) for (const c of chainIds(img.layers.map((l) => l.diffId))) now.add(c);
  }
  // Tags last, for the whole chain: a failure above leaves every name where it was.
  for (const { images } of prepared) await sink.tag(images);
  return out;
}

/** chooseAcross picks images in each bundle; with names, each name must be in at least one bundle. */
function chooseAcross(bundles: readonly BundleReader[], names: readonly string[], platform: Platform): Choice[][] {
  if (names.length === 0 || bundles.length === 1) return bundles.map((b) => chooseImages(b.index, names, platform));
  const found = new Set<string>();
  const out = bundles.map((b) => {
    const mine = names.filter((n) => {
      try {
        lookup(b.index, n);
      } catch {
        return false;
      }
      found.add(n);
      return true;
    });
    return mine.length ? chooseImages(b.index, mine, platform) : [];
  });
  const absent = names.filter((n) => !found.has(n));
  if (absent.length) throw new FerryError('IMAGE_NOT_FOUND', `${absent.join(', ')}: in none of the bundles given`, { hint: '`ferry inspect BUNDLE` lists what a bundle holds' });
  return out;
}

/** Layers smaller than this are decompressed in this thread: a worker's round trips would cost more than they save. */
const ON_WORKER = 1 << 20;

/** toLoad reads an image's config and says how to stream its layers; readers holds every bundle, this one first. */
async function toLoad(bundle: BundleReader, img: BundleImage, refs: readonly string[], retag: readonly RetagRule[], readers: readonly BundleReader[]): Promise<ImageToLoad> {
  const config = await bundle.readBytes(blobPath(img.config.digest), 16 << 20);
  if (sha256Of(config) !== img.imageId) throw bundleError(bundle.path, blobPath(img.config.digest), 'content does not match its digest; nothing was loaded');
  return {
    imageId: img.imageId,
    config,
    tags: refs.filter((r) => !r.includes('@')).map((r) => applyRetag(r, retag)),
    layers: img.layers.map((l) => {
      const blob = bundle.blob(l.digest);
      const compression = blob && compressionOf(blob.mediaType);
      return {
        diffId: l.diffId,
        uncompressedSize: blob?.uncompressedSize ?? 0,
        open: () => {
          if (!blob || !compression || blob.uncompressedSize === undefined) throw bundleError(bundle.path, blobPath(l.digest), 'layer is not in this bundle');
          const entry = blobPath(blob.digest);
          // The stored bytes are checked here; the diffID of what they decompress to is checked by the daemon itself
          // (it hashes every layer it receives against the config), so hashing it here too would only cost time.
          // Big layers are read, checked and decompressed on a worker, so this thread only sends them on.
          const holder = blob.size >= ON_WORKER ? readers.find((r) => r.blob(blob.digest)) : undefined;
          const at = holder?.entries.get(entry);
          const inflated =
            at && holder
              ? inflatedOnWorker({ path: holder.path, offset: at.offset, length: at.size, digest: blob.digest, size: blob.size, what: entry, compression, limit: blob.uncompressedSize })
              : undefined;
          const raw = sized(
            inflated ?? decompress(verified(bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }), compression, blob.uncompressedSize),
            blob.uncompressedSize,
            `${entry} (uncompressed)`,
          );
          return failingAs(raw, bundle.path, entry, 'the load was stopped: nothing was loaded or tagged');
        },
      };
    }),
  };
}

/** A chosen image and the references it is to be tagged with (before retagging). */
interface Choice {
  image: BundleImage;
  refs: string[];
}

/**
 * chooseImages picks images by reference (normalised like docker's) or image ID prefix; all when no names are
 * given. A multi-platform index stands for its image for `platform`, which gets the index's references.
 */
export function chooseImages(index: BundleIndex, names: readonly string[], platform: Platform): Choice[] {
  const indexes = index.indexes ?? [];
  const byDigest = new Map(index.images.map((i) => [i.manifest.digest as string, i]));
  const forPlatform = (ix: BundleImageIndex): BundleImage => {
    const members = ix.images.map((d) => byDigest.get(d)).filter((i): i is BundleImage => i !== undefined);
    const hit = members.find((i) => platformMatches(platform, i.platform));
    if (!hit) {
      throw new FerryError('IMAGE_NOT_FOUND', `${ix.refs[0] ?? ix.digest} in the bundle has no ${formatPlatform(platform)} image for this daemon (it has ${members.map((i) => formatPlatform(i.platform)).join(', ')})`, {
        hint: 'pack it with --platform for this daemon\'s platform, or --all-platforms',
      });
    }
    return hit;
  };
  const chosen = new Map<BundleImage, string[]>();
  const add = (img: BundleImage, refs: readonly string[]): void => {
    const list = chosen.get(img) ?? [];
    for (const r of refs) if (!list.includes(r)) list.push(r);
    chosen.set(img, list);
  };
  if (names.length === 0) {
    const inIndex = new Set(indexes.flatMap((x) => x.images as string[]));
    for (const img of index.images) if (img.refs.length > 0 || !inIndex.has(img.manifest.digest)) add(img, img.refs);
    for (const ix of indexes) add(forPlatform(ix), ix.refs);
    return [...chosen].map(([image, refs]) => ({ image, refs }));
  }
  for (const n of names) {
    const found = lookup(index, n);
    add(found.kind === 'index' ? forPlatform(found.index) : found.image, found.refs);
  }
  return [...chosen].map(([image, refs]) => ({ image, refs }));
}

/**
 * asLayerLie turns the daemon's refusal of a layer whose content is not the diffID the image config names
 * ("invalid diffID for layer N: expected X, got Y") into the bundle error it is, naming the entry.
 */
function asLayerLie(err: unknown, bundle: BundleReader): FerryError | undefined {
  if (!(err instanceof FerryError) || err.code !== 'LOAD_FAILED') return undefined;
  const m = /invalid diffID for layer \d+: expected "?(sha256:[a-f0-9]{64})"?, got "?(sha256:[a-f0-9]{64})"?/.exec(err.message);
  if (!m) return undefined;
  const blob = bundle.index.blobs.find((b) => b.diffId === m[1]);
  return bundleError(bundle.path, blob ? blobPath(blob.digest) : undefined, `(uncompressed) diffID: expected ${m[1]}, got ${m[2]} (the daemon refused it); the load was stopped: nothing was loaded or tagged`);
}
