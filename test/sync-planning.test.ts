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
import { siteRecords, siteState } from '../src/sync/site-state.js';
import { ferry } from './helpers/ferry.js';

const d = (s: string): DiffId => `sha256:${createHash('sha256').update(s).digest('hex')}` as DiffId;
const g = (s: string): Digest => `sha256:${createHash('sha256').update(`gz ${s}`).digest('hex')}` as Digest;
const blob = (s: string) => ({ digest: g(s), size: 100, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });

function inventory(kind: 'docker-daemon' | 'registry' | 'containerd', images: { id: string; layers: string[]; blobs?: boolean }[]): Inventory {
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

  it('a containerd site counts what it holds by blob, from its inventories and its load receipts', async () => {
    const home = await mkdtemp(join(tmpdir(), 'ferry-home-'));
    try {
      const env = { FERRY_HOME: home };
      assert.equal((await ferry(['site', 'add', 'node', '--kind', 'containerd'], { env })).code, 0);
      const file = join(home, 'node.inventory.json');
      await writeFile(file, documentBytes(inventory('containerd', [{ id: 'x', layers: ['base', 'lib'], blobs: true }])));
      const r = await ferry(['site', 'import', file, '--site', 'node'], { env });
      assert.equal(r.code, 0, r.stderr);
      const c = Catalog.open(join(home, 'catalog.db'));
      try {
        const state = siteState(c, 'node');
        assert.deepEqual([...state.blobs].sort(), [g('base'), g('lib')].sort());
        assert.equal(state.chains.size, 0, 'a content store is not a daemon: no chains');
        // A receipt of a load into it counts by blob too (a daemon's load receipt would count by chain).
        c.record({ site: 'node', kind: 'receipt', ref: 'r1', bundles: [], created: new Date().toISOString(), operation: 'load', summary: {}, holdings: { layers: [], images: [] } });
        assert.deepEqual(siteRecords(c, 'node').map((x) => [x.record.kind, x.meaning]), [
          ['inventory', { chains: false, blobs: true }],
          ['receipt', { chains: false, blobs: true }],
        ]);
      } finally {
        c.close();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('a catalog of schema 1 opens as schema 2, its sites and records kept, and takes containerd sites', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cat-'));
    try {
      const path = join(dir, 'catalog.db');
      const old = new Database(path);
      old.exec(`
        CREATE TABLE sites (name TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('docker-daemon', 'registry')), created TEXT NOT NULL, note TEXT);
        CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL REFERENCES sites(name) ON DELETE CASCADE,
          kind TEXT NOT NULL CHECK (kind IN ('bundle', 'inventory', 'receipt')), ref TEXT NOT NULL, bundles TEXT NOT NULL, created TEXT NOT NULL,
          recorded TEXT NOT NULL, path TEXT, operation TEXT, summary TEXT NOT NULL, holdings TEXT NOT NULL, UNIQUE (site, kind, ref));
        INSERT INTO sites VALUES ('b', 'registry', '2026-01-01T00:00:00Z', 'kept');
        INSERT INTO records (site, kind, ref, bundles, created, recorded, summary, holdings) VALUES ('b', 'inventory', 'r1', '[]', 'c', 'r', '{}', '{"layers":[],"images":[]}');
      `);
      old.pragma('user_version = 1');
      old.close();
      const c = Catalog.open(path);
      try {
        assert.deepEqual(c.site('b'), { name: 'b', kind: 'registry', created: '2026-01-01T00:00:00Z', note: 'kept' });
        assert.equal(c.records('b').length, 1);
        assert.equal(c.addSite('node', 'containerd').kind, 'containerd');
      } finally {
        c.close();
      }
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('user_version', { simple: true }), 2);
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.deepEqual(db.pragma('foreign_key_check'), []);
      } finally {
        db.close();
      }
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


