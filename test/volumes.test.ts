// Volumes for fixed-size media: a bundle split into NAME.001.ferry.tar…, each a bundle on its own and under the
// size; sets loaded, pushed and verified in any order; missing or foreign volumes named before anything changes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { readTarEntry } from './helpers/tar.js';
import { layout } from './helpers/crafted-tar.js';
import { missing } from './helpers/tools.js';

const exec = promisify(execFile);
const skip = missing(['dockerd', 'docker', 'busybox', 'docker-registry', 'skopeo'], { root: true });
const MAX = 3_000_000;

describe('volumes for fixed-size media', { skip }, () => {
  let src: Dockerd;
  let reg: Registry;
  let work: string;
  let dir: string;
  let vols: string[];
  const ids: Record<string, string> = {};
  const IMAGES = ['vol/app:1', 'vol/web:1', 'vol/db:1', 'vol/tool:1', 'vol/big:1'];
  const imagesIn = async (d: Dockerd): Promise<string[]> => (await d.docker(['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-vol-'));
    dir = join(work, 'usb');
    await mkdir(dir);
    [src, reg] = await Promise.all([startDockerd('vol-src'), startRegistry()]);
    // Random bytes do not compress, so sizes on the volumes are what the test plans for.
    await importBase(src, 'vol/base:1', { 'usr/lib/base.bin': randomBytes(450_000).toString('base64') });
    ids['vol/app:1'] = await build(src, 'vol/app:1', 'FROM vol/base:1\nCOPY a.bin /a.bin\n', { 'a.bin': randomBytes(700_000) });
    ids['vol/web:1'] = await build(src, 'vol/web:1', 'FROM vol/base:1\nCOPY w.bin /w.bin\n', { 'w.bin': randomBytes(900_000) });
    ids['vol/db:1'] = await build(src, 'vol/db:1', 'FROM vol/base:1\nCOPY d.bin /d.bin\n', { 'd.bin': randomBytes(1_100_000) });
    ids['vol/tool:1'] = await build(src, 'vol/tool:1', 'FROM vol/base:1\nCOPY t.txt /t.txt\n', { 't.txt': 'tool' });
    ids['vol/big:1'] = await build(src, 'vol/big:1', 'FROM vol/base:1\nCOPY b.bin /b.bin\n', { 'b.bin': randomBytes(1_500_000) });
  });

  after(async () => {
    await Promise.all([src?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('splits a bundle into volumes under the size, each a valid bundle, the set verified in any order', async () => {
    const out = join(dir, 'week49.ferry.tar');
    const run = await ferry(['pack', ...IMAGES, '-o', out, '--max-volume-size', '3MB', '--compression', 'gzip', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const res = json<{ volumes: { path: string }[] }>(run);
    vols = res.volumes.map((v) => v.path);
    assert.ok(vols.length >= 3, `several volumes (${vols.length})`);
    assert.deepEqual((await readdir(dir)).sort(), vols.map((_, k) => `week49.${String(k + 1).padStart(3, '0')}.ferry.tar`), 'only the volumes: no whole bundle, no temp file');
    const sets = new Set<string>();
    for (const [k, v] of vols.entries()) {
      assert.ok((await stat(v)).size <= MAX, `${v} is ${(await stat(v)).size} bytes`);
      const index = JSON.parse((await readTarEntry(v, 'ferry.json')).toString()) as { volume: { set: string; number: number; count: number } };
      assert.equal(index.volume.number, k + 1);
      assert.equal(index.volume.count, vols.length);
      sets.add(index.volume.set);
      const alone = await ferry(['verify', v]);
      assert.equal(alone.code, 0, `${v}: ${alone.stderr}`);
    }
    assert.equal(sets.size, 1);
    const all = await ferry(['verify', ...[...vols].reverse()]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stderr, new RegExp(`all ${vols.length} volumes of set`));
  });

  it('loads a set given in any order, with the same image IDs', async () => {
    const dst = await startDockerd('vol-dst');
    try {
      const run = await ferry(['load', ...[...vols].reverse()], { dockerHost: dst.host });
      assert.equal(run.code, 0, run.stderr);
      for (const n of IMAGES) assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', n])).trim(), ids[n], n);
    } finally {
      await dst.stop();
    }
  });

  it('names a missing or a foreign volume before changing anything', async () => {
    const dst = await startDockerd('vol-refuse');
    try {
      const last = vols[vols.length - 1]!;
      let run = await ferry(['load', last, vols[0]!], { dockerHost: dst.host });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /week49\.002\.ferry\.tar/);
      assert.match(run.stderr, /nothing was changed/);
      const other = join(work, 'other.ferry.tar');
      assert.equal((await ferry(['pack', 'vol/tool:1', 'vol/app:1', '-o', other, '--max-volume-size', '2MB'], { dockerHost: src.host })).code, 0);
      run = await ferry(['load', vols[0]!, join(work, 'other.002.ferry.tar'), ...vols.slice(1)], { dockerHost: dst.host });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /other\.002\.ferry\.tar is a volume of another set/);
      run = await ferry(['push', vols[0]!, join(work, 'other.002.ferry.tar'), '--to', `${reg.host}/x`]);
      assert.equal(run.code, 2, run.stderr);
      assert.deepEqual(await imagesIn(dst), [], 'nothing was loaded');
    } finally {
      await dst.stop();
    }
  });

  it("loads one volume's complete images by itself, and says which images need the others", async () => {
    const dst = await startDockerd('vol-one');
    try {
      const first = JSON.parse((await readTarEntry(vols[0]!, 'ferry.json')).toString()) as { images: { refs: string[]; layers: { digest: string }[] }[]; blobs: { digest: string }[] };
      const held = new Set(first.blobs.map((b) => b.digest));
      const complete = first.images.filter((i) => i.layers.every((l) => held.has(l.digest))).map((i) => i.refs[0]!);
      assert.ok(complete.length >= 1, 'the first volume holds at least one whole image');
      const run = await ferry(['load', vols[0]!, '--json'], { dockerHost: dst.host });
      assert.equal(run.code, 0, run.stderr);
      for (const ref of complete) assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).trim(), ids[ref.replace('docker.io/', '')]);
      // A later volume alone: its images need the base from the first, which the daemon now has.
      const second = await ferry(['load', vols[1]!], { dockerHost: dst.host });
      assert.equal(second.code, 0, second.stderr);
      // Into an empty daemon, a later volume alone loads nothing and says why.
      const empty = await startDockerd('vol-empty');
      try {
        const alone = await ferry(['load', vols[vols.length - 1]!], { dockerHost: empty.host });
        assert.equal(alone.code, 0, alone.stderr);
        assert.match(alone.stderr, /Left out .*other volumes of the set/);
      } finally {
        await empty.stop();
      }
      // Plain `docker load` reads volumes too, in order (gzip volumes, Docker 20.10).
      const plain = await startDockerd('vol-plain');
      try {
        for (const v of vols) await plain.docker(['load', '-i', v]);
        for (const n of IMAGES) assert.equal((await plain.docker(['image', 'inspect', '--format', '{{.Id}}', n])).trim(), ids[n], n);
      } finally {
        await plain.stop();
      }
    } finally {
      await dst.stop();
    }
  });

  it('pushes a set given in any order; every image reads back whole', async () => {
    const run = await ferry(['push', ...[...vols].reverse(), '--to', `${reg.host}/mirror`]);
    assert.equal(run.code, 0, run.stderr);
    for (const n of IMAGES) {
      const { stdout } = await exec('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', '--config', '--raw', `docker://${reg.host}/mirror/${n}`]);
      assert.equal(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, ids[n], n);
      await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${reg.host}/mirror/${n}`, `dir:${join(work, `pulled-${n.replace(/\W/g, '-')}`)}`]);
    }
  });

  it('zstd volumes pushed as gzip: later volumes name the gzip blobs earlier ones became', async () => {
    const out = join(work, 'zstd.ferry.tar');
    const run = await ferry(['pack', ...IMAGES, '-o', out, '--max-volume-size', '3MB', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const zvols = json<{ volumes: { path: string }[] }>(run).volumes.map((v) => v.path);
    const push = await ferry(['push', ...zvols, '--to', `${reg.host}/z`]);
    assert.equal(push.code, 0, push.stderr);
    for (const n of IMAGES) await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${reg.host}/z/${n}`, `dir:${join(work, `z-${n.replace(/\W/g, '-')}`)}`]);
  });

  it('spreads an image too big for one volume over several; the set loads it whole', async () => {
    const out = join(work, 'spread.ferry.tar');
    const run = await ferry(['pack', 'vol/big:1', '-o', out, '--max-volume-size', '2MB', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const parts = json<{ volumes: { path: string; images: number }[] }>(run).volumes;
    assert.equal(parts.length, 2);
    assert.deepEqual(parts.map((p) => p.images), [0, 1], 'the image lives in the volume that completes it');
    const dst = await startDockerd('vol-spread');
    try {
      const load = await ferry(['load', parts[1]!.path, parts[0]!.path], { dockerHost: dst.host });
      assert.equal(load.code, 0, load.stderr);
      assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'vol/big:1'])).trim(), ids['vol/big:1']);
    } finally {
      await dst.stop();
    }
  });

  it('a blob larger than a volume spans several, and says so; the set verifies, loads and pushes it whole', async () => {
    const small = join(work, 'small');
    await mkdir(small);
    const run = await ferry(['pack', 'vol/big:1', '-o', join(small, 'x.ferry.tar'), '--max-volume-size', '1MB', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const parts = json<{ volumes: { path: string }[] }>(run).volumes.map((v) => v.path);
    assert.ok(parts.length >= 3, `the 1.5 MB layer needs several 1 MB volumes (${parts.length})`);
    for (const p of parts) assert.ok((await stat(p)).size <= 1_000_000, p);
    const plain = await ferry(['pack', 'vol/big:1', '-o', join(small, 'y.ferry.tar'), '--max-volume-size', '1MB'], { dockerHost: src.host });
    assert.match(plain.stderr, /is larger than a volume: it spans volumes/);
    const verify = await ferry(['verify', ...[...parts].reverse()]);
    assert.equal(verify.code, 0, verify.stderr);
    const dst = await startDockerd('vol-span');
    try {
      const lone = await ferry(['load', parts[0]!], { dockerHost: dst.host });
      assert.equal(lone.code, 0, lone.stderr);
      assert.deepEqual(await imagesIn(dst), [], 'one piece alone loads nothing');
      const missingOne = await ferry(['load', ...parts.slice(1)], { dockerHost: dst.host });
      assert.equal(missingOne.code, 2, missingOne.stderr);
      assert.match(missingOne.stderr, /x\.001\.ferry\.tar/);
      const load = await ferry(['load', ...[...parts].reverse()], { dockerHost: dst.host });
      assert.equal(load.code, 0, load.stderr);
      assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'vol/big:1'])).trim(), ids['vol/big:1']);
    } finally {
      await dst.stop();
    }
    const push = await ferry(['push', ...parts, '--to', `${reg.host}/span`]);
    assert.equal(push.code, 0, push.stderr);
    await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${reg.host}/span/vol/big:1`, `dir:${join(work, 'span-pulled')}`]);
    // A piece altered: the set no longer verifies, naming the blob.
    const buf = await readFile(parts[1]!);
    const piece = layout(buf).entries.find((e) => /\.part\d+$/.test(e.name))!;
    const at = piece.data + Math.floor(piece.size / 2);
    buf[at] = buf[at]! ^ 0xff;
    await writeFile(parts[1]!, buf);
    const alone = await ferry(['verify', parts[1]!]);
    assert.equal(alone.code, 0, `a piece alone cannot be checked: ${alone.stderr}`);
    const bad = await ferry(['verify', ...parts]);
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /in \d+ pieces/);
  });
});
