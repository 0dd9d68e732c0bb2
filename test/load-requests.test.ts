// How a load into a daemon is split into requests dockerd can unpack side by side (no daemon needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chainIds, type ChainId, type DiffId } from '../src/image/digest.js';
import { planLoadRequests, type ImageChains, type LoadStep } from '../src/targets/load-requests.js';

const d = (s: string): DiffId => `sha256:${createHash('sha256').update(s).digest('hex')}` as DiffId;
const MiB = 1 << 20;
/** An image of named layers; a name's number is its size in MiB (`b121`: 121 MiB), 1 MiB without one. */
const image = (layers: string[], size = (l: string) => (l.length > 1 ? Number(l.slice(1)) : 1) * MiB): ImageChains => ({
  chains: chainIds(layers.map(d)),
  sizes: layers.map(size),
});

/** The plan as nested image-index lists, for readable assertions. */
const shape = (steps: readonly LoadStep[]): unknown => steps.map((s) => (s.then.length ? { run: s.images, then: shape(s.then) } : s.images));

describe('splitting a load into side-by-side requests', () => {
  it('a base every image builds on goes first, alone; then the independent branches at once, biggest first', () => {
    // The bench's corpus: debian; builder and jre on it; python on it with two apps on python.
    const images = [
      image(['b121']), // 0 debian
      image(['b121', 'x383']), // 1 builder
      image(['b121', 'y228']), // 2 jre
      image(['b121', 'p51']), // 3 python
      image(['b121', 'p51', 'f194', 'a3']), // 4 app 1.0
      image(['b121', 'p51', 'f194', 'c3']), // 5 app 1.1
    ];
    const steps = planLoadRequests(images, new Set());
    // In the python branch, python goes first and both apps upload meanwhile (194 MiB to share); the apps stay
    // one request, as 3 MiB would not pay for another.
    assert.deepEqual(shape(steps), [{ run: [0], then: [[1], { run: [3], then: [[4, 5]] }, [2]] }]);
    assert.equal(steps[0]!.bytes, 121 * MiB);
    assert.deepEqual(
      steps[0]!.then.map((s) => s.bytes / MiB),
      [383, 51, 228],
    );
    assert.equal(steps[0]!.then[1]!.then[0]!.bytes, (194 + 3 + 3) * MiB);
  });

  it('a chain of small images stays one request; big ones are split so the next uploads while one registers', () => {
    const small = [image(['a']), image(['a', 'b']), image(['a', 'b', 'c'])];
    assert.deepEqual(shape(planLoadRequests(small, new Set())), [[0, 1, 2]]);
    const big = [image(['a40']), image(['a40', 'b50']), image(['a40', 'b50', 'c60'])];
    assert.deepEqual(shape(planLoadRequests(big, new Set())), [{ run: [0], then: [{ run: [1], then: [[2]] }] }]);
  });

  it('a thousand independent images share a few requests per lane, balanced by size', () => {
    const images = Array.from({ length: 1000 }, (_, i) => image([`x${i}.${1 + (i % 7)}`], () => (1 + (i % 7)) * MiB));
    const steps = planLoadRequests(images, new Set(), 2);
    assert.equal(steps.length, 8);
    assert.deepEqual(steps.flatMap((s) => s.images).sort((a, b) => a - b), images.map((_, i) => i));
    const sizes = steps.map((s) => s.bytes);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 7 * MiB, `balanced: ${sizes.map((n) => n / MiB).join(', ')}`);
  });

  it('without an image of the shared base alone, the smallest image that carries it goes first', () => {
    const images = [image(['b100', 'x300']), image(['b100', 'y50']), image(['b100', 'z200'])];
    assert.deepEqual(shape(planLoadRequests(images, new Set())), [{ run: [1], then: [[0], [2]] }]);
  });

  it('images that share nothing still to send go at once; a base the daemon holds does not tie them', () => {
    const images = [image(['b100', 'x300']), image(['b100', 'y50']), image(['q7'])];
    const held = new Set<ChainId>([image(['b100']).chains[0]!]);
    assert.deepEqual(shape(planLoadRequests(images, held)), [[0], [1], [2]]);
  });

  it('splits again deeper down when parallel branches open there', () => {
    const images = [image(['b10']), image(['b10', 'm20']), image(['b10', 'm20', 'x300']), image(['b10', 'm20', 'y300'])];
    assert.deepEqual(shape(planLoadRequests(images, new Set())), [{ run: [0], then: [{ run: [1], then: [[2], [3]] }] }]);
  });

  it('on random forests: each image once, and requests that may run at once never send the same layer', () => {
    // mulberry32, a fixed seed: the same forests every run.
    let seed = 20261123;
    const rand = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    let split = 0;
    for (let round = 0; round < 200; round++) {
      const images: ImageChains[] = [];
      const names: string[][] = [];
      for (let i = 0, n = 1 + rand(12); i < n; i++) {
        // Grow on a prefix of an earlier image's layers (or from nothing), so images share bases and branches.
        const from = names.length && rand(4) ? names[rand(names.length)]! : [];
        const own = from.slice(0, from.length ? 1 + rand(from.length) : 0);
        for (let k = 0, m = rand(3) + (own.length ? 0 : 1); k < m; k++) own.push(`L${round}.${i}.${k}`);
        names.push(own);
        images.push(image(own, () => (1 + rand(100)) * MiB));
      }
      const held = new Set<ChainId>(images.filter(() => rand(5) === 0).map((img) => img.chains[0]!));
      const steps = planLoadRequests(images, held);
      // Each image is in exactly one request.
      const seen: number[] = [];
      const all: { step: LoadStep; ancestors: Set<LoadStep>; sends: Set<ChainId> }[] = [];
      const walk = (s: LoadStep, ancestors: Set<LoadStep>, heldNow: Set<ChainId>): void => {
        seen.push(...s.images);
        const sends = new Set<ChainId>();
        for (const i of s.images) for (const c of images[i]!.chains) if (!heldNow.has(c)) sends.add(c);
        all.push({ step: s, ancestors, sends });
        const after = new Set([...heldNow, ...s.images.flatMap((i) => images[i]!.chains)]);
        for (const t of s.then) walk(t, new Set([...ancestors, s]), after);
      };
      for (const s of steps) walk(s, new Set(), held);
      if (all.some((a) => a.step.then.length > 0)) split++;
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        images.map((_, i) => i),
        `round ${round}`,
      );
      for (const a of all) {
        for (const b of all) {
          if (a === b || a.ancestors.has(b.step) || b.ancestors.has(a.step)) continue;
          for (const c of a.sends) assert.ok(!b.sends.has(c), `round ${round}: two requests that may run at once both send ${c}`);
        }
      }
    }
    // The forests must have exercised the split, not only the trivial plans.
    assert.ok(split > 20, `only ${split} of 200 plans were split`);
  });
});
