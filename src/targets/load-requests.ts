// planLoadRequests: how one load into a Docker daemon is split into archives it can unpack side by side.
// dockerd unpacks one load request's layers one after another, on one core; requests whose images share no layer
// still to send can run at once, and an image the others build on goes first, alone, to open them up (the others
// upload meanwhile, and are registered once it is done).
import type { ChainId } from '../image/digest.js';

/** An image as the plan sees it: the chain ID and uncompressed size of each of its layers, base first. */
export interface ImageChains {
  chains: readonly ChainId[];
  sizes: readonly number[];
}

/** One load request: the images it carries (indexes into the plan's input), then the requests that wait for it. */
export interface LoadStep {
  images: number[];
  /** Uncompressed bytes of the layers this request sends. */
  bytes: number;
  then: LoadStep[];
}

/** Independent groups at one level beyond this many per lane share requests. */
const REQUESTS_PER_LANE = 4;

/** Below this many bytes on either side, a request split off a chain would cost more than the overlap it buys. */
export const PIPELINE_MIN = 32 << 20;

/**
 * planLoadRequests returns the requests that may start at once, each with those that must wait for it. Images
 * that share a layer to send go in one request, unless the one that sends least (it carries all they share) is
 * worth sending first: when the rest then fall into independent groups that can load side by side, or when both
 * sides are big enough that the rest's upload may overlap its registration. Groups beyond a few per lane at one
 * level share requests (biggest first, each to the lightest), so a thousand small images are not a thousand requests.
 */
export function planLoadRequests(images: readonly ImageChains[], held: ReadonlySet<ChainId>, lanes = 2): LoadStep[] {
  return plan(
    images.map((_, i) => i),
    images,
    held,
    Math.max(1, lanes),
  );
}

function plan(members: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>, lanes: number): LoadStep[] {
  const steps = groups(members, images, held)
    .map((g) => step(g, images, held, lanes))
    .sort((a, b) => total(b) - total(a));
  // Steps that lead on to others keep a request each; the rest fill at most a few requests per lane, biggest
  // first (the lanes then balance them as they finish).
  const leading = steps.filter((s) => s.then.length > 0);
  const bins: LoadStep[] = [];
  for (const leaf of steps.filter((s) => s.then.length === 0)) {
    if (leading.length + bins.length < REQUESTS_PER_LANE * lanes) {
      bins.push({ images: [...leaf.images], bytes: leaf.bytes, then: [] });
      continue;
    }
    const lightest = bins.length ? bins.reduce((a, b) => (b.bytes < a.bytes ? b : a)) : undefined;
    if (lightest) {
      lightest.images.push(...leaf.images);
      lightest.bytes += leaf.bytes;
    } else bins.push({ images: [...leaf.images], bytes: leaf.bytes, then: [] });
  }
  for (const b of bins) b.images.sort((x, y) => x - y);
  return [...leading, ...bins].sort((a, b) => total(b) - total(a));
}

function step(group: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>, lanes: number): LoadStep {
  const whole = { images: [...group], bytes: bytesToSend(group, images, held), then: [] };
  if (group.length === 1) return whole;
  // Every image of a group shares its first layer to send, so the one that sends least carries all the group shares.
  const first = group.reduce((a, b) => (bytesToSend([b], images, held) < bytesToSend([a], images, held) ? b : a));
  const firstBytes = bytesToSend([first], images, held);
  const after = new Set(held);
  for (const c of images[first]!.chains) after.add(c);
  const rest = plan(
    group.filter((i) => i !== first),
    images,
    after,
    lanes,
  );
  const sideBySide = rest.length >= 2 || rest.some((s) => s.then.length > 0);
  const overlaps = firstBytes >= PIPELINE_MIN && rest.reduce((n, s) => n + total(s), 0) >= PIPELINE_MIN;
  if (!sideBySide && !overlaps) return whole;
  return { images: [first], bytes: firstBytes, then: rest };
}

/** groups splits images into sets that share no layer still to send (images with nothing to send stand alone). */
function groups(members: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>): number[][] {
  const parent = new Map<number, number>(members.map((i) => [i, i]));
  const root = (i: number): number => {
    while (parent.get(i) !== i) i = parent.get(i)!;
    return i;
  };
  const owner = new Map<ChainId, number>();
  for (const i of members) {
    for (const c of images[i]!.chains) {
      if (held.has(c)) continue;
      const o = owner.get(c);
      if (o === undefined) owner.set(c, i);
      else parent.set(root(i), root(o));
    }
  }
  const out = new Map<number, number[]>();
  for (const i of members) {
    const r = root(i);
    const g = out.get(r) ?? [];
    g.push(i);
    out.set(r, g);
  }
  return [...out.values()];
}

function bytesToSend(group: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>): number {
  const seen = new Set<ChainId>();
  let n = 0;
  for (const i of group) {
    const img = images[i]!;
    for (const [k, c] of img.chains.entries()) {
      if (held.has(c) || seen.has(c)) continue;
      seen.add(c);
      n += img.sizes[k]!;
    }
  }
  return n;
}

/** total is what a step and everything after it sends. */
function total(s: LoadStep): number {
  return s.bytes + s.then.reduce((n, t) => n + total(t), 0);
}
