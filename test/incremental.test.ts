// Incremental sync with real daemons: week 1 shipped in full, the target's inventory carried back, week 2 thin;
// refusals that change nothing, plain `docker load` of a thin bundle, chains, the catalog (one-way and receipts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { readTarEntry } from './helpers/tar.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });

interface FerryJson {
  id: string;
  images: { refs: string[]; imageId: string; layers: { diffId: string; digest: string }[] }[];
  blobs: { digest: string; diffId?: string; mediaType: string }[];
  reliesOn: { digest: string; diffId: string; carriedBy?: string }[];
  deltas?: { diffId: string }[];
}

async function ferryJson(bundle: string): Promise<FerryJson> {
  return JSON.parse((await readTarEntry(bundle, 'ferry.json')).toString()) as FerryJson;
}

/** The layers a bundle carries: stored whole, or as deltas against layers the target holds. */
const heldLayers = (f: FerryJson): string[] => [...f.blobs.filter((b) => b.diffId).map((b) => b.diffId!), ...(f.deltas ?? []).map((d) => d.diffId)].sort();
const reliedLayers = (f: FerryJson): string[] => f.reliesOn.map((r) => r.diffId).sort();

async function schema(name: string): Promise<(doc: unknown) => boolean> {
  return new Ajv({ strict: true }).compile(JSON.parse(await readFile(new URL(`../schemas/${name}`, import.meta.url), 'utf8')));
}

describe('incremental sync between sites', { skip }, () => {
  let src: Dockerd;
  let siteB: Dockerd;
  let empty: Dockerd;
  let work: string;
  const ids: Record<string, string> = {};
  const layersOf: Record<string, string[]> = {};
  const WEEK1 = ['sync/app:1', 'sync/tool:1', 'sync/web:1'];
  const WEEK2 = ['sync/app:2', 'sync/tool:1', 'sync/web:2', 'sync/db:1'];
  let week1: string;
  let week2: string;
  let inventory: string;
  const env = (): NodeJS.ProcessEnv => ({ FERRY_HOME: join(work, 'ferry-home') });

  const layers = async (d: Dockerd, ref: string): Promise<string[]> => JSON.parse(await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])) as string[];
  const imagesIn = async (d: Dockerd): Promise<string[]> => (await d.docker(['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-sync-'));
    [src, siteB, empty] = await Promise.all([startDockerd('sync-src'), startDockerd('sync-b'), startDockerd('sync-empty')]);
    await importBase(src, 'sync/base:1', { 'usr/lib/base.dat': 'b'.repeat(400_000) });
    const appFiles = (v: string): Record<string, string | Buffer> => ({ 'app/main.sh': `echo app ${v}\n`, 'app/lib.dat': Buffer.alloc(200_000, 3), 'app/version': v });
    ids['sync/app:1'] = await build(src, 'sync/app:1', 'FROM sync/base:1\nCOPY app /srv/app\n', appFiles('1'));
    ids['sync/tool:1'] = await build(src, 'sync/tool:1', 'FROM sync/base:1\nCOPY tool.sh /usr/local/bin/tool.sh\n', { 'tool.sh': '#!/bin/sh\necho tool\n' });
    ids['sync/web:1'] = await build(src, 'sync/web:1', 'FROM sync/base:1\nCOPY site /var/www\n', { 'site/index.html': '<h1>web</h1>\n', 'site/big.css': 'x'.repeat(150_000) });
    // Week 2: the app layer rebuilt with a few files changed; an "upgrade" layer on web; a new image; tool unchanged.
    ids['sync/app:2'] = await build(src, 'sync/app:2', 'FROM sync/base:1\nCOPY app /srv/app\n', appFiles('2'));
    ids['sync/web:2'] = await build(src, 'sync/web:2', 'FROM sync/web:1\nCOPY upgrade /usr/lib/upgraded\n', { 'upgrade/libssl.so': Buffer.alloc(120_000, 9) });
    ids['sync/db:1'] = await build(src, 'sync/db:1', 'FROM sync/base:1\nCOPY db /opt/db\n', { 'db/db.bin': Buffer.alloc(180_000, 5) });
    for (const r of Object.keys(ids)) layersOf[r] = await layers(src, r);
    week1 = join(work, 'week1.ferry.tar');
    week2 = join(work, 'week2.ferry.tar');
    inventory = join(work, 'site-b.inventory.json');
  });

  after(async () => {
    await Promise.all([src?.stop(), siteB?.stop(), empty?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('week 1: a full bundle loads into an empty site, with a receipt of what it now holds', async () => {
    let run = await ferry(['pack', ...WEEK1, '-o', week1], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const receipt = join(work, 'week1.receipt.json');
    run = await ferry(['load', week1, '--receipt', receipt, '--json'], { dockerHost: siteB.host });
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(await readFile(receipt, 'utf8')) as { bundles: string[]; images: { id: string; status: string; refs: string[] }[]; failures: string[]; target: { kind: string; id: string } };
    assert.ok((await schema('ferry-receipt-v1.schema.json'))(r), 'receipt matches its schema');
    assert.deepEqual(r.bundles, [(await ferryJson(week1)).id]);
    assert.deepEqual(r.images.map((i) => i.id).sort(), WEEK1.map((n) => ids[n]).sort());
    assert.ok(r.images.every((i) => i.status === 'loaded'));
    assert.deepEqual(r.failures, []);
    assert.equal(r.target.kind, 'docker-daemon');
    assert.ok(r.target.id.length > 0);
  });

  it('the site inventory is small, deterministic, schema-valid, and names every image and layer', async () => {
    let run = await ferry(['inventory', '-o', inventory], { dockerHost: siteB.host });
    assert.equal(run.code, 0, run.stderr);
    const again = join(work, 'again.inventory.json');
    run = await ferry(['inventory', '-o', again], { dockerHost: siteB.host });
    assert.equal(run.code, 0, run.stderr);
    const text = await readFile(inventory, 'utf8');
    assert.equal(await readFile(again, 'utf8'), text, 'same daemon, same bytes');
    const inv = JSON.parse(text) as { target: { kind: string }; layers: { diffId: string }[]; images: { id: string; refs: string[]; layers: number[] }[] };
    assert.ok((await schema('ferry-inventory-v1.schema.json'))(inv), 'inventory matches its schema');
    assert.equal(inv.target.kind, 'docker-daemon');
    for (const n of WEEK1) {
      const img = inv.images.find((i) => i.id === ids[n]);
      assert.ok(img, n);
      assert.ok(img.refs.includes(`docker.io/${n}`), `${n} is named`);
      assert.deepEqual(img.layers.map((k) => inv.layers[k]!.diffId), layersOf[n], `${n} layers in order`);
    }
    assert.ok(text.length < 10_000, `a three-image inventory is small (${text.length} bytes)`);
  });

  it('week 2 packed against the inventory holds exactly the new layers, and says what it relies on', async () => {
    const run = await ferry(['pack', ...WEEK2, '--have', inventory, '-o', week2, '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const out = json<{ reliesOn: number; reliedBytes: number }>(run);
    const f = await ferryJson(week2);
    const old = new Set(WEEK1.flatMap((n) => layersOf[n]!));
    const fresh = [...new Set(WEEK2.flatMap((n) => layersOf[n]!))].filter((d) => !old.has(d)).sort();
    assert.equal(fresh.length, 3, 'app:2, web:2 and db:1 each add one layer');
    assert.deepEqual(heldLayers(f), fresh, 'only the new layers travel');
    const reliedOn = [...new Set(WEEK2.flatMap((n) => layersOf[n]!))].filter((d) => old.has(d)).sort();
    assert.deepEqual(reliedLayers(f), reliedOn, 'every old layer the images use is listed as relied on');
    assert.equal(out.reliesOn, reliedOn.length);
    assert.ok(out.reliedBytes > 400_000, 'the base layer is left out');
    // Configs and manifests always travel.
    assert.deepEqual(f.images.map((i) => i.imageId).sort(), WEEK2.map((n) => ids[n]).sort());
    const blobs = new Set(f.blobs.map((b) => b.digest));
    for (const img of f.images) for (const l of img.layers) assert.ok(blobs.has(l.digest) || (f.deltas ?? []).some((d) => d.diffId === l.digest) || f.reliesOn.some((r) => r.digest === l.digest));

    const inspect = await ferry(['inspect', week2, '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    const view = json<{ totals: { layers: number; reliesOn: number; reliedBytes: number }; images: { layers: { held: boolean }[] }[] }>(inspect);
    assert.equal(view.totals.layers, 3);
    assert.equal(view.totals.reliesOn, reliedOn.length);
    assert.equal(view.totals.reliedBytes, out.reliedBytes);
    const text = await ferry(['inspect', week2]);
    assert.match(text.stdout, /Thin bundle: holds 3 layer\(s\) and relies on \d+ it does not hold/);

    const verify = await ferry(['verify', week2, '--have', inventory]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stderr, /Applies to the target/);
  });

  it('refuses the thin bundle for an empty daemon, listing what is missing, and changes nothing', async () => {
    const before = await imagesIn(empty);
    const receipt = join(work, 'refused.receipt.json');
    const run = await ferry(['load', week2, '--receipt', receipt], { dockerHost: empty.host });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /lacks \d+ layer\(s\) this bundle relies on/);
    const base = layersOf['sync/base:1'] ?? layersOf['sync/tool:1']!.slice(0, 1);
    assert.ok(run.stderr.includes(base[0]!), 'names the missing base layer');
    assert.match(run.stderr, /sync\/tool:1 \(layer 1 of 2/, 'names an image that needs it');
    assert.match(run.stderr, /nothing was loaded/);
    assert.deepEqual(await imagesIn(empty), before, 'no image appeared');
    const r = JSON.parse(await readFile(receipt, 'utf8')) as { images: unknown[]; failures: string[] };
    assert.deepEqual(r.images, []);
    assert.match(r.failures[0]!, /lacks/);

    const emptyInventory = join(work, 'empty.inventory.json');
    assert.equal((await ferry(['inventory', '-o', emptyInventory], { dockerHost: empty.host })).code, 0);
    const verify = await ferry(['verify', week2, '--have', emptyInventory]);
    assert.equal(verify.code, 4, verify.stderr);
    assert.match(verify.stderr, /cannot apply/);
  });

  it('the thin week-2 bundle loads into the site: right image IDs and tags, old layers reused', async () => {
    const run = await ferry(['load', week2, '--json'], { dockerHost: siteB.host });
    assert.equal(run.code, 0, run.stderr);
    for (const n of WEEK2) assert.equal((await siteB.docker(['image', 'inspect', '--format', '{{.Id}}', n])).trim(), ids[n], n);
    const out = json<{ images: { imageId: string; layersSent: number; status: string }[] }>(run);
    assert.equal(out.images.reduce((s, i) => s + i.layersSent, 0), 3, 'only the three new layers were sent');
    assert.equal(out.images.find((i) => i.imageId === ids['sync/tool:1'])?.status, 'present');
  });

  it('several bundles given in order apply as a chain to an empty daemon', async () => {
    const chain = await startDockerd('sync-chain');
    try {
      const run = await ferry(['load', week1, week2], { dockerHost: chain.host });
      assert.equal(run.code, 0, run.stderr);
      for (const n of [...WEEK1, ...WEEK2]) assert.equal((await chain.docker(['image', 'inspect', '--format', '{{.Id}}', n])).trim(), ids[n], n);
      // Out of order, the second bundle's needs come before the first supplies them: refused, nothing loaded.
      const other = await startDockerd('sync-chain2');
      try {
        const wrong = await ferry(['load', week2, week1], { dockerHost: other.host });
        assert.equal(wrong.code, 4, wrong.stderr);
        assert.deepEqual(await imagesIn(other), []);
      } finally {
        await other.stop();
      }
    } finally {
      await chain.stop();
    }
  });

  it('plain `docker load` reads a thin (gzip) bundle on a Docker 20.10 daemon that has the base layers', async () => {
    const plain = await startDockerd('sync-plain');
    try {
      const full = join(work, 'week1-gzip.ferry.tar');
      const thin = join(work, 'week2-gzip.ferry.tar');
      assert.equal((await ferry(['pack', ...WEEK1, '-o', full, '--compression', 'gzip'], { dockerHost: src.host })).code, 0);
      // Plain docker load needs every layer whole: --no-delta (a delta layer only ferry rebuilds).
      const run = await ferry(['pack', ...WEEK2, '--since', full, '-o', thin, '--compression', 'gzip', '--no-delta'], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(heldLayers(await ferryJson(thin)).length, 3);
      await plain.docker(['load', '-i', full]);
      await plain.docker(['load', '-i', thin]);
      for (const n of WEEK2) assert.equal((await plain.docker(['image', 'inspect', '--format', '{{.Id}}', n])).trim(), ids[n], n);
    } finally {
      await plain.stop();
    }
  });

  it('one-way: a catalogued site with no word back gets the same week-2 bundle', async () => {
    const e = env();
    assert.equal((await ferry(['site', 'add', 'b'], { env: e })).code, 0);
    const w1 = join(work, 'oneway-week1.ferry.tar');
    const w2 = join(work, 'oneway-week2.ferry.tar');
    let run = await ferry(['pack', ...WEEK1, '--site', 'b', '-o', w1], { dockerHost: src.host, env: e });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(heldLayers(await ferryJson(w1)).length, 4, 'nothing known yet: week 1 is full');
    run = await ferry(['pack', ...WEEK2, '--site', 'b', '-o', w2], { dockerHost: src.host, env: e });
    assert.equal(run.code, 0, run.stderr);
    const [oneWay, fromInventory, first] = [await ferryJson(w2), await ferryJson(week2), await ferryJson(w1)];
    assert.deepEqual(heldLayers(oneWay), heldLayers(fromInventory), 'the same layers travel');
    assert.deepEqual(reliedLayers(oneWay), reliedLayers(fromInventory), 'the same layers are relied on');
    assert.deepEqual(oneWay.images.map((i) => i.imageId).sort(), fromInventory.images.map((i) => i.imageId).sort());
    assert.ok(oneWay.reliesOn.every((r) => r.carriedBy === first.id), 'each relied-on layer names the bundle that carried it');

    const list = json<{ sites: { name: string; bundles: number }[] }>(await ferry(['site', 'list', '--json'], { env: e }));
    assert.deepEqual(list.sites.map((s) => [s.name, s.bundles]), [['b', 2]]);
    const show = await ferry(['site', 'show', 'b'], { env: e });
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /bundle .*3 layer\(s\)/);

    // The site's week-1 load is refused as thin-for-empty the same way, and the chain applies.
    const chain = await startDockerd('sync-oneway');
    try {
      assert.equal((await ferry(['load', w2], { dockerHost: chain.host })).code, 4);
      const ok = await ferry(['load', w1, w2], { dockerHost: chain.host });
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await chain.stop();
    }
  });

  it('--confirmed-only plans on receipts and inventories alone; an imported receipt changes the next plan', async () => {
    const e = env();
    assert.equal((await ferry(['site', 'add', 'c'], { env: e })).code, 0);
    const w1 = join(work, 'c-week1.ferry.tar');
    assert.equal((await ferry(['pack', ...WEEK1, '--site', 'c', '-o', w1], { dockerHost: src.host, env: e })).code, 0);
    // Probes plan only (--dry-run): they neither write nor record a bundle.
    const probe = async (extra: string[] = []): Promise<{ travel: string[]; reliedOn: string[]; bytes: { uncompressed: number; stored: number; unsized: number } }> => {
      const run = await ferry(['pack', ...WEEK2, '--site', 'c', '--dry-run', '--json', '-o', join(work, 'never.ferry.tar'), ...extra], { dockerHost: src.host, env: e });
      assert.equal(run.code, 0, run.stderr);
      return json(run);
    };
    const all = new Set(WEEK2.flatMap((n) => layersOf[n]!)).size;
    // Nothing confirmed: every week-2 layer travels.
    const unconfirmed = await probe(['--confirmed-only']);
    assert.deepEqual([unconfirmed.travel.length, unconfirmed.reliedOn.length], [all, 0]);
    // Sizes from the daemon's image history, every layer's known; the bundle's bytes estimated from them.
    assert.equal(unconfirmed.bytes.unsized, 0);
    assert.ok(unconfirmed.bytes.uncompressed > 0 && unconfirmed.bytes.stored > 0, JSON.stringify(unconfirmed.bytes));
    // Assumed (week 1 sent, no word back): only the new layers.
    const assumed = await probe();
    assert.equal(assumed.travel.length, 3);
    assert.ok(assumed.bytes.uncompressed < unconfirmed.bytes.uncompressed, 'fewer layers, fewer bytes');

    // The site loads week 1 and sends a receipt back: now confirmed.
    const c = await startDockerd('sync-c');
    try {
      const receipt = join(work, 'c-week1.receipt.json');
      assert.equal((await ferry(['load', w1, '--receipt', receipt], { dockerHost: c.host })).code, 0);
      const imp = await ferry(['site', 'import', receipt, '--json'], { env: e });
      assert.equal(imp.code, 0, imp.stderr);
      assert.deepEqual(json<{ imported: { site: string; imported: boolean }[] }>(imp).imported.map((i) => [i.site, i.imported]), [['c', true]], 'the receipt names its site through its bundle');
      assert.equal(json<{ imported: { imported: boolean }[] }>(await ferry(['site', 'import', receipt, '--json'], { env: e })).imported[0]!.imported, false, 'importing twice changes nothing');
      assert.equal((await probe(['--confirmed-only'])).travel.length, 3, 'only the new layers, now that the receipt confirms the rest');

      // A week-2 bundle is sent: assumed applied, nothing new would travel...
      const w2 = join(work, 'c-week2.ferry.tar');
      assert.equal((await ferry(['pack', ...WEEK2, '--site', 'c', '-o', w2], { dockerHost: src.host, env: e })).code, 0);
      assert.equal((await probe()).travel.length, 0, 'with week 2 assumed applied, nothing travels');
      // ...until its receipt says the load failed: then its layers travel again.
      const failed = join(work, 'c-week2.receipt.json');
      const refused = await ferry(['load', w2, '--receipt', failed], { dockerHost: empty.host });
      assert.equal(refused.code, 4);
      assert.equal((await ferry(['site', 'import', failed], { env: e })).code, 0);
      assert.equal((await probe()).travel.length, 3, "the failed bundle's layers travel again");
    } finally {
      await c.stop();
    }
  });

  it('an inventory imported for a site replaces what was assumed before it', async () => {
    const e = env();
    assert.equal((await ferry(['site', 'add', 'd'], { env: e })).code, 0);
    const imp = await ferry(['site', 'import', inventory, '--site', 'd'], { env: e });
    assert.equal(imp.code, 0, imp.stderr);
    const out = join(work, 'd-week2.ferry.tar');
    assert.equal((await ferry(['pack', ...WEEK2, '--site', 'd', '-o', out], { dockerHost: src.host, env: e })).code, 0);
    assert.deepEqual(heldLayers(await ferryJson(out)), heldLayers(await ferryJson(week2)));
    const missingSite = await ferry(['site', 'import', inventory], { env: e });
    assert.equal(missingSite.code, 2);
    assert.match(missingSite.stderr, /which site/);
  });
});
