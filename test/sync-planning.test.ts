// Planning, documents and the catalog without a daemon: chain rules, blob rules, determinism, hostile reports,
// and two ferry processes writing one catalog at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type DiffId, type Digest } from '../src/image/digest.js';
import { planIncremental } from '../src/sync/plan.js';
import { TargetState } from '../src/sync/target-state.js';
import { HoldingsBuilder } from '../src/image/holdings.js';
import { documentBytes, INVENTORY_MEDIA_TYPE, parseReport, type Inventory } from '../src/sync/documents.js';
import { addHave } from '../src/sync/have.js';
import { Catalog } from '../src/catalog/catalog.js';
import { siteState } from '../src/sync/site-state.js';
import { ferry } from './helpers/ferry.js';

const d = (s: string): DiffId => `sha256:${createHash('sha256').update(s).digest('hex')}` as DiffId;
const g = (s: string): Digest => `sha256:${createHash('sha256').update(`gz ${s}`).digest('hex')}` as Digest;
const blob = (s: string) => ({ digest: g(s), size: 100, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });

function inventory(kind: 'docker-daemon' | 'registry', images: { id: string; layers: string[]; blobs?: boolean }[]): Inventory {
  const b = new HoldingsBuilder();
  for (const img of images) b.addImage({ id: d(img.id) as string as Digest, refs: [`docker.io/library/${img.id}:1`], diffIds: img.layers.map(d), ...(img.blobs ? { blobs: img.layers.map(blob) } : {}) });
  return { mediaType: INVENTORY_MEDIA_TYPE, version: 1, target: { kind, name: 'test' }, ...b.build() };
}

describe('planning a thin bundle', () => {
  it('for a daemon, a layer stays behind only on the same layers below it, for every image that uses it', () => {
    const state = new TargetState();
    state.add(inventory('docker-daemon', [{ id: 'x', layers: ['base', 'lib'] }]), { chains: true, blobs: false }, 'test');
    const plan = planIncremental(
      [
        { diffIds: [d('base'), d('lib'), d('app')] },
        // lib again, but on another base: the daemon cannot reuse it there, so it must travel for this image.
        { diffIds: [d('other'), d('lib')] },
      ],
      state,
    );
    assert.deepEqual([...plan.reliedLayers.keys()].sort(), [d('base')].sort());
    assert.equal(plan.reliedLayers.get(d('base')), undefined, 'no blob known: named once it passes');
  });

  it('for a registry, blobs count whatever stacks them, and a known blob names a relied-on layer', () => {
    const state = new TargetState();
    state.add(inventory('registry', [{ id: 'x', layers: ['base', 'lib'], blobs: true }]), { chains: false, blobs: true }, 'test');
    const plan = planIncremental(
      [
        { diffIds: [d('other'), d('lib')] },
        { diffIds: [d('base'), d('new')], keptLayers: [blob('base'), blob('new')] },
      ],
      state,
    );
    assert.deepEqual(plan.reliedLayers.get(d('lib'))?.digest, g('lib'), 'lib is in the registry, under its gzip blob');
    assert.ok(!plan.reliedLayers.has(d('other')));
    assert.deepEqual([...plan.reliedBlobs.keys()], [g('base')], 'a kept manifest relies on the exact blob');
  });

  it('an empty target relies on nothing', () => {
    const plan = planIncremental([{ diffIds: [d('a'), d('b')] }], new TargetState());
    assert.equal(plan.reliedLayers.size + plan.reliedBlobs.size, 0);
  });

  it('plans against a 1,000-image site quickly (reported, not asserted)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-plan-'));
    try {
      const images = Array.from({ length: 1000 }, (_, i) => ({ id: `img${i}`, layers: [`base${i % 20}`, `mid${i % 100}`, `top${i}`, `cfg${i}`] }));
      const path = join(dir, 'site.inventory.json');
      const bytes = documentBytes(inventory('docker-daemon', images));
      await writeFile(path, bytes);
      const started = process.hrtime.bigint();
      const state = new TargetState();
      await addHave(state, path);
      const plan = planIncremental(Array.from({ length: 50 }, (_, i) => ({ diffIds: [d(`base${i % 20}`), d(`mid${i}`), d(`new${i}`)] })), state);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      t.diagnostic(`1,000 images, ${state.chains.size} chains, inventory ${(bytes.length / 1024).toFixed(0)} KB: read + plan in ${ms.toFixed(0)} ms`);
      assert.equal(plan.reliedLayers.size, 20 + 50);
      assert.ok(bytes.length < 1_000_000, 'a 1,000-image inventory stays well under a megabyte');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('inventories and receipts as documents', () => {
  it('are the same bytes whatever order the images were found in', () => {
    const imgs = [
      { id: 'a', layers: ['1', '2'] },
      { id: 'b', layers: ['1', '3'] },
      { id: 'c', layers: ['4'] },
    ];
    assert.deepEqual(documentBytes(inventory('docker-daemon', imgs)), documentBytes(inventory('docker-daemon', [...imgs].reverse())));
  });

  it('are refused, clearly, when they lie or are not what they claim', () => {
    const good = inventory('docker-daemon', [{ id: 'a', layers: ['1'] }]);
    assert.equal(parseReport(documentBytes(good).toString(), 'x.json').kind, 'inventory');
    const cases: [string, unknown, RegExp][] = [
      ['layer index out of range', { ...good, images: [{ ...good.images[0]!, layers: [5] }] }, /names layer 5, but there are 1/],
      ['unknown media type', { ...good, mediaType: 'application/vnd.ferry.inventory.v9+json' }, /neither a ferry inventory nor a receipt/],
      ['bad digest', { ...good, layers: [{ diffId: 'sha256:../../x' }] }, /not a valid inventory: \/layers\/0\/diffId/],
      ['odd field', { ...good, extra: 1 }, /not a valid inventory/],
      ['bad reference', { ...good, images: [{ ...good.images[0]!, refs: ['Not A Ref'] }] }, /not a valid inventory/],
    ];
    for (const [what, doc, message] of cases) {
      assert.throws(() => parseReport(JSON.stringify(doc), 'x.json'), (err: Error & { code?: string }) => err.code === 'USAGE' && message.test(err.message), what);
    }
    assert.throws(() => parseReport('{"a":', 'x.json'), /not JSON/);
  });
});

describe('the catalog', () => {
  it('a lost catalog costs bytes, never correctness: a new one assumes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cat-'));
    try {
      const c = Catalog.open(join(dir, 'catalog.db'));
      c.addSite('b', 'docker-daemon');
      assert.ok(siteState(c, 'b').empty);
      c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('survives several ferry processes importing at once, and refuses a damaged file with a way out', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ferry-home-'));
    try {
      const env = { FERRY_HOME: home };
      assert.equal((await ferry(['site', 'add', 'b'], { env })).code, 0);
      const files: string[] = [];
      for (let i = 0; i < 8; i++) {
        const inv = inventory('docker-daemon', [{ id: `img${i}-${randomBytes(4).toString('hex')}`, layers: [`l${i}`, `m${i}`] }]);
        files.push(join(home, `inv${i}.json`));
        await writeFile(files[i]!, documentBytes(inv));
      }
      const runs = await Promise.all([
        ...files.map((f) => ferry(['site', 'import', f, '--site', 'b'], { env })),
        ferry(['site', 'add', 'c'], { env }),
        ferry(['site', 'list', '--json'], { env }),
      ]);
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const db = new Database(join(home, 'catalog.db'), { readonly: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.equal((db.prepare("SELECT COUNT(*) AS n FROM records WHERE kind = 'inventory'").get() as { n: number }).n, 8);
      } finally {
        db.close();
      }
      const show = await ferry(['site', 'show', 'b', '--json'], { env });
      assert.equal(show.code, 0, show.stderr);

      await writeFile(join(home, 'catalog.db'), 'this is not a database, just some text that is long enough to be read as a header........');
      await rm(join(home, 'catalog.db-wal'), { force: true });
      await rm(join(home, 'catalog.db-shm'), { force: true });
      const broken = await ferry(['site', 'list'], { env });
      assert.equal(broken.code, 1, broken.stderr);
      assert.match(broken.stderr, /cannot open the catalog .*catalog\.db/);
      assert.match(broken.stderr, /move it aside/);
      assert.equal(await readFile(join(home, 'catalog.db'), 'utf8').then((s) => s.startsWith('this is not')), true, 'the damaged file is left as it was');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('names what is wrong with a site command', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ferry-home-'));
    try {
      const env = { FERRY_HOME: home };
      const noSite = await ferry(['site', 'show', 'nowhere'], { env });
      assert.equal(noSite.code, 2);
      assert.match(noSite.stderr, /no site nowhere/);
      assert.equal((await ferry(['site', 'add', 'b'], { env })).code, 0);
      const twice = await ferry(['site', 'add', 'b'], { env });
      assert.equal(twice.code, 2);
      assert.match(twice.stderr, /already exists/);
      const bad = await ferry(['site', 'add', '../x'], { env });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /not a site name/);
      const confirmed = await ferry(['pack', 'x:1', '--confirmed-only', '-o', join(home, 'x.tar')], { env });
      assert.equal(confirmed.code, 2);
      assert.match(confirmed.stderr, /--confirmed-only needs --site/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});


