// planLoadRequests: how one load into a Docker daemon is split into archives it can unpack side by side.
// dockerd unpacks one load request's layers one after another, on one core; requests whose images share no layer
// still to send can run at once, and an image the others build on goes first, alone, to open them up.
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

/**
 * planLoadRequests returns the requests that may start at once, each with those that must wait for it. Images
 * that share a layer to send go in one request, unless one of them carries all they share and, sent first,
 * leaves the rest in independent groups: then it goes alone and the groups follow, side by side. Biggest first.
 */
export function planLoadRequests(images: readonly ImageChains[], held: ReadonlySet<ChainId>): LoadStep[] {
  return plan(
    images.map((_, i) => i),
    images,
    held,
  );
}

function plan(members: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>): LoadStep[] {
  return groups(members, images, held)
    .map((g) => step(g, images, held))
    .sort((a, b) => total(b) - total(a));
}

function step(group: readonly number[], images: readonly ImageChains[], held: ReadonlySet<ChainId>): LoadStep {
  const whole = { images: [...group], bytes: bytesToSend(group, images, held), then: [] };
  if (group.length === 1) return whole;
  // Every image of a group shares its first layer to send, so the smallest one carries all the group shares.
  const first = group.reduce((a, b) => (bytesToSend([b], images, held) < bytesToSend([a], images, held) ? b : a));
  const after = new Set(held);
  for (const c of images[first]!.chains) after.add(c);
  const rest = plan(
    group.filter((i) => i !== first),
    images,
    after,
  );
  // Splitting only pays when something then runs side by side; otherwise one request does it with less overhead.
  if (rest.length < 2 && !rest.some((s) => s.then.length > 0)) return whole;
  return { images: [first], bytes: bytesToSend([first], images, held), then: rest };
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
