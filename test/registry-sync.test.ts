// Incremental sync into a registry: a registry's inventory, a thin bundle that names the blobs the registry holds,
// its push (checked before anything moves), push receipts, and the refusals that push nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { readTarEntry } from './helpers/tar.js';
import { missing } from './helpers/tools.js';

const exec = promisify(execFile);
const skopeo = async (...args: string[]): Promise<string> => (await exec('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 })).stdout;
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo', 'docker-registry'], { root: true });

interface FerryJson {
  blobs: { digest: string; diffId?: string; mediaType: string }[];
  reliesOn: { digest: string; diffId: string; mediaType: string }[];
}

describe('incremental sync into a registry', { skip }, () => {
  let src: Dockerd;
  let reg: Registry;
  let work: string;
  let inventory: string;
  let week1: string;
  const ids: Record<string, string> = {};
  const WEEK1 = ['regsync/app:1', 'regsync/tool:1'];
  const WEEK2 = ['regsync/app:2', 'regsync/tool:1', 'regsync/db:1'];
  const catalogOf = async (host: string): Promise<string[]> => ((await (await fetch(`http://${host}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-regsync-'));
    [src, reg] = await Promise.all([startDockerd('regsync'), startRegistry()]);
    await importBase(src, 'regsync/base:1', { 'usr/lib/base.dat': 'b'.repeat(300_000) });
    ids['regsync/app:1'] = await build(src, 'regsync/app:1', 'FROM regsync/base:1\nCOPY app /app\n', { 'app/v': '1', 'app/lib.dat': Buffer.alloc(100_000, 1) });
    ids['regsync/tool:1'] = await build(src, 'regsync/tool:1', 'FROM regsync/base:1\nCOPY tool /tool\n', { tool: 'tool' });
    ids['regsync/app:2'] = await build(src, 'regsync/app:2', 'FROM regsync/base:1\nCOPY app /app\n', { 'app/v': '2', 'app/lib.dat': Buffer.alloc(100_000, 1) });
    ids['regsync/db:1'] = await build(src, 'regsync/db:1', 'FROM regsync/base:1\nCOPY db /db\n', { db: Buffer.alloc(50_000, 2) });
    week1 = join(work, 'week1.ferry.tar');
    inventory = join(work, 'registry.inventory.json');
    assert.equal((await ferry(['pack', ...WEEK1, '-o', week1], { dockerHost: src.host })).code, 0);
  });

  after(async () => {
    await Promise.all([src?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a push writes a receipt naming the blobs the registry now holds (zstd layers converted to gzip)', async () => {
    const receipt = join(work, 'push1.receipt.json');
    const run = await ferry(['push', week1, '--to', `${reg.host}/site`, '--receipt', receipt]);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(await readFile(receipt, 'utf8')) as { operation: string; images: { id: string; status: string; refs: string[] }[]; layers: { blobs?: { mediaType: string }[] }[] };
    const validate = new Ajv({ strict: true }).compile(JSON.parse(await readFile(new URL('../schemas/ferry-receipt-v1.schema.json', import.meta.url), 'utf8')));
    assert.ok(validate(r), JSON.stringify(validate.errors));
    assert.equal(r.operation, 'push');
    assert.deepEqual(r.images.map((i) => i.id).sort(), WEEK1.map((n) => ids[n]).sort());
    assert.ok(r.images.every((i) => i.status === 'pushed' && i.refs[0]!.startsWith(`${reg.host}/site/regsync/`)));
    assert.ok(r.layers.every((l) => l.blobs?.[0]?.mediaType.endsWith('gzip')), 'layers are named by the gzip blobs pushed');
  });

  it("a registry's inventory lists its images with manifest, layer blobs and diffIDs", async () => {
    const run = await ferry(['inventory', '--registry', `${reg.host}/site`, '-o', inventory]);
    assert.equal(run.code, 0, run.stderr);
    const inv = JSON.parse(await readFile(inventory, 'utf8')) as { target: { kind: string }; layers: { diffId: string; blobs?: { digest: string }[] }[]; images: { id: string; refs: string[]; manifest?: string; layers: number[] }[] };
    const validate = new Ajv({ strict: true }).compile(JSON.parse(await readFile(new URL('../schemas/ferry-inventory-v1.schema.json', import.meta.url), 'utf8')));
    assert.ok(validate(inv), JSON.stringify(validate.errors));
    assert.equal(inv.target.kind, 'registry');
    for (const n of WEEK1) {
      const img = inv.images.find((i) => i.id === ids[n])!;
      assert.ok(img, n);
      assert.deepEqual(img.refs, [`${reg.host}/site/${n}`]);
      assert.equal(img.manifest, sha256(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/site/${n}`)));
      const diffIds = JSON.parse(await src.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', n])) as string[];
      assert.deepEqual(img.layers.map((k) => inv.layers[k]!.diffId), diffIds);
      assert.ok(img.layers.every((k) => inv.layers[k]!.blobs?.length === 1));
    }
    const again = join(work, 'again.inventory.json');
    assert.equal((await ferry(['inventory', '--registry', `${reg.host}/site`, '-o', again])).code, 0);
    assert.equal(await readFile(again, 'utf8'), await readFile(inventory, 'utf8'), 'deterministic');
  });

  it('a thin bundle planned on the inventory names the registry\'s blobs, pushes, and reads back whole', async () => {
    for (const have of [inventory, join(work, 'push1.receipt.json')]) {
      const thin = join(work, `week2-${have.endsWith('receipt.json') ? 'receipt' : 'inventory'}.ferry.tar`);
      let run = await ferry(['pack', ...WEEK2, '--have', have, '-o', thin], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      const f = JSON.parse((await readTarEntry(thin, 'ferry.json')).toString()) as FerryJson;
      assert.equal(f.blobs.filter((b) => b.diffId).length, 2, 'app:2 and db:1 layers travel');
      assert.equal(f.reliesOn.length, 2, 'the base and the tool layer are relied on');
      assert.ok(f.reliesOn.every((r) => r.mediaType.endsWith('gzip')), 'named by the blobs the registry holds');

      const dry = await ferry(['push', thin, '--to', `${reg.host}/site`, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /relied on: present/);
      run = await ferry(['push', thin, '--to', `${reg.host}/site`, '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(json<{ blobs: { uploaded: number } }>(run).blobs.uploaded <= 4, true, 'configs and new layers only');
      for (const n of WEEK2) {
        const ref = `docker://${reg.host}/site/${n}`;
        assert.equal(sha256(await skopeo('inspect', '--tls-verify=false', '--config', '--raw', ref)), ids[n], `${n} config`);
        // skopeo fetches every layer and checks its digest: the manifest names only blobs the registry has.
        const out = join(work, `copy-${n.replace(/[/:]/g, '-')}`);
        await skopeo('copy', '--src-tls-verify=false', ref, `dir:${out}`);
      }
    }
  });

  it('refuses a thin push to a registry that lacks the relied-on blobs, and pushes nothing', async () => {
    const empty = await startRegistry();
    try {
      const thin = join(work, 'week2-inventory.ferry.tar');
      const run = await ferry(['push', thin, '--to', `${empty.host}/site`]);
      assert.equal(run.code, 4, run.stderr);
      assert.match(run.stderr, /lacks 2 layer blob\(s\) this bundle relies on/);
      assert.match(run.stderr, /nothing was pushed/);
      assert.deepEqual(await catalogOf(empty.host), []);
    } finally {
      await empty.stop();
    }
    // Planned on an earlier bundle (zstd blobs) while the registry holds gzip ones: refused, with the way out.
    const sinceBundle = join(work, 'week2-since.ferry.tar');
    assert.equal((await ferry(['pack', ...WEEK2, '--since', week1, '-o', sinceBundle], { dockerHost: src.host })).code, 0);
    const run = await ferry(['push', sinceBundle, '--to', `${reg.host}/other`]);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /inventory --registry/);
  });
});
