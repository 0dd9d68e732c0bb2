// Options that would do nothing are errors, and inputs are recognised for what they are (issue 13, points 1-3): a
// --retag rule that matches no image (load, push), pack --platform against an image of another platform (daemon and
// docker-save archive), a missing second bundle, a docker save archive, an inventory or a compressed bundle given
// where a bundle goes; and the docker habits that work: image ID prefixes, `load -i`, inspect of several bundles,
// a bare repository in --retag. Each runs the real CLI against one real dockerd (and a registry for push).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { missing } from './helpers/tools.js';
import { tarBytes } from './helpers/crafted-tar.js';
import { writeSaveArchive } from './helpers/save-archive.js';
import { assertFails, daemonState, listTree } from './helpers/outcome.js';

const exec = promisify(execFile);
const skip = missing(['dockerd', 'docker', 'busybox', 'docker-registry', 'zstd'], { root: true });

describe('no silent no-ops, and inputs named for what they are', { skip }, () => {
  let d: Dockerd;
  let reg: Registry;
  let imgs: TestImages;
  let work: string;
  /** ferry-test/app:1, ferry-test/app:latest (one image, two tags) and ferry-test/tool:2. */
  let good: string;
  let dirs = 0;
  const freshDir = async (): Promise<string> => {
    const dir = join(work, `case-${++dirs}`);
    await mkdir(dir);
    return dir;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-usage-'));
    [d, reg] = await Promise.all([startDockerd('usage'), startRegistry()]);
    imgs = await buildTestImages(d);
    good = join(work, 'good.ferry.tar');
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/app:latest', 'ferry-test/tool:2', '-o', good], { dockerHost: d.host });
    assert.equal(run.code, 0, run.stderr);
  });

  after(async () => {
    await Promise.all([d?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('--retag rules that rename nothing', () => {
    it('load: exit 2 before anything is loaded, naming the rule and the names it could match', async () => {
      const state = await daemonState(d);
      const run = await ferry(['load', good, '--retag', 'nosuch:1=web:1'], { dockerHost: d.host });
      assertFails(run, 2, ['--retag nosuch:1=web:1', /renames nothing/, 'ferry-test/app:1', 'ferry-test/app:latest', 'ferry-test/tool:2', /hint: .*nginx=web/]);
      // One good rule does not excuse an idle one.
      const mixed = await ferry(['load', good, '--retag', 'ferry-test/tool:2=web:2', '--retag', 'docker.io/nosuch/=x/'], { dockerHost: d.host });
      assertFails(mixed, 2, ['--retag docker.io/nosuch/=x/', /renames nothing/]);
      assert.doesNotMatch(mixed.stderr, /tool:2=web:2 renames nothing/);
      assert.deepEqual(await daemonState(d), state, 'no image, tag or layer changed');
    });

    it('push (and push --dry-run): exit 2 before anything is pushed', async () => {
      for (const extra of [[], ['--dry-run']]) {
        const run = await ferry(['push', good, '--to', `${reg.host}/mirror`, '--retag', 'ferry-test/nosuch=x', ...extra]);
        assertFails(run, 2, ['--retag ferry-test/nosuch=x', /renames nothing/, 'ferry-test/tool:2'], extra.join(' '));
      }
      const catalog = (await (await fetch(`http://${reg.host}/v2/_catalog`)).json()) as { repositories: string[] };
      assert.deepEqual(catalog.repositories, [], 'the registry holds nothing');
    });

    it('a bare repository renames every tag of it, keeping the tag (as `docker tag` users mean demo=web)', async () => {
      const run = await ferry(['load', good, '--retag', 'ferry-test/app=ferry-web/app'], { dockerHost: d.host });
      assert.equal(run.code, 0, run.stderr);
      for (const tag of ['ferry-web/app:1', 'ferry-web/app:latest']) {
        assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', tag])).trim(), imgs.app, tag);
      }
      assert.match(run.stderr, /Loaded sha256:\S+ ferry-web\/app:1, ferry-web\/app:latest/);
    });
  });

  describe('pack --platform against an image of another platform', () => {
    let own: string;
    let other: string;
    before(async () => {
      own = (await d.docker(['image', 'inspect', '--format', '{{.Os}}/{{.Architecture}}', 'ferry-test/app:1'])).trim();
      other = own === 'linux/arm64' ? 'linux/amd64' : 'linux/arm64';
    });

    it('from the daemon: exit 1, naming the image and its platform, writing nothing', async () => {
      const dir = await freshDir();
      const run = await ferry(['pack', 'ferry-test/app:1', '--platform', other, '-o', join(dir, 'x.ferry.tar')], { dockerHost: d.host });
      assertFails(run, 1, ['ferry-test/app:1', `is a ${own} image, not ${other}`, /hint: /]);
      assert.deepEqual(await listTree(dir), []);
    });

    it('from a docker-save archive: the same refusal; its own platform is taken', async () => {
      const dir = await freshDir();
      const archive = join(dir, 'saved.tar');
      await writeSaveArchive(archive, [{ tag: 'ferry-arch/one:1', layers: [{ 'a.txt': 'a\n' }], arch: 'amd64' }]);
      const refused = await ferry(['pack', `docker-archive:${archive}`, '--platform', 'linux/arm64', '-o', join(dir, 'x.ferry.tar')]);
      assertFails(refused, 1, [`docker-archive:${archive}`, 'ferry-arch/one:1', 'is a linux/amd64 image, not linux/arm64']);
      assert.deepEqual(await listTree(dir), ['saved.tar']);
      const taken = await ferry(['pack', `docker-archive:${archive}`, '--platform', 'linux/amd64', '-o', join(dir, 'x.ferry.tar'), '--json']);
      assert.equal(taken.code, 0, taken.stderr);
    });
  });

  describe('image ID prefixes, load -i, a missing second bundle, inspect of several bundles', () => {
    it('pack takes an image ID prefix as short as docker does; the image travels untagged', async () => {
      const dir = await freshDir();
      const out = join(dir, 'byid.ferry.tar');
      const run = await ferry(['pack', imgs.tool.slice(7, 13), '-o', out, '--json'], { dockerHost: d.host });
      assert.equal(run.code, 0, run.stderr);
      const images = json<{ images: { imageId: string; refs: string[] }[] }>(run).images;
      assert.deepEqual(images.map((i) => [i.imageId, i.refs]), [[imgs.tool, []]]);
    });

    it('load -i BUNDLE, as docker load takes it, with image names after it', async () => {
      const run = await ferry(['load', '-i', good, 'ferry-test/tool:2', '--retag', 'ferry-test/tool:2=ferry-via-i/tool:2'], { dockerHost: d.host });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-via-i/tool:2'])).trim(), imgs.tool);
      assertFails(await ferry(['load', '-i', join(work, 'nope.ferry.tar')], { dockerHost: d.host }), 2, [join(work, 'nope.ferry.tar'), /no such file/]);
    });

    it('load a.ferry.tar b.ferry.tar with b missing says b is missing (exit 2), not that no image is called so', async () => {
      const state = await daemonState(d);
      for (const b of ['b.ferry.tar', join(work, 'b.ferry.tar'), './b.tar']) {
        const run = await ferry(['load', good, b], { dockerHost: d.host, cwd: work });
        assertFails(run, 2, [`cannot open bundle ${b}: no such file`, /hint: /], b);
      }
      assert.deepEqual(await daemonState(d), state);
    });

    it('inspect takes several bundles: one after another, and a JSON array', async () => {
      const dir = await freshDir();
      const other = join(dir, 'tool.ferry.tar');
      assert.equal((await ferry(['pack', 'ferry-test/tool:2', '-o', other], { dockerHost: d.host })).code, 0);
      const text = await ferry(['inspect', good, other]);
      assert.equal(text.code, 0, text.stderr);
      assert.ok(text.stdout.indexOf(`${good}:`) >= 0 && text.stdout.indexOf(`${other}:`) > text.stdout.indexOf(`${good}:`), text.stdout);
      const views = json<{ images: { refs: string[] }[] }[]>(await ferry(['inspect', good, other, '--json']));
      assert.deepEqual(
        views.map((v) => v.images.flatMap((i) => i.refs).sort()),
        [['docker.io/ferry-test/app:1', 'docker.io/ferry-test/app:latest', 'docker.io/ferry-test/tool:2'], ['docker.io/ferry-test/tool:2']],
      );
      // One bundle keeps its single object.
      assert.ok(!Array.isArray(json(await ferry(['inspect', other, '--json']))));
    });
  });

  describe('a file that is not a bundle is named for what it is, with what to do (load, verify, inspect)', () => {
    const everyCommand = async (file: string, mentions: (string | RegExp)[]): Promise<void> => {
      const state = await daemonState(d);
      for (const args of [['load', file], ['verify', file], ['inspect', file]]) {
        assertFails(await ferry(args, { dockerHost: d.host }), 3, [file, ...mentions], args[0]);
      }
      assert.deepEqual(await daemonState(d), state);
    };

    it('a docker save archive: says so, and how to pack or docker load it', async () => {
      const dir = await freshDir();
      const saved = join(dir, 'saved.tar');
      await d.docker(['save', '-o', saved, 'ferry-test/tool:2']);
      await everyCommand(saved, [/is not a ferry bundle: it is a `docker save` archive/, `ferry pack docker-archive:${saved}`, `docker load -i ${saved}`]);
    });

    it('an OCI archive: says so, and how to pack it', async () => {
      const dir = await freshDir();
      const oci = join(dir, 'oci.tar');
      await writeFile(oci, tarBytes([{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }, { name: 'index.json', data: Buffer.from('{"schemaVersion":2,"manifests":[]}') }]));
      await everyCommand(oci, [/an OCI image layout archive/, `ferry pack oci-archive:${oci}`]);
    });

    it('an inventory, a JSON document and a binary file: says what each is, not "truncated at offset 0"', async () => {
      const dir = await freshDir();
      const inventory = join(dir, 'site.inventory.json');
      assert.equal((await ferry(['inventory', '-o', inventory], { dockerHost: d.host })).code, 0);
      await everyCommand(inventory, [/it is a ferry inventory/, `ferry pack --have ${inventory}`]);
      const doc = join(dir, 'notes.json');
      await writeFile(doc, '  {"this is": "not a bundle"}\n');
      await everyCommand(doc, [/it is a JSON document/]);
      const binary = join(dir, 'random.bin');
      await writeFile(binary, Buffer.alloc(4096, 0x5a));
      await everyCommand(binary, [/it is not a tar archive/]);
      for (const r of [await ferry(['verify', doc]), await ferry(['verify', binary])]) assert.doesNotMatch(r.stderr, /offset 0|truncated/);
    });

    it('a zstd-compressed bundle (as k3s takes it): says so, and how to decompress it', async () => {
      const dir = await freshDir();
      const zst = join(dir, 'good.ferry.tar.zst');
      await exec('zstd', ['-q', good, '-o', zst]);
      await everyCommand(zst, [/it is zstd-compressed/, `zstd -d ${zst}`]);
    });

    it('control: a real bundle still opens, and one cut short is still reported as truncated', async () => {
      assert.equal((await ferry(['inspect', good])).code, 0);
      const dir = await freshDir();
      const cut = join(dir, 'cut.ferry.tar');
      await writeFile(cut, (await readFile(good)).subarray(0, 3000));
      assertFails(await ferry(['verify', cut]), 3, [/truncated/]);
    });
  });
});
