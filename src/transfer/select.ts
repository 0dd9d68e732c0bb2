// select: which images and indexes of the bundles a copy takes, under which references, for every target alike.
// A target that runs one platform gets that platform's image of an index under the index's names; one that keeps
// indexes gets the index whole.
import type { BundleImage, BundleImageIndex, BundleIndex } from '../bundle/format.js';
import { lookup } from '../bundle/lookup.js';
import { formatPlatform, platformMatches, type Platform } from '../image/platform.js';
import { FerryError } from '../ui/errors.js';

export interface Chosen {
  /** Images with the references they are to be named by (before retagging); an index's members have none of their own. */
  images: { image: BundleImage; refs: string[] }[];
  indexes: { index: BundleImageIndex; refs: string[] }[];
  /** Images with no reference, not part of a kept index: loaded by ID where the target allows, else left out. */
  untagged: BundleImage[];
}

/**
 * chooseAcross picks in each bundle of a chain; with names, each name must be in at least one bundle, and a
 * bundle holding none of them gives nothing (an empty selection would mean all).
 */
export function chooseAcross(indexes: readonly BundleIndex[], names: readonly string[], platform: Platform | undefined): Chosen[] {
  if (names.length === 0 || indexes.length === 1) return indexes.map((b) => choose(b, names, platform));
  const found = new Set<string>();
  const out = indexes.map((b) => {
    const mine = names.filter((n) => {
      if (!holds(b, n)) return false;
      found.add(n);
      return true;
    });
    return mine.length ? choose(b, mine, platform) : { images: [], indexes: [], untagged: [] };
  });
  const absent = names.filter((n) => !found.has(n));
  if (absent.length) throw new FerryError('IMAGE_NOT_FOUND', `${absent.join(', ')}: in none of the bundles given`, { hint: '`ferry inspect BUNDLE` lists what a bundle holds' });
  return out;
}

function holds(index: BundleIndex, name: string): boolean {
  try {
    lookup(index, name);
    return true;
  } catch {
    return false;
  }
}

/** choose picks images by reference (normalised like docker's) or image ID prefix; all when no names are given. */
export function choose(index: BundleIndex, names: readonly string[], platform: Platform | undefined): Chosen {
  const byDigest = new Map(index.images.map((i) => [i.manifest.digest as string, i]));
  const images = new Map<BundleImage, string[]>();
  const kept = new Map<BundleImageIndex, string[]>();
  const untagged = new Set<BundleImage>();
  const add = <K>(to: Map<K, string[]>, key: K, refs: readonly string[]): void => {
    const list = to.get(key) ?? [];
    for (const r of refs) if (!list.includes(r)) list.push(r);
    to.set(key, list);
  };
  const addIndex = (ix: BundleImageIndex, refs: readonly string[]): void => {
    if (platform) {
      add(images, forPlatform(ix, byDigest, platform), refs);
      return;
    }
    add(kept, ix, refs);
    for (const d of ix.images) add(images, byDigest.get(d)!, []);
  };
  if (names.length === 0) {
    const inIndex = new Set<string>((index.indexes ?? []).flatMap((x) => x.images));
    for (const img of index.images) {
      if (img.refs.length > 0) add(images, img, img.refs);
      else if (!inIndex.has(img.manifest.digest)) untagged.add(img);
    }
    for (const ix of index.indexes ?? []) if (ix.refs.length > 0 || platform) addIndex(ix, ix.refs);
  } else {
    for (const n of names) {
      const found = lookup(index, n);
      if (found.kind === 'index') addIndex(found.index, found.refs);
      else if (found.image.refs.length === 0) untagged.add(found.image);
      else add(images, found.image, found.refs);
    }
  }
  return {
    images: [...images].map(([image, refs]) => ({ image, refs })),
    indexes: [...kept].map(([index, refs]) => ({ index, refs })),
    untagged: [...untagged].filter((i) => !images.has(i)),
  };
}

function forPlatform(ix: BundleImageIndex, byDigest: ReadonlyMap<string, BundleImage>, platform: Platform): BundleImage {
  const members = ix.images.map((d) => byDigest.get(d)).filter((i): i is BundleImage => i !== undefined);
  const hit = members.find((i) => platformMatches(platform, i.platform));
  if (!hit) {
    throw new FerryError('IMAGE_NOT_FOUND', `${ix.refs[0] ?? ix.digest} in the bundle has no ${formatPlatform(platform)} image for this target (it has ${members.map((i) => formatPlatform(i.platform)).join(', ')})`, {
      hint: "pack it with --platform for the target's platform, or --all-platforms",
    });
  }
  return hit;
}
