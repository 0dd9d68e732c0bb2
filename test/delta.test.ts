// Sub-layer deltas without engines: a rebuilt layer encoded against reference layers and rebuilt byte for byte,
// the recipe's size, and hostile deltas (every limit a reader checks) refused before or while rebuilding.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import zstd from 'zstd-napi/binding.js';
import { DELTA_HEAD } from '../src/delta/blob.js';
import { ExactReader, readRecipe, rebuild } from '../src/delta/decode.js';
import { encodeDelta, type LayerFile } from '../src/delta/encode.js';
import { decodeRecipe, DeltaError, encodeRecipe, LIMITS, type Recipe } from '../src/delta/recipe.js';
import type { DiffId } from '../src/image/digest.js';
import { worthADelta } from '../src/transfer/delta-offer.js';
import { tarBytes, type RawEntry } from './helpers/crafted-tar.js';
import { seededRandom } from './helpers/seeded.js';

const WORDS = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau'.split(' ');

function text(rand: () => number, bytes: number): Buffer {
  const words: string[] = [];
  for (let n = 0; n < Math.min(bytes, 1 << 20); ) {
    const w = `${WORDS[Math.floor(rand() * WORDS.length)]}${rand() < 0.1 ? '\n' : ' '}`;
    words.push(w);
    n += w.length;
  }
  // Past 1 MiB, the same text again, each copy with its own number on every line (as a bundled script repeats code).
  const block = Buffer.from(words.join(''));
  const out = Buffer.alloc(bytes);
  for (let at = 0, k = 0; at < bytes; at += block.length, k++) {
    block.copy(out, at, 0, Math.min(block.length, bytes - at));
    if (k > 0) out.write(String(k), at);
  }
  return out;
}

function noise(rand: () => number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** edited changes a few bytes in a few places, as a patched source file or a rebuilt library does. */
function edited(rand: () => number, b: Buffer, edits: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < edits; i++) out.write(`v${Math.floor(rand() * 1e6)}`, Math.floor(rand() * (out.length - 8)));
  return out;
}

function diffIdOf(b: Buffer): DiffId {
  return `sha256:${createHash('sha256').update(b).digest('hex')}` as DiffId;
}

let dir: string;
async function layerFile(name: string, bytes: Buffer): Promise<LayerFile> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { path, diffId: diffIdOf(bytes), size: bytes.length };
}

async function rebuilt(blobPath: string, refs: readonly LayerFile[]): Promise<Buffer> {
  return rebuiltWith(await readFile(blobPath), refs);
}

describe('sub-layer deltas', () => {
  const rand = seededRandom(15);
  let base: LayerFile;
  let app1: LayerFile;
  let app2: Buffer;
  let app2File: LayerFile;
  let big: Buffer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-delta-'));
    // libthing5 is rebuilt in week 2: big enough against the base that the base is worth naming as a reference.
    const libs: RawEntry[] = Array.from({ length: 40 }, (_, i) => ({ name: `usr/lib/libthing${i}.so.1.${i}`, data: i === 5 ? text(rand, 60_000) : noise(rand, 2000 + i * 97) }));
    base = await layerFile('base.tar', tarBytes([{ name: 'usr/', type: '5' }, { name: 'usr/lib/', type: '5' }, ...libs]));
    const src: RawEntry[] = Array.from({ length: 300 }, (_, i) => ({ name: `app/mod${i}.py`, data: text(rand, 500 + ((i * 131) % 9000)) }));
    big = text(rand, LIMITS.frameContent + 300_000);
    app1 = await layerFile('app1.tar', tarBytes([{ name: 'app/', type: '5' }, ...src, { name: 'app/bundle.js', data: big }]));
    // Week 2: eight modules edited, one removed, one new, a library rebuilt under a new version, the big file edited.
    const week2 = src.filter((_, i) => i !== 7).map((e, i) => (i % 37 === 3 ? { ...e, data: edited(rand, e.data!, 3) } : e));
    week2.splice(100, 0, { name: 'app/new_module.py', data: text(rand, 4000) });
    week2.push({ name: 'usr/lib/libthing5.so.1.6', data: edited(rand, libs[5]!.data!, 2) });
    app2 = tarBytes([{ name: 'app/', type: '5' }, ...week2, { name: 'app/bundle.js', data: edited(rand, big, 5) }]);
    app2File = await layerFile('app2.tar', app2);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('rebuilds a changed layer byte for byte from its references, carrying a small fraction of it', async () => {
    const out = join(dir, 'app2.delta');
    const d = (await encodeDelta(app2File, [base, app1], out, { level: 3 }))!;
    assert.deepEqual(await rebuilt(out, [base, app1]), app2);
    assert.equal(d.size, (await stat(out)).size);
    assert.equal(d.copied + d.zeros + d.literal, app2.length);
    // The unchanged modules are copied; the edited ones and the big file (split over frames, each against the
    // same stretch of its old version) are carried as new bytes that compress to almost nothing.
    assert.ok(d.copied > 0.9 * (app2.length - big.length), `copied ${d.copied} of ${app2.length - big.length} outside the big file`);
    const whole = zstd.compress(Buffer.alloc(zstd.compressBound(app2.length)), app2, 3);
    assert.ok(d.size * 50 < whole, `delta ${d.size} B, whole layer at zstd -3 ${whole} B`);
    assert.deepEqual(d.references.map((r) => r.diffId).sort(), [base.diffId, app1.diffId].sort(), 'the rebuilt library came from the base');
  });

  it('uses only the references it needs and is empty of new bytes for an unchanged copy', async () => {
    const out = join(dir, 'same.delta');
    const d = (await encodeDelta(app1, [base, app1], out))!;
    assert.deepEqual(d.references.map((r) => r.diffId), [app1.diffId]);
    assert.equal(d.literal, 0);
    assert.ok(d.size < 200, `a copy costs ${d.size} B`);
    assert.deepEqual(await rebuilt(out, [app1]), await readFile(app1.path));
  });

  it('rebuilds a layer with no reference in common from its new bytes alone', async () => {
    const lone = await layerFile('lone.tar', tarBytes([{ name: 'x', data: noise(rand, 70000) }, { name: 'y', data: text(rand, 9000) }]));
    const out = join(dir, 'lone.delta');
    const d = (await encodeDelta(lone, [base], out))!;
    assert.deepEqual(d.references, []);
    assert.deepEqual(await rebuilt(out, []), await readFile(lone.path));
  });

  it('gives up on a layer mostly new before compressing it', async () => {
    const lone = await layerFile('mostly-new.tar', tarBytes([{ name: 'x', data: noise(rand, 50000) }, { name: 'usr/lib/libthing1.so.1.1', data: Buffer.alloc(3000, 7) }]));
    assert.equal(await encodeDelta(lone, [base, app1], join(dir, 'given-up.delta'), { level: 3, maxNew: 20000 }), undefined);
    assert.ok(await encodeDelta(app2File, [base, app1], join(dir, 'kept.delta'), { level: 3, maxNew: 20000 }), 'changed files with counterparts are not counted against maxNew');
  });

  it('a delta travels only when it saves a real share of the layer (a quarter, and 4 KiB)', () => {
    assert.equal(worthADelta(200, 260), false, 'a tiny layer: a few bytes saved flip with every build');
    assert.equal(worthADelta(80_000, 100_000), false, 'a fifth saved');
    assert.equal(worthADelta(3_000, 6_000), false, 'half, but 3 KB');
    assert.equal(worthADelta(2_765, 476_230), true);
    assert.equal(worthADelta(75_000, 100_000), true);
  });

  describe('hostile deltas are refused', () => {
    let recipe: Recipe;
    let blob: Buffer;
    before(async () => {
      const out = join(dir, 'h.delta');
      await encodeDelta(app2File, [base, app1], out, { level: 3 });
      blob = await readFile(out);
      recipe = await readRecipe(new ExactReader([blob]), blob.length);
    });
    const refused = (mutate: (r: Recipe) => void, why: RegExp) => {
      const r: Recipe = structuredClone(recipe);
      mutate(r);
      assert.throws(() => decodeRecipe(encodeRecipe(r), blob.length), (e: unknown) => e instanceof DeltaError && why.test(e.message));
    };
    const firstCopy = (r: Recipe) => r.runs.find((x) => x.kind === 'copy') as { offset: number; length: number; ref: number };

    it('a run reading past the end of its reference', () => refused((r) => (firstCopy(r).offset = r.references[firstCopy(r).ref]!.size - 10), /reads bytes .* which has/));
    it('a run naming a reference the recipe does not list', () => refused((r) => (firstCopy(r).ref = 9), /names reference 9/));
    it('a huge declared layer', () => refused((r) => ((r.layerSize = 2 ** 50), r.runs.push({ kind: 'zeros', length: 2 ** 50 - recipe.layerSize })), /zeros|declares/));
    it('runs that do not make the declared size', () => refused((r) => (r.layerSize += 1), /runs make/));
    it('runs taking more new bytes than the frames hold', () => refused((r) => r.runs.push({ kind: 'literal', length: 5 }), /new bytes/));
    it('a frame declaring more than a reader holds', () => refused((r) => (r.frames[0]!.contentSize = LIMITS.frameContent + 1), /at most/));
    it('a dictionary bigger than a reader holds', () => refused((r) => r.frames[0]!.dictionary.push(...Array.from({ length: 3 }, () => ({ ref: 1, offset: 0, length: LIMITS.dictionary / 2 }))), /dictionary is/));
    it('an empty run', () => refused((r) => r.runs.splice(1, 0, { kind: 'zeros', length: 0 }), /empty/));
    it('a layer much bigger than its references and new bytes can make', () =>
      refused((r) => {
        const c = firstCopy(r);
        for (let i = 0; i < 200; i++) r.runs.push({ kind: 'copy', ref: c.ref, offset: 0, length: r.references[c.ref]!.size });
        r.layerSize = r.runs.reduce((a, x) => a + x.length, 0);
      }, /more than its references/));

    it('a blob that is not a delta, is cut short, or has bytes after its last frame', async () => {
      await assert.rejects(readRecipe(new ExactReader([Buffer.from('not a delta at all')]), 18), /FRYDLT01/);
      await assert.rejects(drain(blob.subarray(0, blob.length - 3), [base, app1]), /ends inside frame/);
      await assert.rejects(drain(Buffer.concat([blob, Buffer.from('x')]), [base, app1]), /after its last frame/);
    });

    it('a frame that decompresses to more than it declares (a bomb) stops at the declared size', async () => {
      const packed = Buffer.alloc(zstd.compressBound(LIMITS.frameContent));
      const n = zstd.compress(packed, Buffer.alloc(LIMITS.frameContent), 3);
      const r: Recipe = { layerSize: 100, references: [], frames: [{ compressedSize: n, contentSize: 100, dictionary: [] }], runs: [{ kind: 'literal', length: 100 }] };
      const body = assemble(r, packed.subarray(0, n));
      await assert.rejects(drain(body, []), /declares .* content size|makes/);
    });

    it('fuzz: 300 seeded corruptions of a real delta each rebuild the layer, another one, or fail with DeltaError, quickly', async () => {
      const r = seededRandom(1515);
      const started = Date.now();
      let refusedCount = 0;
      for (let i = 0; i < 300; i++) {
        const bad = Buffer.from(blob);
        const kind = i % 3;
        const flip = (at: number): void => void (bad[at] = bad[at]! ^ (1 << Math.floor(r() * 8)));
        if (kind === 0) for (let k = 0; k < 1 + Math.floor(r() * 4); k++) flip(Math.floor(r() * bad.length));
        // The head and recipe are where a lie costs most: aim a third of the cases there.
        else if (kind === 1) flip(Math.floor(r() * Math.min(bad.length, 400)));
        const input = kind === 2 ? bad.subarray(0, Math.floor(r() * bad.length)) : bad;
        try {
          await rebuiltWith(input, [base, app1]);
        } catch (err) {
          assert.ok(err instanceof DeltaError, `case ${i}: ${(err as Error).stack}`);
          refusedCount++;
        }
      }
      assert.ok(refusedCount > 150, `${refusedCount} of 300 refused`);
      assert.ok(Date.now() - started < 60_000, 'each corruption is found or rebuilt in bounded time');
    });

    it('a reference with other bytes than its diffID fails the rebuilt diffID', async () => {
      const other = await layerFile('other.tar', Buffer.alloc(base.size, 1));
      const out = await rebuiltWith(blob, [base, app1].map((r) => (r === base ? { ...other, diffId: base.diffId } : r)));
      assert.notEqual(diffIdOf(out), app2File.diffId);
    });
  });
});

function assemble(r: Recipe, frames: Buffer): Buffer {
  const rec = encodeRecipe(r);
  const packed = Buffer.alloc(zstd.compressBound(rec.length));
  const n = zstd.compress(packed, rec, 3);
  const head = Buffer.alloc(DELTA_HEAD);
  head.write('FRYDLT01');
  head.writeUInt32BE(n, 8);
  return Buffer.concat([head, packed.subarray(0, n), frames]);
}

async function drain(blob: Buffer, refs: readonly LayerFile[]): Promise<void> {
  await rebuiltWith(blob, refs);
}

async function rebuiltWith(blob: Buffer, refs: readonly LayerFile[]): Promise<Buffer> {
  const reader = new ExactReader([blob]);
  const recipe = await readRecipe(reader, blob.length);
  // As ferry does (transfer/deltas.ts): the references must be those named, at their sizes.
  const files = recipe.references.map((r) => refs.find((x) => x.diffId === r.diffId && x.size === r.size));
  if (files.some((f) => !f)) throw new DeltaError('names a reference it was not given');
  const handles = await Promise.all(files.map((f) => open(f!.path, 'r')));
  try {
    const out: Buffer[] = [];
    for await (const chunk of rebuild(reader, recipe, handles)) out.push(Buffer.from(chunk));
    return Buffer.concat(out);
  } finally {
    for (const h of handles) await h.close();
  }
}
