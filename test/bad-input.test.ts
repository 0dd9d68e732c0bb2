// Bad input gets a clear error and loses nothing: `ferry pack` with unknown images, unreachable or unsupported
// daemons, missing, read-only or full output directories and bad options; `ferry verify` and `ferry load` with
// truncated and corrupted bundles. Every case checks the exit code, a message that says what and where without a
// stack trace, and that nothing was left behind: no partial file, no new image, tag or layer in the target daemon.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { layout, tarBytes, type EntryLayout } from './helpers/crafted-tar.js';
import { assertFails, daemonState, listTree } from './helpers/outcome.js';

const exec = promisify(execFile);
const skip = missing(['dockerd', 'docker', 'busybox', 'mount', 'umount'], { root: true });

describe('bad input gets a clear error and loses nothing', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let imgs: TestImages;
  let work: string;
  let good: Buffer;
  let entries: EntryLayout[];
  let end: number;
  let oldApp: string;
  const mounts: string[] = [];

  /** A fresh empty directory per case, so that anything left behind shows. */
  const freshDir = async (name: string): Promise<string> => {
    const d = join(work, name);
    await mkdir(d);
    return d;
  };

  const entry = (pred: (e: EntryLayout) => boolean): EntryLayout => {
    const e = entries.find(pred);
    assert.ok(e, 'entry not found in the good bundle');
    return e;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-bad-input-'));
    [src, dst] = await Promise.all([startDockerd('bad-src'), startDockerd('bad-dst')]);
    imgs = await buildTestImages(src);
    const goodPath = join(work, 'good.ferry.tar');
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/tool:2', '-o', goodPath], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    good = await readFile(goodPath);
    ({ entries, end } = layout(good));
    // The target already holds another image under ferry-test/app:1: a failed load must leave that name alone.
    const old = join(work, 'old-app.tar');
    await writeFile(old, tarBytes([{ name: 'old.txt', data: Buffer.from('the old app\n') }]));
    oldApp = (await dst.docker(['import', old, 'ferry-test/app:1'])).trim();
    // A one-file image small enough for the full disk below.
    await src.docker(['import', old, 'ferry-bad/tiny:1']);
  });

  after(async () => {
    for (const m of mounts.reverse()) await exec('umount', [m]).catch(() => exec('umount', ['-l', m]).catch(() => undefined));
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('ferry pack', () => {
    it('an unknown image: exit 1, names the image and the daemon, writes nothing', async () => {
      const dir = await freshDir('pack-unknown');
      const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/nope:9', '-o', join(dir, 'b.ferry.tar')], { dockerHost: src.host });
      assertFails(run, 1, ['ferry-test/nope:9', src.host, /not in the Docker daemon/]);
      assert.deepEqual(await listTree(dir), []);
    });

    it('DOCKER_HOST naming a unix socket that does not exist: exit 5, names the socket', async () => {
      const dir = await freshDir('pack-nosock');
      const host = `unix://${join(work, 'no-such-dir', 'docker.sock')}`;
      const run = await ferry(['pack', 'ferry-test/app:1', '-o', join(dir, 'b.ferry.tar')], { dockerHost: host });
      assertFails(run, 5, [host, /cannot reach/]);
      assert.deepEqual(await listTree(dir), []);
    });

    it('DOCKER_HOST naming a closed tcp port: exit 5, names the address', async () => {
      const dir = await freshDir('pack-closed-port');
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      await new Promise<void>((r) => server.close(() => r()));
      const host = `tcp://127.0.0.1:${port}`;
      const run = await ferry(['pack', 'ferry-test/app:1', '-o', join(dir, 'b.ferry.tar')], { dockerHost: host });
      assertFails(run, 5, [host, /cannot reach/]);
      assert.deepEqual(await listTree(dir), []);
    });

    it('a DOCKER_HOST scheme ferry does not speak: exit 2, names it', async () => {
      const dir = await freshDir('pack-scheme');
      for (const host of ['ssh://user@example.invalid', 'npipe:////./pipe/docker_engine']) {
        const run = await ferry(['pack', 'ferry-test/app:1', '-o', join(dir, 'b.ferry.tar')], { dockerHost: host });
        assertFails(run, 2, [host, /unsupported DOCKER_HOST/]);
      }
      assert.deepEqual(await listTree(dir), []);
    });

    it('an output directory that does not exist: exit 1, names it, creates nothing', async () => {
      const dir = join(work, 'pack-no-such-dir');
      const run = await ferry(['pack', 'ferry-test/app:1', '-o', join(dir, 'b.ferry.tar')], { dockerHost: src.host });
      assertFails(run, 1, [dir, /does not exist/]);
      assert.equal(existsSync(dir), false);
    });

    it('an output directory on a read-only file system: exit 1, names it', async () => {
      const dir = await freshDir('pack-readonly');
      await exec('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]);
      mounts.push(dir);
      const run = await ferry(['pack', 'ferry-test/app:1', '-o', join(dir, 'b.ferry.tar')], { dockerHost: src.host });
      assertFails(run, 1, [dir, /read-only|not writable/]);
      assert.deepEqual(await listTree(dir), []);
    });

    it('a disk that fills up: exit 1, says no space and where, leaves the directory empty', async () => {
      const dir = await freshDir('pack-full');
      await exec('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
      mounts.push(dir);
      // The base layer is a busybox binary: about 1 MB compressed, four times what the disk holds.
      const out = join(dir, 'b.ferry.tar');
      const run = await ferry(['pack', 'ferry-test/base:1', '-o', out], { dockerHost: src.host });
      assertFails(run, 1, [/no space left/i, dir]);
      assert.deepEqual(await listTree(dir), [], 'no partial or temp file is left');
      // The failure gave back what it had written: the same disk still takes a bundle that fits.
      const fits = await ferry(['pack', 'ferry-bad/tiny:1', '-o', join(dir, 'tiny.ferry.tar')], { dockerHost: src.host });
      assert.equal(fits.code, 0, fits.stderr);
      assert.deepEqual(await listTree(dir), ['tiny.ferry.tar']);
    });

    it('bad usage: no images, a bad --level, a bad --compression: exit 2, names the option', async () => {
      const dir = await freshDir('pack-usage');
      const out = join(dir, 'b.ferry.tar');
      const cases: [string[], (string | RegExp)[]][] = [
        [['pack', '-o', out], [/no images named/]],
        [['pack', 'ferry-test/app:1', '-o', out, '--level', '99'], ['--level', '99', /out of range/]],
        [['pack', 'ferry-test/app:1', '-o', out, '--level', '0'], ['--level', /out of range/]],
        [['pack', 'ferry-test/app:1', '-o', out, '--level', 'abc'], ['--level']],
        [['pack', 'ferry-test/app:1', '-o', out, '--compression', 'gzip', '--level', '12'], ['--level', '12', 'gzip']],
        [['pack', 'ferry-test/app:1', '-o', out, '--compression', 'none', '--level', '3'], ['--level', 'none']],
        [['pack', 'ferry-test/app:1', '-o', out, '--compression', 'lz4'], ['compression', 'lz4']],
        [['pack', 'ferry-test/app:1'], [/output/]],
        [['pack', 'Not A Valid/Name', '-o', out], ['Not A Valid/Name', /invalid reference/]],
      ];
      const runs = await Promise.all(cases.map(([args]) => ferry(args, { dockerHost: src.host })));
      cases.forEach(([args, mentions], i) => assertFails(runs[i]!, 2, mentions, args.join(' ')));
      assert.deepEqual(await listTree(dir), []);
    });
  });

  /** refused runs verify and load on bytes and checks both fail with `mentions` and that the target did not change. */
  const refused = async (t: TestContext, name: string, bytes: Buffer, mentions: (string | RegExp)[], loadMentions = mentions): Promise<void> => {
    const dir = await freshDir(name);
    const file = join(dir, `${name}.ferry.tar`);
    await writeFile(file, bytes);
    const cwd = await freshDir(`${name}-cwd`);
    const state = await daemonState(dst);
    const [v, l] = await Promise.all([ferry(['verify', file], { cwd }), ferry(['load', file], { dockerHost: dst.host, cwd })]);
    for (const [what, r] of [['verify', v], ['load', l]] as const) t.diagnostic(`${what}: ${r.stderr.slice(r.stderr.search(/^ferry: /m)).split('\n').slice(0, 2).join(' | ')}`);
    assertFails(v, 3, mentions, `verify ${name}`);
    assertFails(l, 3, loadMentions, `load ${name}`);
    assert.deepEqual(await daemonState(dst), state, 'the target daemon has no new image, tag or layer');
    assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim(), oldApp, 'the old ferry-test/app:1 keeps its name');
    assert.deepEqual(await listTree(dir), [`${name}.ferry.tar`], 'nothing written beside the bundle');
    assert.deepEqual(await listTree(cwd), [], 'nothing written in the working directory');
  };

  describe('truncated bundles', () => {
    it('control: the good bundle verifies (the cases below fail only by what they change)', async () => {
      const dir = await freshDir('control');
      const file = join(dir, 'good.ferry.tar');
      await writeFile(file, good);
      const run = await ferry(['verify', file]);
      assert.equal(run.code, 0, run.stderr);
    });

    it('cut inside a layer blob: exit 3, names the blob', async (t) => {
      const big = entries.filter((e) => e.name.startsWith('blobs/')).sort((a, b) => b.size - a.size)[0]!;
      await refused(t, 'cut-in-blob', good.subarray(0, big.data + Math.floor(big.size / 2)), [big.name, /truncated/]);
    });

    it('cut inside ferry.json: exit 3, names ferry.json', async (t) => {
      const f = entry((e) => e.name === 'ferry.json');
      await refused(t, 'cut-in-ferry-json', good.subarray(0, f.data + 100), ['ferry.json', /truncated/]);
    });

    it('cut before the end-of-archive marker: exit 3, says where the bundle ends', async (t) => {
      await refused(t, 'cut-before-end', good.subarray(0, end), ['ferry.json', /end-of-archive|truncated/]);
    });

    it('cut inside a tar header: exit 3, names the last whole entry', async (t) => {
      const i = entries.findIndex((e) => e.name === 'index.json');
      await refused(t, 'cut-in-header', good.subarray(0, entries[i]!.header + 200), [entries[i - 1]!.name, /truncated/]);
    });

    it('cut where the blobs end and the indexes begin: exit 3, names the last whole entry', async (t) => {
      const i = entries.findIndex((e) => e.name === 'index.json');
      await refused(t, 'cut-after-blobs', good.subarray(0, entries[i]!.header), [entries[i - 1]!.name, /truncated/]);
    });
  });

  describe('corrupted bundles', () => {
    const flip = (at: number, mask = 0x01): Buffer => {
      const b = Buffer.from(good);
      b[at]! ^= mask;
      return b;
    };

    it('a flipped byte inside a layer blob: exit 3, names the blob', async (t) => {
      const big = entries.filter((e) => e.name.startsWith('blobs/')).sort((a, b) => b.size - a.size)[0]!;
      // load finds it only while streaming the layer to the daemon, which must then register nothing.
      await refused(t, 'flip-in-layer', flip(big.data + Math.floor(big.size / 2)), [big.name], [big.name, /load was stopped/]);
    });

    it('a flipped byte at the end of a small layer blob: exit 3, names the blob', async (t) => {
      const f = entry((x) => x.name === 'ferry.json');
      const index = JSON.parse(good.subarray(f.data, f.data + f.size).toString()) as { blobs: { digest: string; size: number; diffId?: string }[] };
      const small = index.blobs.filter((b) => b.diffId).sort((a, b) => a.size - b.size)[0]!;
      const e = entry((x) => x.name === `blobs/sha256/${small.digest.slice(7)}`);
      await refused(t, 'flip-end-small-layer', flip(e.data + e.size - 1), [e.name], [e.name, /load was stopped/]);
    });

    it('a flipped byte inside a config (still valid JSON): exit 3, names the config', async (t) => {
      const cfg = entry((e) => e.name === `blobs/sha256/${imgs.app.slice(7)}`);
      const at = good.indexOf('APP=1', cfg.data);
      assert.ok(at > cfg.data && at < cfg.data + cfg.size, 'the app config sets APP=1');
      await refused(t, 'flip-in-config', flip(at + 4), [cfg.name, /digest|does not match/]);
    });

    it('a flipped byte that breaks a config\'s JSON: exit 3, names the config', async (t) => {
      const cfg = entry((e) => e.name === `blobs/sha256/${imgs.app.slice(7)}`);
      await refused(t, 'flip-config-json', flip(cfg.data, 0x40), [cfg.name]);
    });

    it('a flipped byte in a tar header: exit 3, says where', async (t) => {
      const f = entry((e) => e.name === 'ferry.json');
      await refused(t, 'flip-in-header', flip(f.header + 2), [String(f.header), /checksum/]);
    });

    it('not a tar at all, and an empty file: exit 3, saying what it is', async (t) => {
      await refused(t, 'not-a-tar', Buffer.from('{"this is": "not a bundle"}\n'.repeat(40)), [/not a ferry bundle: it is a JSON document/]);
      await refused(t, 'not-a-tar-binary', Buffer.alloc(2048, 0xa5), [/not a ferry bundle: it is not a tar archive/]);
      await refused(t, 'empty', Buffer.alloc(0), [/is empty/]);
    });

    it('a bundle path that does not exist, is a directory or a device: exit 2, names the path', async () => {
      const path = join(work, 'no-such.ferry.tar');
      assertFails(await ferry(['verify', path]), 2, [path, /no such file/]);
      assertFails(await ferry(['load', path], { dockerHost: dst.host }), 2, [path, /no such file/]);
      assertFails(await ferry(['verify', work]), 2, [work, /is a directory/]);
      assertFails(await ferry(['verify', '/dev/zero']), 2, ['/dev/zero', /not a regular file/]);
    });
  });
});
