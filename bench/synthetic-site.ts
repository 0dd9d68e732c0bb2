// syntheticSite: a deterministic inventory of a large site (about 1,000 images on shared bases), around a real one.
import { createHash } from 'node:crypto';

/** The inventory format of `ferry inventory` (schemas/ferry-inventory-v1.schema.json), as far as the bench uses it. */
export interface InventoryLayer {
  diffId: string;
  size?: number;
  blobs?: { digest: string; size: number; mediaType: string }[];
}

export interface InventoryImage {
  id: string;
  refs: string[];
  /** Indexes into Inventory.layers, bottom layer first. */
  layers: number[];
}

export interface Inventory {
  mediaType: string;
  version: number;
  target: { kind: string; id: string; name: string };
  layers: InventoryLayer[];
  images: InventoryImage[];
}

export interface SiteShape {
  images: number;
  layers: number;
  /** Layer references over all images (the sum of image depths). */
  imageLayers: number;
}

export const shapeOf = (inv: Inventory): SiteShape => ({
  images: inv.images.length,
  layers: inv.layers.length,
  imageLayers: inv.images.reduce((n, i) => n + i.layers.length, 0),
});

/**
 * syntheticSite returns `real` grown to `totalImages`: the real images and layers stay as they are (so a pack
 * against it must plan exactly as against `real`), the rest are shaped as sites grow: a few bases, runtimes on
 * them, application lines on the runtimes, several versions per line sharing all but their top layers.
 */
export function syntheticSite(real: Inventory, totalImages: number, seed = 'ferry-bench-site'): Inventory {
  let counter = 0;
  const digest = (): string => `sha256:${createHash('sha256').update(`${seed}/${counter++}`).digest('hex')}`;
  // xorshift32: the same site every run, so planning times compare across runs.
  let state = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  const rand = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  const withSize = real.layers.some((l) => l.size !== undefined);
  const withBlobs = real.layers.some((l) => l.blobs !== undefined);
  const made = new Map<string, InventoryLayer>();
  const layer = (): string => {
    const diffId = digest();
    // Log-uniform from 1 kB to 300 MB: most layers are small, a few carry a distribution or a runtime.
    const size = Math.round(1e3 * Math.exp(rand() * Math.log(3e5)));
    const blobs = [{ digest: digest(), size: Math.round(size * 0.35), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }];
    made.set(diffId, { diffId, ...(withSize ? { size } : {}), ...(withBlobs ? { blobs } : {}) });
    return diffId;
  };
  const chainOf = (n: number): string[] => Array.from({ length: n }, layer);

  const bases = Array.from({ length: 25 }, () => chainOf(int(1, 3)));
  const runtimes = Array.from({ length: 120 }, () => [...pick(bases), ...chainOf(int(1, 4))]);
  const synthetic: { id: string; refs: string[]; chain: string[] }[] = [];
  const room = (): boolean => real.images.length + synthetic.length < totalImages;
  for (let line = 0; room(); line++) {
    const deps = [...pick(runtimes), ...chainOf(int(0, 3))];
    const versions = int(1, 8);
    for (let v = 0; v < versions && room(); v++) {
      // Some images on a site are untagged (dangling after a tag moved, or loaded by ID).
      const refs = rand() < 0.05 ? [] : [`registry.site.example/team${line % 17}/app${line}:${v + 1}.0`];
      synthetic.push({ id: digest(), refs, chain: [...deps, ...chainOf(int(1, 3))] });
    }
  }

  const all = new Map<string, InventoryLayer>(made);
  for (const l of real.layers) all.set(l.diffId, l);
  const layers = [...all.values()].sort((a, b) => (a.diffId < b.diffId ? -1 : a.diffId > b.diffId ? 1 : 0));
  const at = new Map(layers.map((l, i) => [l.diffId, i]));
  const realImages = real.images.map((i) => ({ ...i, layers: i.layers.map((x) => at.get(real.layers[x]!.diffId)!) }));
  const images = [...realImages, ...synthetic.map((s) => ({ id: s.id, refs: s.refs, layers: s.chain.map((d) => at.get(d)!) }))];
  return { ...real, layers, images };
}
