// Sub-layer deltas with real daemons: week 1 loaded into a site, week 2 packed against its inventory ships the
// rebuilt app layer as a delta, loads byte-exact with the source's image IDs; a target lacking the references is
// refused (exit 4) and unchanged; plain `docker load` cannot read a delta bundle and says so by failing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { containerdMissing, startContainerd } from './helpers/containerd.js';
import { BundleModel, sha256 } from './helpers/bundle-model.js';
import { ferry, FERRY_BIN } from './helpers/ferry.js';
import { serve } from './helpers/serve.js';
import { exec } from '../bench/exec.js';
import { startRegistry } from './helpers/registry.js';
import { seededRandom } from './helpers/seeded.js';
import { readTarEntry } from './helpers/tar.js';
import { missing } from './helpers/tools.js';

const skip = missing(['dockerd', 'docker', 'busybox', 'docker-registry'], { root: true });

const WORDS = 'import def return class self print value items config request response handler route model view'.split(' ');

function source(rand: () => number, bytes: number): string {
  let s = '';
  while (s.length < bytes) s += `${WORDS[Math.floor(rand() * WORDS.length)]}${rand() < 0.12 ? '\n' : ' '}`;
  return s.slice(0, bytes);
}

interface FerryJson {
  version: number;
  images: { refs: string[]; imageId: string; layers: { diffId: string; digest: string }[] }[];
  deltas?: { diffId: string; size: number; blob: string; references: { diffId: string }[] }[];
}

describe('sub-layer deltas between real daemons', { skip }, () => {
  let src: Dockerd;
  let site: Dockerd;
  let bare: Dockerd;
  let work: string;
  let week1: string;
  let inventory: string;
  let week2: string;
  let whole: string;
  const ids: Record<string, string> = {};

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-delta-e-'));
    [src, site, bare] = await Promise.all([startDockerd('delta-src'), startDockerd('delta-site'), startDockerd('delta-bare')]);
    const rand = seededRandom(42);
    await importBase(src, 'delta/base:1', { 'usr/lib/libbase.txt': source(rand, 300_000) });
    const modules = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`app/mod${i}.py`, source(rand, 2000 + ((i * 977) % 12000))]));
    const bundleJs = source(rand, 1_500_000);
    ids['delta/app:1'] = await build(src, 'delta/app:1', 'FROM delta/base:1\nCOPY app /srv/app\n', { ...modules, 'app/bundle.js': bundleJs });
    // Week 2: three modules edited, one added, the big bundle patched in a few places, under a new tag.
    const edited = { ...modules };
    for (const i of [4, 17, 33]) edited[`app/mod${i}.py`] = `${modules[`app/mod${i}.py`]!.slice(0, 500)}# fixed\n${modules[`app/mod${i}.py`]!.slice(500)}`;
    edited['app/mod_new.py'] = source(rand, 3000);
    const patched = `${bundleJs.slice(0, 700_000)}/* v2 */${bundleJs.slice(700_000, 1_200_000)}const x = 2;${bundleJs.slice(1_200_000)}`;
    ids['delta/app:2'] = await build(src, 'delta/app:2', 'FROM delta/base:1\nCOPY app /srv/app\n', { ...edited, 'app/bundle.js': patched });
    week2 = join(work, 'week2.ferry.tar');
    whole = join(work, 'week2-whole.ferry.tar');
  });

  after(async () => {
    await Promise.all([src?.stop(), site?.stop(), bare?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('week 2 packed against the site inventory carries the rebuilt layer as a delta, a fraction of the whole', async () => {
    week1 = join(work, 'week1.ferry.tar');
    let run = await ferry(['pack', 'delta/app:1', '-o', week1], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    run = await ferry(['load', week1], { dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    inventory = join(work, 'site.inventory.json');
    run = await ferry(['inventory', '-o', inventory], { dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    run = await ferry(['pack', 'delta/app:2', '--have', inventory, '-o', week2, '--delta'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    run = await ferry(['pack', 'delta/app:2', '--have', inventory, '-o', whole, '--no-delta'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const index = JSON.parse((await readTarEntry(week2, 'ferry.json')).toString()) as FerryJson;
    assert.equal(index.version, 2);
    assert.equal(index.deltas?.length, 1, 'the app layer travels as a delta');
    const appLayer = index.images[0]!.layers.at(-1)!;
    assert.equal(index.deltas![0]!.diffId, appLayer.diffId);
    assert.equal(appLayer.digest, appLayer.diffId, 'images name a delta layer by its uncompressed form');
    const [d, w] = [(await stat(week2)).size, (await stat(whole)).size];
    assert.ok(d * 4 < w, `delta bundle ${d} B against ${w} B whole`);
  });

  it('loads into the site byte for byte, with the source image ID', async () => {
    const run = await ferry(['load', week2, '--json'], { dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await site.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/app:2'])).trim(), ids['delta/app:2']);
    const layers = async (d: Dockerd): Promise<string> => (await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'delta/app:2'])).trim();
    assert.equal(await layers(site), await layers(src));
  });

  it('a daemon without the reference layers is refused (exit 4) and left unchanged; plain docker load fails', async () => {
    // It holds the base, so only the delta's reference (last week's app layer) is missing.
    const base = join(work, 'base.ferry.tar');
    assert.equal((await ferry(['pack', 'delta/base:1', '-o', base], { dockerHost: src.host })).code, 0);
    assert.equal((await ferry(['load', base], { dockerHost: bare.host })).code, 0);
    const before = (await bare.docker(['images', '-a', '-q'])).trim();
    const run = await ferry(['load', week2], { dockerHost: bare.host });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /reference layer/);
    assert.equal((await bare.docker(['images', '-a', '-q'])).trim(), before);
    await assert.rejects(bare.docker(['load', '-i', week2]));
    assert.equal((await bare.docker(['images', '-a', '-q'])).trim(), before);
  });

  it('verify rebuilds the delta from the week-1 bundle; a delta that lies is refused (exit 3) by verify and load, changing nothing', async () => {
    let run = await ferry(['verify', week2, '--have', week1]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Rebuilt 1 delta layer/);
    const m = await BundleModel.load(week2);
    const delta = m.index.deltas![0]!;
    const lie = async (name: string, change: (c: BundleModel) => void): Promise<string> => {
      const c = m.clone();
      change(c);
      const path = join(work, `${name}.ferry.tar`);
      await writeFile(path, c.bytes());
      return path;
    };
    const withBlob = (bytes: Buffer) => (c: BundleModel): void => {
      const digest = sha256(bytes) as typeof delta.blob;
      c.blobs.delete(delta.blob);
      c.blobs.set(digest, bytes);
      c.index.blobs = c.index.blobs.map((b) => (b.digest === delta.blob ? { ...b, digest, size: bytes.length } : b)).sort((a, b) => a.digest.localeCompare(b.digest));
      c.index.deltas![0]!.blob = digest;
    };
    const flipped = Buffer.from(m.blobs.get(delta.blob)!);
    flipped[flipped.length - 7]! ^= 0x5a;
    // A delta whose bytes were changed rebuilds something else (exit 3). One whose ferry.json names another
    // reference than its recipe (the base layer, at a size the site does not have it at) is a recipe lie to verify
    // (exit 3), and to a load a reference the site lacks as named (exit 4).
    const lies = [
      { path: await lie('flipped', withBlob(flipped)), load: 3 },
      { path: await lie('other-ref', (c) => (c.index.deltas![0]!.references = [{ diffId: c.index.images[0]!.layers[0]!.diffId, size: 1 }])), load: 4 },
    ];
    // The site loses app:2 (its app layer goes with it), so a load must rebuild the delta again.
    await site.docker(['rmi', 'delta/app:2']);
    const before = (await site.docker(['images', '-a', '-q'])).trim();
    for (const bad of lies) {
      run = await ferry(['verify', bad.path, '--have', week1]);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /delta of layer/);
      run = await ferry(['load', bad.path], { dockerHost: site.host });
      assert.equal(run.code, bad.load, run.stderr);
      assert.equal((await site.docker(['images', '-a', '-q'])).trim(), before);
    }
    run = await ferry(['load', week2], { dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await site.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/app:2'])).trim(), ids['delta/app:2']);
  });

  it('a delta load killed (SIGKILL) and run again finishes, and removes what a killed run left in TMPDIR', async () => {
    await site.docker(['rmi', 'delta/app:2']);
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const env = { ...process.env, DOCKER_HOST: site.host, TMPDIR: tmp };
    const killed = spawn(process.execPath, [FERRY_BIN, 'load', week2], { env, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 400));
    killed.kill('SIGKILL');
    await new Promise((r) => killed.once('exit', r));
    // As a run killed while rebuilding leaves it (its pid gone).
    await mkdir(join(tmp, 'ferry-delta-999999-abandoned'), { recursive: true });
    const run = await ferry(['load', week2], { env: { TMPDIR: tmp }, dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await site.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/app:2'])).trim(), ids['delta/app:2']);
    assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith('ferry-delta-')), []);
  });

  it('with the source holding no older images (a docker-save archive), references come from the layer cache of what ferry shipped; cache prune empties it', async () => {
    const cache = join(work, 'cache');
    const env = { FERRY_CACHE_DIR: cache };
    // Week 1 packed again, now with a cache: its layers are kept.
    assert.equal((await ferry(['pack', 'delta/app:1', '-o', join(work, 'week1-cached.ferry.tar')], { dockerHost: src.host, env })).code, 0);
    assert.ok((await readdir(join(cache, 'layers'))).some((n) => n.endsWith('.tar.zst')), 'the shipped layers are cached');
    const archive = join(work, 'app2.docker.tar');
    await src.docker(['save', '-o', archive, 'delta/app:2']);
    const deltasOf = async (bundle: string): Promise<number> => (JSON.parse((await readTarEntry(bundle, 'ferry.json')).toString()) as FerryJson).deltas?.length ?? 0;
    const viaCache = join(work, 'week2-cache.ferry.tar');
    let run = await ferry(['pack', `docker-archive:${archive}`, '--have', inventory, '-o', viaCache], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await deltasOf(viaCache), 1, 'the delta was made against the cached layer');
    const noCache = join(work, 'week2-nocache.ferry.tar');
    run = await ferry(['pack', `docker-archive:${archive}`, '--have', inventory, '-o', noCache]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await deltasOf(noCache), 0, 'no reference at hand: the layer travels whole');
    run = await ferry(['cache', 'prune', '--all', '--json'], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.ok((JSON.parse(run.stdout) as { removed: number }).removed > 0);
    assert.deepEqual(await readdir(join(cache, 'layers')), []);
  });

  it("at a Docker daemon's site ferry keeps what it loads: a delta load reads its references from that cache, even once the daemon dropped them", async () => {
    const cache = join(work, 'site-cache');
    const env = { FERRY_CACHE_DIR: cache };
    const appLayer = async (d: Dockerd, ref: string): Promise<string> => (JSON.parse(await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])) as string[]).at(-1)!;
    // bare holds the base: loading week 1 applies (and keeps) only last week's app layer.
    assert.equal((await ferry(['load', week1], { dockerHost: bare.host, env })).code, 0);
    const reference = await appLayer(bare, 'delta/app:1');
    assert.deepEqual((await readdir(join(cache, 'layers'))).sort(), [`${reference.slice(7)}.tar.zst`]);
    // The daemon no longer holds the reference: without the cache the delta cannot be rebuilt.
    await bare.docker(['rmi', 'delta/app:1']);
    const before = (await bare.docker(['images', '-a', '-q'])).trim();
    let run = await ferry(['load', week2], { dockerHost: bare.host });
    assert.equal(run.code, 4, run.stderr);
    assert.equal((await bare.docker(['images', '-a', '-q'])).trim(), before);
    run = await ferry(['load', week2], { dockerHost: bare.host, env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await bare.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/app:2'])).trim(), ids['delta/app:2']);
    // The rebuilt layer is kept too (as its tar): next week's delta is made against it.
    assert.ok((await readdir(join(cache, 'layers'))).includes(`${(await appLayer(bare, 'delta/app:2')).slice(7)}.tar`));
  });

  it('a delta pack killed (SIGKILL) and run again finishes: nothing under the final name, no leftovers, the delta right', async () => {
    const dir = await mkdtemp(join(work, 'killed-pack-'));
    const tmp = await mkdtemp(join(work, 'tmp-'));
    const out = join(dir, 'week2.ferry.tar');
    const args = ['pack', 'delta/app:2', '--have', inventory, '-o', out];
    const killed = spawn(process.execPath, [FERRY_BIN, ...args], { env: { ...process.env, DOCKER_HOST: src.host, TMPDIR: tmp, FERRY_CACHE: 'off' }, stdio: 'ignore' });
    const exited = new Promise((r) => killed.once('exit', r));
    // Killed while it gathers references and encodes: its delta work directory is there.
    for (let t = Date.now(); !(await readdir(tmp)).some((n) => n.startsWith(`ferry-delta-${killed.pid}-`)); ) {
      assert.ok(Date.now() - t < 60_000 && killed.exitCode === null, 'the pack never started on its deltas');
      await new Promise((r) => setTimeout(r, 10));
    }
    killed.kill('SIGKILL');
    await exited;
    const left = await readdir(dir);
    assert.ok(!left.includes('week2.ferry.tar'), `no bundle under the final name: ${left.join(', ')}`);
    let run = await ferry(args, { dockerHost: src.host, env: { TMPDIR: tmp } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readdir(dir), ['week2.ferry.tar'], 'the killed runs left nothing beside the bundle');
    assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith('ferry-delta-')), [], 'nor in TMPDIR');
    assert.equal((JSON.parse((await readTarEntry(out, 'ferry.json')).toString()) as FerryJson).deltas?.length, 1);
    run = await ferry(['verify', out, '--have', week1]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Rebuilt 1 delta layer/);
  });

  it('volumes carry deltas: a set split for small media verifies, and loads byte for byte; the volume holding a delta is version 2', async () => {
    const bigId = await build(src, 'delta/big:1', 'FROM delta/base:1\nCOPY blob.b64 /srv/\n', { 'blob.b64': randomBytes(1_200_000).toString('base64') });
    const dir = await mkdtemp(join(work, 'volumes-'));
    let run = await ferry(['pack', 'delta/app:2', 'delta/big:1', '--have', inventory, '-o', join(dir, 'week2.ferry.tar'), '--max-volume-size', '1MB'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const volumes = (await readdir(dir)).sort().map((n) => join(dir, n));
    assert.ok(volumes.length >= 2, `a set: ${volumes.join(', ')}`);
    const indexes = await Promise.all(volumes.map(async (v) => JSON.parse((await readTarEntry(v, 'ferry.json')).toString()) as FerryJson));
    const holding = indexes.filter((x) => x.deltas?.length);
    assert.equal(holding.length, 1, 'one volume holds the delta');
    assert.equal(holding[0]!.version, 2);
    assert.ok(indexes.filter((x) => !x.deltas).every((x) => x.version === 1), 'the others stay version 1');
    run = await ferry(['verify', ...volumes, '--have', week1]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Rebuilt 1 delta layer/);
    await site.docker(['rmi', 'delta/app:2']);
    run = await ferry(['load', ...volumes], { dockerHost: site.host });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await site.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/app:2'])).trim(), ids['delta/app:2']);
    assert.equal((await site.docker(['image', 'inspect', '--format', '{{.Id}}', 'delta/big:1'])).trim(), bigId);
  });

  it('ferry serve rebuilds the delta beside the bundles and serves the layer byte for byte; alone, the delta bundle is refused (exit 4)', async () => {
    let run = await ferry(['serve', week2, '--listen', '127.0.0.1:0']);
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /reference layer/);
    const rebuilt = join(work, 'rebuilt');
    const served = await serve(['--rebuild-dir', rebuilt, week1, week2]);
    try {
      const dest = join(work, 'served-app2');
      await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${served.host}/delta/app:2`, `dir:${dest}`]);
      const index = JSON.parse((await readTarEntry(week2, 'ferry.json')).toString()) as FerryJson & { images: { manifest: { digest: string } }[] };
      assert.equal(sha256(await readFile(join(dest, 'manifest.json'))), index.images[0]!.manifest.digest);
      const diffId = index.deltas![0]!.diffId;
      assert.equal(sha256(await readFile(join(dest, diffId.slice(7)))), diffId, 'the rebuilt layer, as its tar');
    } finally {
      await served.stop();
    }
    assert.equal((await readdir(rebuilt)).length, 1, 'kept for the next run');
    run = await ferry(['serve', week2, '--listen', '127.0.0.1:0', '--rebuild-dir', rebuilt]);
    assert.equal(run.code, 4, 'the base layer is still in no bundle given');
  });

  it('pushes to a registry that holds week 1: the rebuilt layer read back from its blobs, its diffID right; packed from that registry, references come from it', async () => {
    const reg = await startRegistry();
    try {
      assert.equal((await ferry(['push', week1, '--to', reg.host])).code, 0);
      const inventory = join(work, 'registry.inventory.json');
      assert.equal((await ferry(['inventory', '--registry', reg.host, '-o', inventory])).code, 0);
      const thin = join(work, 'week2-registry.ferry.tar');
      let run = await ferry(['pack', 'delta/app:2', '--have', inventory, '-o', thin, '--delta'], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse((await readTarEntry(thin, 'ferry.json')).toString()) as FerryJson).deltas?.length, 1);
      run = await ferry(['push', thin, '--to', reg.host]);
      assert.equal(run.code, 0, run.stderr);
      // Packing it back from the registry checks every layer against the config's diffIDs, and keeps the image ID.
      const back = join(work, 'back.ferry.tar');
      run = await ferry(['pack', `docker://${reg.host}/delta/app:2`, '-o', back, '--json']);
      assert.equal(run.code, 0, run.stderr);
      const got = JSON.parse((await readTarEntry(back, 'ferry.json')).toString()) as FerryJson;
      assert.equal(got.images[0]!.imageId, ids['delta/app:2']);
      // The registry as the source: recompressed, week 2 is a delta against last week's layer, read from the
      // source registry under the name the target holds it by (no cache, no bundle at hand).
      const fromRegistry = join(work, 'week2-from-registry.ferry.tar');
      run = await ferry(['pack', `docker://${reg.host}/delta/app:2`, '--have', inventory, '--recompress', '-o', fromRegistry]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse((await readTarEntry(fromRegistry, 'ferry.json')).toString()) as FerryJson).deltas?.length, 1, 'references from the source registry');
      run = await ferry(['verify', fromRegistry, '--have', week1]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /Rebuilt 1 delta layer/);
    } finally {
      await reg.stop();
    }
  });

  it('loads into containerd that holds week 1: the reference read from its content store', { skip: containerdMissing() }, async () => {
    const ctd = await startContainerd('delta');
    try {
      const ns = 'k8s.io';
      assert.equal((await ferry(['load', week1, '--containerd', ctd.address, '--namespace', ns])).code, 0);
      const inventory = join(work, 'containerd.inventory.json');
      assert.equal((await ferry(['inventory', '--containerd', ctd.address, '--namespace', ns, '-o', inventory])).code, 0);
      const thin = join(work, 'week2-containerd.ferry.tar');
      let run = await ferry(['pack', 'delta/app:2', '--have', inventory, '-o', thin, '--delta'], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((JSON.parse((await readTarEntry(thin, 'ferry.json')).toString()) as FerryJson).deltas?.length, 1);
      run = await ferry(['load', thin, '--containerd', ctd.address, '--namespace', ns]);
      assert.equal(run.code, 0, run.stderr);
      const images = await ctd.ctr(['-n', ns, 'images', 'ls']);
      assert.match(images, /docker\.io\/delta\/app:2/);
      // ctr checks the unpacked snapshot against the config's diffIDs when it mounts the image.
      await ctd.ctr(['-n', ns, 'images', 'check']);
    } finally {
      await ctd.stop();
    }
  });
});
