// Hostile bundles: a good bundle made by ferry, rewritten to climb out of the destination, link to system files,
// carry devices, override entries, lie about sizes and digests, expand without end, claim a version from the future
// or name images with references that do not parse. `ferry verify` and `ferry load` must both refuse each one with
// exit 3 and a message naming the entry; the target daemon gains no image, tag or layer, and no file appears
// anywhere (the canary paths the entries aim at, the bundle's directory, the working directory).
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTestImages, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { paxRecords, tarBytes, type RawEntry } from './helpers/crafted-tar.js';
import type { Digest } from '../src/image/digest.js';
import { blobName, BundleModel, gzipBomb, sha256, zstdHugeWindow, zstdRleBomb } from './helpers/bundle-model.js';
import { assertFails, daemonState, ferryMeasured, listTree } from './helpers/outcome.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });

const CANARY = `ferry-hostile-canary-${process.pid}`;
const canaryPath = (suffix: string): string => join(tmpdir(), `${CANARY}-${suffix}`);
const DEEP = '../'.repeat(12);
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

describe('hostile bundles are refused by name and change nothing', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let work: string;
  let model: BundleModel;
  let oldApp: string;
  /** The app image's layers: 0 the shared busybox base (~1 MB compressed), 1 app.txt, 2 data.bin. */
  let appRef: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-hostile-'));
    [src, dst] = await Promise.all([startDockerd('hostile-src'), startDockerd('hostile-dst')]);
    await buildTestImages(src);
    const good = join(work, 'good.ferry.tar');
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/tool:2', '-o', good], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    model = await BundleModel.load(good);
    appRef = 'docker.io/ferry-test/app:1';
    // The target already has a ferry-test/app:1 (another image): a refused load must leave that name where it is.
    const old = join(work, 'old-app.tar');
    await writeFile(old, tarBytes([{ name: 'old.txt', data: Buffer.from('the old app\n') }]));
    oldApp = (await dst.docker(['import', old, 'ferry-test/app:1'])).trim();
    await dst.docker(['tag', oldApp, 'victim:latest']);
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    for (const f of await readdir(tmpdir())) if (f.startsWith(CANARY)) await rm(join(tmpdir(), f), { recursive: true, force: true });
  });

  const canaries = async (): Promise<string[]> => (await readdir(tmpdir())).filter((f) => f.startsWith(CANARY));

  interface Expect {
    /** What verify's message must say (and load's too, unless `load` is given). */
    mentions: (string | RegExp)[];
    load?: (string | RegExp)[];
    /** Bound the run: wall time and peak memory of each ferry process. */
    bound?: { ms: number; rssMiB: number };
  }

  /** refused writes the bundle, runs verify and load on it, and checks both refusals and that nothing changed. */
  const refused = async (t: TestContext, name: string, bytes: Buffer, expect: Expect): Promise<void> => {
    const dir = join(work, name);
    const cwd = join(work, `${name}-cwd`);
    await mkdir(dir);
    await mkdir(cwd);
    const file = join(dir, 'hostile.ferry.tar');
    await writeFile(file, bytes);
    const state = await daemonState(dst);
    const [v, l] = await Promise.all([
      ferryMeasured(['verify', file], { cwd, timeoutMs: 60_000 }),
      ferryMeasured(['load', file], { dockerHost: dst.host, cwd, timeoutMs: 60_000 }),
    ]);
    t.diagnostic(`verify: ${v.stderr.slice(v.stderr.search(/^ferry: /m)).split('\n').slice(0, 3).join(' | ')}`);
    t.diagnostic(`load: ${l.stderr.slice(l.stderr.search(/^ferry: /m)).split('\n')[0]}`);
    assertFails(v, 3, expect.mentions, `verify ${name}`);
    assertFails(l, 3, expect.load ?? expect.mentions, `load ${name}`);
    if (expect.bound) {
      for (const [what, r] of [['verify', v], ['load', l]] as const) {
        t.diagnostic(`${what}: ${r.ms} ms, peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB`);
        assert.ok(r.ms < expect.bound.ms, `${what} took ${r.ms} ms, more than ${expect.bound.ms}`);
        assert.ok(r.peakRssKiB > 0 && r.peakRssKiB < expect.bound.rssMiB * 1024, `${what} peaked at ${r.peakRssKiB} KiB`);
      }
    }
    assert.deepEqual(await daemonState(dst), state, 'the target daemon has no new image, tag or layer');
    assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim(), oldApp, 'ferry-test/app:1 still names the old image');
    assert.deepEqual(await canaries(), [], 'no file appeared where the bundle aimed');
    assert.deepEqual(await listTree(dir), ['hostile.ferry.tar'], 'nothing written beside the bundle');
    assert.deepEqual(await listTree(cwd), [], 'nothing written in the working directory');
  };

  /** entries of the good bundle, changed by `edit`. */
  const edited = (edit: (entries: RawEntry[]) => RawEntry[], m: BundleModel = model): Buffer => tarBytes(edit(m.entries()));
  const insertAfterLayout = (...extra: RawEntry[]) => (es: RawEntry[]): RawEntry[] => [es[0]!, ...extra, ...es.slice(1)];
  const replaceEntry = (name: string, by: (e: RawEntry) => RawEntry) => (es: RawEntry[]): RawEntry[] => es.map((e) => (e.name === name ? by(e) : e));

  it('control: the bundle rebuilt by the test helper, unchanged, verifies (each case below fails only by its change)', async () => {
    const file = join(work, 'rebuilt.ferry.tar');
    await writeFile(file, model.bytes());
    const run = await ferry(['verify', file]);
    assert.equal(run.code, 0, run.stderr);
    // A consistent rewrite that tells no lie also verifies: the lies below are what gets caught.
    const m = model.clone();
    const cfg = m.config(appRef);
    (cfg as unknown as { config: { Env: string[] } }).config.Env.push('HARMLESS=1');
    m.setConfig(appRef, Buffer.from(JSON.stringify(cfg)));
    await writeFile(file, m.bytes());
    const again = await ferry(['verify', file]);
    assert.equal(again.code, 0, again.stderr);
  });

  describe('names that leave the bundle', () => {
    it('../ (path traversal)', async (t) => {
      const name = `${DEEP}${tmpdir().slice(1)}/${CANARY}-dotdot`;
      await refused(t, 'dotdot', edited(insertAfterLayout({ name, data: Buffer.from('pwned') })), { mentions: [name, /climbs out/] });
    });

    it('blobs/../../x (traversal inside an allowed directory)', async (t) => {
      const name = `blobs/${DEEP}${tmpdir().slice(1)}/${CANARY}-blobs`;
      await refused(t, 'blobs-dotdot', edited(insertAfterLayout({ name, data: Buffer.from('pwned') })), { mentions: [name, /climbs out/] });
    });

    it('an absolute path', async (t) => {
      const name = canaryPath('absolute');
      await refused(t, 'absolute', edited(insertAfterLayout({ name, data: Buffer.from('pwned') })), { mentions: [name, /absolute/] });
    });

    it('a pax header that renames a harmless-looking entry to ../', async (t) => {
      const path = `${DEEP}${tmpdir().slice(1)}/${CANARY}-pax`;
      const pax: RawEntry = { name: 'PaxHeaders/x', type: 'x', data: paxRecords({ path }) };
      const bytes = edited(insertAfterLayout(pax, { name: `blobs/sha256/${'0'.repeat(64)}`, data: Buffer.from('pwned') }));
      await refused(t, 'pax-path', bytes, { mentions: [path, /climbs out/] });
    });

    it('a name with terminal control characters is shown escaped', async (t) => {
      const name = 'blobs/sha256/\u001b[2J\u001b]0;owned\u0007';
      await refused(t, 'control-chars', edited(insertAfterLayout({ name, data: Buffer.from('x') })), { mentions: [/\\x1b\[2J/] });
    });
  });

  describe('links, devices and other non-files', () => {
    const layerName = (): string => blobName(model.image(appRef).layers[0]!.digest);
    const cases: [string, () => RawEntry, RegExp][] = [
      ['a layer blob as a symlink to /etc/passwd', () => ({ name: layerName(), type: '2', linkname: '/etc/passwd' }), /symbolic link to "\/etc\/passwd"/],
      ['a layer blob as a hard link to /etc/passwd', () => ({ name: layerName(), type: '1', linkname: '/etc/passwd' }), /hard link to "\/etc\/passwd"/],
      ['a layer blob as a hard link to another blob', () => ({ name: layerName(), type: '1', linkname: blobName(model.image(appRef).layers[1]!.digest) }), /hard link/],
      ['oci-layout as a symlink out of the bundle', () => ({ name: 'oci-layout', type: '2', linkname: canaryPath('link') }), /symbolic link/],
      ['a layer blob as a character device (/dev/null)', () => ({ name: layerName(), type: '3', devmajor: 1, devminor: 3 }), /character device/],
      ['a layer blob as a block device', () => ({ name: layerName(), type: '4', devmajor: 7, devminor: 0 }), /block device/],
      ['a layer blob as a FIFO', () => ({ name: layerName(), type: '6' }), /FIFO/],
      ['a layer blob as a directory', () => ({ name: layerName(), type: '5' }), /directory/],
      ['a GNU long-name header', () => ({ name: '././@LongLink', type: 'L', data: Buffer.from(`${DEEP}${CANARY}\0`) }), /long-name/],
    ];
    for (const [title, entry, problem] of cases) {
      it(title, async (t) => {
        const e = entry();
        const bytes = e.name === layerName() || e.name === 'oci-layout' ? edited(replaceEntry(e.name, () => e)) : edited(insertAfterLayout(e));
        await refused(t, title.replace(/[^a-z0-9]+/gi, '-'), bytes, { mentions: [e.name, problem] });
      });
    }
  });

  describe('entries that override earlier ones', () => {
    it('a second ferry.json that renames the images to a tag the target already has', async (t) => {
      const lie = structuredClone(model.index);
      lie.images[0]!.refs = ['docker.io/library/victim:latest'];
      const bytes = edited((es) => [...es, { name: 'ferry.json', data: Buffer.from(JSON.stringify(lie)) }]);
      await refused(t, 'dup-ferry-json', bytes, { mentions: ['ferry.json', /appears twice/] });
    });

    it('a second copy of a layer blob with other content', async (t) => {
      const name = blobName(model.image(appRef).layers[2]!.digest);
      const bytes = edited((es) => [...es.slice(0, -3), { name, data: Buffer.from('replacement') }, ...es.slice(-3)]);
      await refused(t, 'dup-blob', bytes, { mentions: [name, /appears twice/] });
    });

    it('./ferry.json after ferry.json (the same name spelled differently)', async (t) => {
      const bytes = edited((es) => [...es, { name: './ferry.json', data: es.at(-1)!.data! }]);
      await refused(t, 'dup-dot-slash', bytes, { mentions: ['ferry.json', /appears twice/] });
    });
  });

  describe('lies in ferry.json and the indexes', () => {
    it('a blob size that differs from the entry', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const lie = structuredClone(m.index);
      lie.blobs.find((b) => b.digest === l.digest)!.size = l.size + 1000;
      await refused(t, 'lie-size', m.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: [blobName(l.digest), new RegExp(`ferry.json says ${l.size + 1000}`)] });
    });

    it('a blob digest that no entry has', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const fake = sha256('not this layer');
      const lie = JSON.parse(JSON.stringify(m.index).replaceAll(l.digest, fake));
      await refused(t, 'lie-digest-missing', m.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: [blobName(fake), /not in the bundle/] });
    });

    it('a layer stored under a digest that is not its own, every index agreeing', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 2);
      const fake = sha256('the name it claims');
      m.replaceLayer(l.digest, m.blobs.get(l.digest)!, { storeAs: fake });
      await refused(t, 'lie-digest-consistent', m.bytes(), {
        mentions: [blobName(fake), /digest/],
        load: [blobName(fake), /digest/, /load was stopped/],
      });
    });

    it('a diffID that the layer does not have, config and indexes agreeing', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 2);
      m.setDiffId(l.digest, sha256('a layer that does not exist'));
      await refused(t, 'lie-diffid-consistent', m.bytes(), {
        mentions: [blobName(l.digest), /diffID/],
        load: [blobName(l.digest), /load was stopped/],
      });
    });

    it('a diffID that differs between ferry.json\'s blob and image records', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const lie = structuredClone(m.index);
      lie.blobs.find((b) => b.digest === l.digest)!.diffId = sha256('elsewhere') as never;
      await refused(t, 'lie-diffid-blob', m.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: [blobName(l.digest), /diffID/] });
    });

    it('an uncompressedSize smaller than the layer', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 2);
      m.replaceLayer(l.digest, m.blobs.get(l.digest)!, { uncompressedSize: l.uncompressedSize - 1000 });
      await refused(t, 'lie-usize-small', m.bytes(), {
        mentions: [blobName(l.digest), /more than its declared/],
        load: [blobName(l.digest), /more than its declared/, /load was stopped/],
      });
    });

    it('an uncompressedSize larger than the layer', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 2);
      m.replaceLayer(l.digest, m.blobs.get(l.digest)!, { uncompressedSize: l.uncompressedSize + 4096 });
      await refused(t, 'lie-usize-large', m.bytes(), {
        mentions: [blobName(l.digest), new RegExp(`${l.uncompressedSize}`)],
        load: [blobName(l.digest), /shorter/, /load was stopped/],
      });
    });

    it('a config whose content does not match its digest (same size, one setting changed)', async (t) => {
      const m = model.clone();
      const digest = m.image(appRef).config.digest;
      const bytes = m.blobs.get(digest)!;
      const at = bytes.indexOf('APP=1');
      assert.ok(at > 0);
      const changed = Buffer.from(bytes);
      changed.write('APP=2', at);
      m.blobs.set(digest, changed);
      await refused(t, 'config-digest', m.bytes(), { mentions: [blobName(digest), /digest/] });
    });

    it('a tar header whose size swallows the next entry whole (a valid tar hiding an entry)', async (t) => {
      const name = blobName(model.image(appRef).layers[1]!.digest);
      const pad = (n: number): number => Math.ceil(n / 512) * 512;
      const bytes = edited((es) => {
        const i = es.findIndex((e) => e.name === name);
        const hidden = es[i + 1]!;
        return es.map((e, k) => (k === i ? { ...e, size: pad(e.data!.length) + 512 + pad(hidden.data!.length) } : e));
      });
      await refused(t, 'header-size', bytes, { mentions: [name, /ferry.json says/] });
    });

    it('an imageId that is not the config digest', async (t) => {
      const lie = structuredClone(model.index);
      lie.images[0]!.imageId = lie.images[1]!.imageId;
      await refused(t, 'lie-image-id', model.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: ['ferry.json', /imageId/] });
    });
  });

  describe('decompression bombs', () => {
    it('a zstd blob of 512 KiB that expands to 16 GiB, ferry.json claiming 2.5 kB: stopped early, bounded', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const bomb = zstdRleBomb(16 * 2 ** 30);
      assert.ok(bomb.length < 600 * 1024);
      const digest = m.replaceLayer(l.digest, bomb, { uncompressedSize: l.uncompressedSize });
      await refused(t, 'zstd-bomb', m.bytes(), {
        mentions: [blobName(digest), /more than its declared/],
        load: [blobName(digest), /more than its declared/, /load was stopped/],
        // Hashing 16 GiB alone takes over 10 s here; stopping at the declared size takes well under one.
        bound: { ms: 8000, rssMiB: 400 },
      });
    });

    it('a zstd frame that asks for a 2 GiB window', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const digest = m.replaceLayer(l.digest, zstdHugeWindow(), { uncompressedSize: l.uncompressedSize });
      await refused(t, 'zstd-window', m.bytes(), {
        mentions: [blobName(digest), /zstd|memory/i],
        bound: { ms: 8000, rssMiB: 400 },
      });
    });

    it('a gzip blob of 2 MB that expands to 2 GiB, ferry.json claiming 2.5 kB: stopped early, bounded', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const digest = m.replaceLayer(l.digest, gzipBomb(32), { uncompressedSize: l.uncompressedSize, mediaType: OCI_LAYER_GZIP });
      await refused(t, 'gzip-bomb', m.bytes(), {
        mentions: [blobName(digest), /more than its declared/],
        load: [blobName(digest), /more than its declared/, /load was stopped/],
        bound: { ms: 8000, rssMiB: 400 },
      });
    });
  });

  describe('versions and references', () => {
    const ferryJson = (edit: (doc: Record<string, unknown>) => void): Buffer => {
      const doc = structuredClone(model.index) as unknown as Record<string, unknown>;
      edit(doc);
      return model.bytes({ ferryJson: Buffer.from(JSON.stringify(doc)) });
    };

    it('ferry.json of version 2', async (t) => {
      await refused(t, 'version-2', ferryJson((d) => void (d.version = 2)), { mentions: ['ferry.json', /version 2 is not one this ferry reads/] });
    });

    it('ferry.json of a v2 media type and version 2', async (t) => {
      const bytes = ferryJson((d) => {
        d.version = 2;
        d.mediaType = 'application/vnd.ferry.bundle.v2+json';
        d.chunks = [];
      });
      await refused(t, 'version-2-media-type', bytes, { mentions: ['ferry.json', /version 2 is not one this ferry reads/] });
    });

    it('ferry.json that is not JSON, and a bundle without one', async (t) => {
      await refused(t, 'ferry-json-garbage', model.bytes({ ferryJson: Buffer.from('{"mediaType": "application/vnd.ferry.bundle.v1+json", "version": 1,') }), { mentions: ['ferry.json', /not valid JSON/] });
      await refused(t, 'ferry-json-missing', edited((es) => es.filter((e) => e.name !== 'ferry.json')), { mentions: [/no ferry.json/] });
    });

    it('a reference in ferry.json that is a path', async (t) => {
      const bytes = ferryJson((d) => void ((d.images as { refs: string[] }[])[0]!.refs = ['../../../etc/passwd']));
      await refused(t, 'ref-path', bytes, { mentions: ['ferry.json', /schema/, '../../../etc/passwd'] });
    });

    it('a reference in ferry.json that the schema refuses', async (t) => {
      const bytes = ferryJson((d) => void ((d.images as { refs: string[] }[])[0]!.refs = ['docker.io/Ferry-Test/App:1']));
      await refused(t, 'ref-schema', bytes, { mentions: ['ferry.json', /schema/, /refs/] });
    });

    it('a reference in ferry.json with a malformed repository component', async (t) => {
      const bad = 'docker.io/ferry-test/app..x:1';
      const bytes = ferryJson((d) => void ((d.images as { refs: string[] }[])[0]!.refs = [bad]));
      await refused(t, 'ref-unparsable', bytes, { mentions: ['ferry.json', /schema/, bad] });
    });

    it('index.json naming an image by a reference ferry.json does not list', async (t) => {
      const index = JSON.parse(model.entries().find((e) => e.name === 'index.json')!.data!.toString());
      const extra = structuredClone(index.manifests[0]);
      extra.annotations = { 'io.containerd.image.name': 'docker.io/library/victim:latest', 'org.opencontainers.image.ref.name': 'docker.io/library/victim:latest' };
      index.manifests.push(extra);
      await refused(t, 'index-extra-ref', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', 'docker.io/library/victim:latest'] });
    });

    it('index.json naming an image by something that is not a reference', async (t) => {
      const index = JSON.parse(model.entries().find((e) => e.name === 'index.json')!.data!.toString());
      index.manifests[0].annotations['org.opencontainers.image.ref.name'] = '../../../../etc/passwd';
      await refused(t, 'index-bad-ref', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', '../../../../etc/passwd'] });
    });

    it('index.json without a manifests list', async (t) => {
      await refused(t, 'index-no-manifests', model.bytes({ indexJson: Buffer.from('{"schemaVersion":2,"manifests":{}}') }), { mentions: ['index.json', /manifests/] });
    });

    it('manifest.json with a tag ferry.json does not list', async (t) => {
      const manifest = JSON.parse(model.entries().find((e) => e.name === 'manifest.json')!.data!.toString());
      manifest[0].RepoTags.push('victim:latest');
      await refused(t, 'manifest-extra-tag', model.bytes({ manifestJson: Buffer.from(JSON.stringify(manifest)) }), { mentions: ['manifest.json', /RepoTags/] });
    });
  });

  describe('multi-platform indexes', () => {
    const MULTI = 'docker.io/ferry-test/multi:1';
    /** indexed wraps the app image in a one-platform OCI index named MULTI; `edit` may change its body first. */
    const indexed = (edit: (body: { manifests: { digest: string; size: number }[] }) => void = () => undefined): BundleModel => {
      const m = model.clone();
      const app = m.image(appRef);
      const body = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: app.manifest.mediaType, digest: app.manifest.digest, size: app.manifest.size, platform: app.platform }] };
      edit(body);
      const bytes = Buffer.from(JSON.stringify(body));
      const digest = sha256(bytes) as Digest;
      m.blobs.set(digest, bytes);
      m.index.blobs.push({ digest, size: bytes.length, mediaType: body.mediaType });
      m.index.indexes = [{ refs: [MULTI], mediaType: body.mediaType, digest, size: bytes.length, images: [app.manifest.digest], dockerDefault: app.manifest.digest }];
      return m;
    };

    it('control: a consistent index verifies, and loads as its image under the index name', async () => {
      const file = join(work, 'index-control.ferry.tar');
      await writeFile(file, indexed().bytes());
      const run = await ferry(['verify', file]);
      assert.equal(run.code, 0, run.stderr);
      const load = await ferry(['load', file, MULTI], { dockerHost: dst.host });
      assert.equal(load.code, 0, load.stderr);
      assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/multi:1'])).trim(), model.image(appRef).imageId);
    });

    it('an index that lists a manifest the bundle does not hold', async (t) => {
      const m = indexed((body) => void body.manifests.push({ ...body.manifests[0]!, digest: `sha256:${'e'.repeat(64)}` }));
      await refused(t, 'index-foreign-manifest', m.bytes(), { mentions: [/lists other manifests than ferry.json says/] });
    });

    it('an index whose docker default is not one of its images (plain docker load would tag another image)', async (t) => {
      const m = indexed();
      m.index.indexes![0]!.dockerDefault = m.image('docker.io/ferry-test/tool:2').manifest.digest;
      await refused(t, 'index-default', m.bytes(), { mentions: ['ferry.json', /dockerDefault is not one of its images/] });
    });

    it('index.json naming the index by a reference ferry.json does not give it', async (t) => {
      const m = indexed();
      const index = JSON.parse(m.entries().find((e) => e.name === 'index.json')!.data!.toString()) as { manifests: { annotations?: Record<string, string> }[] };
      const named = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === MULTI)!;
      named.annotations = { 'io.containerd.image.name': 'docker.io/library/victim:latest', 'org.opencontainers.image.ref.name': 'docker.io/library/victim:latest' };
      await refused(t, 'index-renamed', m.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', 'docker.io/library/victim:latest'] });
    });
  });

  it('after all of the above, the good bundle still loads into the same target', async () => {
    const file = join(work, 'good-again.ferry.tar');
    await writeFile(file, model.bytes());
    const run = await ferry(['load', file], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    const id = (await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim();
    assert.equal(id, model.image(appRef).imageId);
  });
});
