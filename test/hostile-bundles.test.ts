// Hostile bundles: a good bundle made by ferry, rewritten to climb out of the destination, link to system files or
// to nothing, carry devices, override entries, lie about sizes and digests (blobs, diffIDs, configs, indexes, thin
// bundles' relied-on layers), name blobs by odd digests, expand without end, hold hundreds of thousands of entries
// or JSON nested or sized to exhaust the reader, stop short at every structural point, claim a version from the
// future or name images with references that do not parse. `ferry verify` and `ferry load` must both refuse each
// one with exit 3 and a message naming the entry, no stack trace, in bounded time and memory; the target daemon
// gains no image, tag or layer, and no file appears anywhere (the canary paths the entries aim at, any
// /tmp/ferry-escape-*, the bundle's directory, the working directory). Where containerd can run, `ferry load
// --containerd` is refused the same way and leaves its namespace empty: no image, blob, snapshot or lease.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerdMissing, holdings, startContainerd, type Containerd } from './helpers/containerd.js';
import { build, buildTestImages, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { BLOCK, emptyEntries, layout, paxRecords, tarBytes, type RawEntry } from './helpers/crafted-tar.js';
import type { Digest } from '../src/image/digest.js';
import { blobName, BundleModel, gzipBomb, sha256, zstdHugeWindow, zstdRleBomb } from './helpers/bundle-model.js';
import { assertFails, daemonState, ferryMeasured, listTree } from './helpers/outcome.js';
import { BundleReader } from '../src/bundle/reader.js';
import { FerryError } from '../src/ui/errors.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });

/** Every path a hostile entry aims at starts so; any /tmp/ferry-escape-* at all means something got out. */
const CANARY = `ferry-escape-${process.pid}`;
const canaryPath = (suffix: string): string => join(tmpdir(), `${CANARY}-${suffix}`);
const DEEP = '../'.repeat(12);
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** pool runs jobs, `width` at a time. */
async function pool(jobs: (() => Promise<void>)[], width: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await jobs[next++]!();
  }));
}

describe('hostile bundles are refused by name and change nothing', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  /** A containerd target beside the daemon, where one can run here; each case loads into its own namespace. */
  let ctd: Containerd | undefined;
  let work: string;
  let model: BundleModel;
  /** A thin bundle of ferry-test/app:2 (app:1 plus one layer), packed --since the good bundle: it relies on app:1's layers. */
  let thin: BundleModel;
  let oldApp: string;
  /** The app image's layers: 0 the shared busybox base (~1 MB compressed), 1 app.txt, 2 data.bin. */
  let appRef: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-hostile-'));
    [src, dst, ctd] = await Promise.all([startDockerd('hostile-src'), startDockerd('hostile-dst'), containerdMissing() ? undefined : startContainerd('hostile')]);
    await buildTestImages(src);
    const good = join(work, 'good.ferry.tar');
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/tool:2', '-o', good], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    model = await BundleModel.load(good);
    appRef = 'docker.io/ferry-test/app:1';
    await build(src, 'ferry-test/app:2', 'FROM ferry-test/app:1\nCOPY more.txt /srv/more.txt\n', { 'more.txt': 'more\n' });
    const thinPath = join(work, 'thin.ferry.tar');
    const packed = await ferry(['pack', 'ferry-test/app:2', '--since', good, '-o', thinPath], { dockerHost: src.host, env: { FERRY_HOME: join(work, 'ferry-home') } });
    assert.equal(packed.code, 0, packed.stderr);
    thin = await BundleModel.load(thinPath);
    assert.equal(thin.index.reliesOn.length, 3, 'the thin bundle relies on app:1\'s three layers');
    // The target already has a ferry-test/app:1 (another image): a refused load must leave that name where it is.
    const old = join(work, 'old-app.tar');
    await writeFile(old, tarBytes([{ name: 'old.txt', data: Buffer.from('the old app\n') }]));
    oldApp = (await dst.docker(['import', old, 'ferry-test/app:1'])).trim();
    await dst.docker(['tag', oldApp, 'victim:latest']);
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), ctd?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    for (const f of await readdir(tmpdir())) if (f.startsWith(CANARY)) await rm(join(tmpdir(), f), { recursive: true, force: true });
  });

  const canaries = async (): Promise<string[]> => (await readdir(tmpdir())).filter((f) => f.startsWith(CANARY) || f.startsWith('ferry-escape-'));

  interface Expect {
    /** What verify's message must say (and load's too, unless `load` is given). */
    mentions: (string | RegExp)[];
    load?: (string | RegExp)[];
    /** Bound the run: wall time and peak memory of each ferry process (default: DEFAULT_BOUND). */
    bound?: { ms: number; rssMiB: number };
    /** Also run `ferry inspect`, which prints what ferry.json says: refused the same way, nothing raw on stdout. */
    inspect?: boolean;
  }
  /** Every refusal is quick and small: a hostile bundle costs no more than a good one of its size. */
  const DEFAULT_BOUND = { ms: 30_000, rssMiB: 250 };

  /** refused writes the bundle, runs verify and load on it, and checks both refusals and that nothing changed. */
  const refused = async (t: TestContext, name: string, bytes: Buffer, expect: Expect): Promise<void> => {
    const dir = join(work, name);
    const cwd = join(work, `${name}-cwd`);
    await mkdir(dir);
    await mkdir(cwd);
    const file = join(dir, 'hostile.ferry.tar');
    await writeFile(file, bytes);
    const state = await daemonState(dst);
    const namespace = `hostile-${name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 60)}`;
    const [v, l, i, c] = await Promise.all([
      ferryMeasured(['verify', file], { cwd, timeoutMs: 90_000 }),
      ferryMeasured(['load', file], { dockerHost: dst.host, cwd, timeoutMs: 90_000 }),
      expect.inspect ? ferryMeasured(['inspect', file], { cwd, timeoutMs: 90_000 }) : undefined,
      ctd ? ferryMeasured(['load', file, '--containerd', ctd.address, '--namespace', namespace], { cwd, timeoutMs: 90_000 }) : undefined,
    ]);
    if (i) {
      assertFails(i, 3, expect.mentions, `inspect ${name}`);
      assert.doesNotMatch(i.stdout, /[\u0000-\u0008\u000b-\u001f\u007f]/, 'inspect printed a control character');
    }
    t.diagnostic(`verify: ${v.stderr.slice(v.stderr.search(/^ferry: /m)).split('\n').slice(0, 3).join(' | ')}`);
    t.diagnostic(`load: ${l.stderr.slice(l.stderr.search(/^ferry: /m)).split('\n')[0]}`);
    assertFails(v, 3, expect.mentions, `verify ${name}`);
    assertFails(l, 3, expect.load ?? expect.mentions, `load ${name}`);
    if (c) assertFails(c, 3, expect.load ?? expect.mentions, `load --containerd ${name}`);
    const bound = expect.bound ?? DEFAULT_BOUND;
    for (const [what, r] of [['verify', v], ['load', l], ...(c ? [['load --containerd', c] as const] : [])] as const) {
      t.diagnostic(`${what}: ${r.ms} ms, peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB`);
      assert.ok(r.ms < bound.ms, `${what} ${name} took ${r.ms} ms, more than ${bound.ms}`);
      assert.ok(r.peakRssKiB > 0 && r.peakRssKiB < bound.rssMiB * 1024, `${what} ${name} peaked at ${r.peakRssKiB} KiB, more than ${bound.rssMiB} MiB`);
    }
    assert.deepEqual(await daemonState(dst), state, 'the target daemon has no new image, tag or layer');
    if (ctd) assert.deepEqual(await holdings(ctd, namespace), { images: [], content: [], snapshots: [], leases: [] }, `containerd's namespace ${namespace} holds nothing`);
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
      ['a layer blob as a symlink to a path that does not exist', () => ({ name: layerName(), type: '2', linkname: canaryPath('absent-target') }), /symbolic link to ".*absent-target"/],
      ['a layer blob as a hard link to an entry that does not exist', () => ({ name: layerName(), type: '1', linkname: `blobs/sha256/${'0'.repeat(64)}` }), /hard link to "blobs\/sha256\/0{64}"/],
      ['a new blob as a hard link climbing out of the destination', () => ({ name: `blobs/sha256/${'1'.repeat(64)}`, type: '1', linkname: `${DEEP}etc/shadow` }), /hard link to "(\.\.\/)+etc\/shadow"/],
      ['ferry.json as a symlink to /etc/passwd', () => ({ name: 'ferry.json', type: '2', linkname: '/etc/passwd' }), /symbolic link to "\/etc\/passwd"/],
      ['index.json as a FIFO', () => ({ name: 'index.json', type: '6' }), /FIFO/],
      ['manifest.json as a character device (/dev/zero)', () => ({ name: 'manifest.json', type: '3', devmajor: 1, devminor: 5 }), /character device/],
    ];
    for (const [title, entry, problem] of cases) {
      it(title, async (t) => {
        const e = entry();
        const bytes = model.entries().some((x) => x.name === e.name) ? edited(replaceEntry(e.name, () => e)) : edited(insertAfterLayout(e));
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
        bound: { ms: 8000, rssMiB: 250 },
      });
    });

    it('a zstd frame that asks for a 2 GiB window', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const digest = m.replaceLayer(l.digest, zstdHugeWindow(), { uncompressedSize: l.uncompressedSize });
      await refused(t, 'zstd-window', m.bytes(), {
        mentions: [blobName(digest), /zstd|memory/i],
        bound: { ms: 8000, rssMiB: 250 },
      });
    });

    it('a gzip blob of 2 MB that expands to 2 GiB, ferry.json claiming 2.5 kB: stopped early, bounded', async (t) => {
      const m = model.clone();
      const l = m.layer(appRef, 1);
      const digest = m.replaceLayer(l.digest, gzipBomb(32), { uncompressedSize: l.uncompressedSize, mediaType: OCI_LAYER_GZIP });
      await refused(t, 'gzip-bomb', m.bytes(), {
        mentions: [blobName(digest), /more than its declared/],
        load: [blobName(digest), /more than its declared/, /load was stopped/],
        bound: { ms: 8000, rssMiB: 250 },
      });
    });
  });

  describe('versions and references', () => {
    const ferryJson = (edit: (doc: Record<string, unknown>) => void): Buffer => {
      const doc = structuredClone(model.index) as unknown as Record<string, unknown>;
      edit(doc);
      return model.bytes({ ferryJson: Buffer.from(JSON.stringify(doc)) });
    };

    it('ferry.json of version 3', async (t) => {
      await refused(t, 'version-3', ferryJson((d) => void (d.version = 3)), { mentions: ['ferry.json', /version 3 is not one this ferry reads/] });
    });

    it('ferry.json of a v3 media type and version 3', async (t) => {
      const bytes = ferryJson((d) => {
        d.version = 3;
        d.mediaType = 'application/vnd.ferry.bundle.v3+json';
        d.chunks = [];
      });
      await refused(t, 'version-3-media-type', bytes, { mentions: ['ferry.json', /version 3 is not one this ferry reads/] });
    });

    it('ferry.json of version 2 (deltas) that lists no deltas, or a delta whose blob is not a delta', async (t) => {
      const v2 = (d: Record<string, unknown>): void => {
        d.version = 2;
        d.mediaType = 'application/vnd.ferry.bundle.v2+json';
      };
      await refused(t, 'version-2-no-deltas', ferryJson(v2), { mentions: ['ferry.json', /does not match the bundle schema/] });
      const img = model.index.images[0]!;
      const bytes = ferryJson((d) => {
        v2(d);
        d.deltas = [{ diffId: img.layers[0]!.diffId, size: 1024, blob: img.config.digest, references: [] }];
      });
      await refused(t, 'version-2-delta-blob', bytes, { mentions: [/is not listed as a delta/] });
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

  describe('thin bundles that lie about what they rely on', () => {
    const THIN = 'docker.io/ferry-test/app:2';

    // These run before anything loads into the target (the multi-platform control below loads app:1's layers): it lacks
    // every layer the thin bundle relies on.
    it('control: the thin bundle as rebuilt verifies, and an empty target refuses it with exit 4, changing nothing', async () => {
      const file = join(work, 'thin-control.ferry.tar');
      await writeFile(file, thin.bytes());
      const v = await ferry(['verify', file]);
      assert.equal(v.code, 0, v.stderr);
      const state = await daemonState(dst);
      assertFails(await ferry(['load', file], { dockerHost: dst.host }), 4, [/lacks 3 layer/, /nothing was loaded/]);
      assert.deepEqual(await daemonState(dst), state);
    });

    it('a relied-on layer whose diffID contradicts the image', async (t) => {
      const m = thin.clone();
      const r = m.index.reliesOn[0]!;
      r.diffId = sha256('not the layer the image has') as never;
      await refused(t, 'thin-relied-diffid', m.bytes(), { mentions: [blobName(r.digest), /diffID differs between image and blob records/] });
    });

    it('a relied-on layer whose size contradicts the manifest', async (t) => {
      const m = thin.clone();
      const r = m.index.reliesOn[0]!;
      r.size += 1;
      await refused(t, 'thin-relied-size', m.bytes(), { mentions: [blobName(m.image(THIN).manifest.digest), r.digest, /size or media type differs/] });
    });

    it('a layer the image uses that is neither held nor listed as relied on', async (t) => {
      const m = thin.clone();
      const gone = m.index.reliesOn.shift()!;
      await refused(t, 'thin-unlisted', m.bytes(), { mentions: [gone.digest, /neither in the bundle nor listed as relied on/] });
    });

    it('a layer ferry.json says the thin bundle holds, absent', async (t) => {
      const held = blobName(thin.index.blobs.find((b) => b.diffId)!.digest);
      await refused(t, 'thin-held-absent', edited((es) => es.filter((e) => e.name !== held), thin), { mentions: [held, /listed in ferry.json but not in the bundle/] });
    });

    it('carriedBy that is not a bundle ID: 5,000 characters, or not a string', async (t) => {
      const m = thin.clone();
      (m.index.reliesOn[0] as { carriedBy?: unknown }).carriedBy = 'x'.repeat(5000);
      await refused(t, 'thin-carried-long', m.bytes(), { mentions: ['ferry.json', /schema/, /carriedBy/] });
      (m.index.reliesOn[0] as { carriedBy?: unknown }).carriedBy = { $ne: null };
      await refused(t, 'thin-carried-object', m.bytes(), { mentions: ['ferry.json', /schema/, /carriedBy/] });
    });

    it('carriedBy with terminal escapes (what inspect and a refused load print)', async (t) => {
      const m = thin.clone();
      for (const r of m.index.reliesOn) r.carriedBy = '\u001b]0;owned\u0007\u001b[2J../../etc/passwd';
      await refused(t, 'thin-carried-escapes', m.bytes(), { mentions: ['ferry.json', /carriedBy of relied-on layer sha256:[a-f0-9]{64} holds control characters/], inspect: true });
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

  /** doc is a top-level entry of a model's bundle (index.json, manifest.json, ferry.json), as laid out. */
  const doc = (name: string, m: BundleModel = model): Buffer => m.entries().find((e) => e.name === name)!.data!;
  const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
  const hexOf = (s: string): string => createHash('sha256').update(s).digest('hex');

  describe('more entries that override earlier ones', () => {
    it('a second index.json that names the app image victim:latest', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.manifests[0].annotations = { 'io.containerd.image.name': 'docker.io/library/victim:latest', 'org.opencontainers.image.ref.name': 'docker.io/library/victim:latest' };
      await refused(t, 'dup-index-json', edited((es) => [...es, { name: 'index.json', data: Buffer.from(JSON.stringify(index)) }]), { mentions: ['index.json', /appears twice/] });
    });

    it('a second manifest.json that tags the app image victim:latest', async (t) => {
      const manifest = JSON.parse(doc('manifest.json').toString());
      manifest[0].RepoTags = ['victim:latest'];
      await refused(t, 'dup-manifest-json', edited((es) => [...es, { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) }]), { mentions: ['manifest.json', /appears twice/] });
    });

    it('a pax header that renames a later, harmless-looking entry to ferry.json', async (t) => {
      const lie = structuredClone(model.index);
      lie.images[0]!.refs = ['docker.io/library/victim:latest'];
      const pax: RawEntry = { name: 'PaxHeaders/z', type: 'x', data: paxRecords({ path: 'ferry.json' }) };
      const bytes = edited((es) => [...es, pax, { name: `blobs/sha256/${'2'.repeat(64)}`, data: Buffer.from(JSON.stringify(lie)) }]);
      await refused(t, 'dup-pax-ferry-json', bytes, { mentions: ['ferry.json', /appears twice/] });
    });
  });

  describe('sizes and layer counts that lie', () => {
    it('a manifest size that ferry.json and index.json agree on, but the blob does not have', async (t) => {
      const m = model.clone();
      const img = m.image(appRef);
      img.manifest.size += 100;
      await refused(t, 'lie-manifest-size', m.bytes(), { mentions: ['ferry.json', /manifest/, /size/] });
    });

    it('a config size that ferry.json and the manifest agree on, but the blob does not have', async (t) => {
      const m = model.clone();
      m.image(appRef).config.size += 7;
      m.rebuild();
      await refused(t, 'lie-config-size', m.bytes(), { mentions: ['ferry.json', /config/, /size/] });
    });

    it('an OCI manifest whose config descriptor gives another size (ferry.json true)', async (t) => {
      const m = model.clone();
      const man = m.manifest(appRef);
      man.config.size += 1;
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(man)));
      await refused(t, 'lie-manifest-config-size', m.bytes(), { mentions: [blobName(d), /config/, /size/] });
    });

    it('an OCI manifest whose layer descriptor gives another size', async (t) => {
      const m = model.clone();
      const man = m.manifest(appRef);
      man.layers[1]!.size += 1;
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(man)));
      await refused(t, 'lie-manifest-layer-size', m.bytes(), { mentions: [blobName(d), man.layers[1]!.digest, /size or media type differs/] });
    });

    it('index.json alone giving the app manifest another size', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.manifests[0].size += 1;
      await refused(t, 'lie-index-size', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', /has size/] });
    });

    it('index.json giving the app image another platform, or its manifest another media type', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.manifests[0].platform = { os: 'windows', architecture: 'arm64' };
      await refused(t, 'lie-index-platform', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', /platform/, /windows/] });
      const again = JSON.parse(doc('index.json').toString());
      again.manifests[0].mediaType = 'application/vnd.oci.image.index.v1+json';
      await refused(t, 'lie-index-media-type', model.bytes({ indexJson: Buffer.from(JSON.stringify(again)) }), { mentions: ['index.json', /media type/] });
    });

    it('a config with fewer diff_ids than the image has layers', async (t) => {
      const m = model.clone();
      const cfg = m.config(appRef);
      cfg.rootfs.diff_ids.pop();
      const bytes = Buffer.from(JSON.stringify(cfg));
      m.setConfig(appRef, bytes);
      await refused(t, 'config-fewer-layers', m.bytes(), { mentions: [blobName(sha256(bytes)), /lists 2 layers, the manifest 3/] });
    });

    it('a config with more diff_ids than the image has layers', async (t) => {
      const m = model.clone();
      const cfg = m.config(appRef);
      cfg.rootfs.diff_ids.push(sha256('a layer nobody ships'));
      const bytes = Buffer.from(JSON.stringify(cfg));
      m.setConfig(appRef, bytes);
      await refused(t, 'config-more-layers', m.bytes(), { mentions: [blobName(sha256(bytes)), /lists 4 layers, the manifest 3/] });
    });

    it('an OCI manifest with one layer more than ferry.json and the config', async (t) => {
      const m = model.clone();
      const man = m.manifest(appRef);
      man.layers.push(man.layers[0]!);
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(man)));
      await refused(t, 'manifest-more-layers', m.bytes(), { mentions: [blobName(d), /layers differ/] });
    });

    it('ferry.json with one layer more than the manifest and the config', async (t) => {
      const m = model.clone();
      const img = m.image(appRef);
      img.layers.push({ ...img.layers[0]! });
      await refused(t, 'ferry-json-more-layers', m.bytes(), { mentions: [blobName(img.manifest.digest), /layers differ/] });
    });
  });

  describe('blobs that are not there', () => {
    const without = (digest: () => string) => async (t: TestContext, name: string): Promise<void> => {
      const gone = blobName(digest());
      await refused(t, name, edited((es) => es.filter((e) => e.name !== gone)), { mentions: [gone, /listed in ferry.json but not in the bundle/] });
    };
    it('a config every index names, absent', async (t) => without(() => model.image(appRef).config.digest)(t, 'absent-config'));
    it('a manifest every index names, absent', async (t) => without(() => model.image(appRef).manifest.digest)(t, 'absent-manifest'));
    it('a layer every index names, absent', async (t) => without(() => model.image(appRef).layers[1]!.digest)(t, 'absent-layer'));
  });

  describe('odd digest strings', () => {
    const ferryJsonText = (edit: (text: string) => string, m: BundleModel = model): Buffer => m.bytes({ ferryJson: Buffer.from(edit(JSON.stringify(m.index, null, 2))) });

    it('sha256:../../x as a config digest in ferry.json', async (t) => {
      const bad = `sha256:../../../..${tmpdir()}/${CANARY}-digest`;
      await refused(t, 'digest-dotdot', ferryJsonText((s) => s.replaceAll(model.image(appRef).config.digest, bad)), { mentions: ['ferry.json', /schema/] });
    });

    it('uppercase hex, sha512: and md5: digests in ferry.json', async (t) => {
      const l = model.image(appRef).layers[1]!.digest;
      await refused(t, 'digest-upper', ferryJsonText((s) => s.replaceAll(l, `sha256:${l.slice(7).toUpperCase()}`)), { mentions: ['ferry.json', /schema/] });
      await refused(t, 'digest-sha512', ferryJsonText((s) => s.replaceAll(l, `sha512:${l.slice(7)}${l.slice(7)}`)), { mentions: ['ferry.json', /schema/] });
      await refused(t, 'digest-md5', ferryJsonText((s) => s.replaceAll(l, `md5:${l.slice(7, 39)}`)), { mentions: ['ferry.json', /schema/] });
    });

    it('index.json naming a manifest sha256:../../x', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.manifests.push({ ...index.manifests[0], digest: `sha256:../../../..${tmpdir()}/${CANARY}-index`, annotations: {} });
      await refused(t, 'index-digest-dotdot', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', 'sha256:../../', /not an image ferry.json lists/] });
    });

    it('manifest.json Config and Layers paths that climb out', async (t) => {
      const manifest = JSON.parse(doc('manifest.json').toString());
      manifest[0].Config = `blobs/sha256/../../../..${tmpdir()}/${CANARY}-config`;
      await refused(t, 'manifest-json-config-dotdot', model.bytes({ manifestJson: Buffer.from(JSON.stringify(manifest)) }), { mentions: ['manifest.json', `${CANARY}-config`] });
      const again = JSON.parse(doc('manifest.json').toString());
      again[0].Layers[1] = `blobs/sha256/../../../../etc/passwd`;
      await refused(t, 'manifest-json-layer-dotdot', model.bytes({ manifestJson: Buffer.from(JSON.stringify(again)) }), { mentions: ['manifest.json', /Layers differ/] });
    });

    it('an OCI manifest naming a layer by uppercase hex', async (t) => {
      const m = model.clone();
      const man = m.manifest(appRef);
      const upper = `sha256:${man.layers[1]!.digest.slice(7).toUpperCase()}`;
      man.layers[1]!.digest = upper;
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(man)));
      await refused(t, 'manifest-layer-upper', m.bytes(), { mentions: [blobName(d), upper, /neither in the bundle nor listed as relied on/] });
    });

    it('a config whose diff_ids are sha512: and md5: digests', async (t) => {
      const m = model.clone();
      const cfg = m.config(appRef);
      cfg.rootfs.diff_ids[1] = `sha512:${'ab'.repeat(64)}`;
      cfg.rootfs.diff_ids[2] = `md5:${'cd'.repeat(16)}`;
      const bytes = Buffer.from(JSON.stringify(cfg));
      m.setConfig(appRef, bytes);
      await refused(t, 'config-odd-diff-ids', m.bytes(), { mentions: [blobName(sha256(bytes)), /diff_ids is missing or malformed/] });
    });

    it('entries named blobs/md5/…, blobs/sha512/… and by uppercase hex', async (t) => {
      const md5 = `blobs/md5/${'e'.repeat(32)}`;
      await refused(t, 'entry-md5', edited(insertAfterLayout({ name: md5, data: Buffer.from('x') })), { mentions: [md5, /not a name a bundle uses/] });
      const sha512 = `blobs/sha512/${'f'.repeat(128)}`;
      const pax: RawEntry = { name: 'PaxHeaders/s', type: 'x', data: paxRecords({ path: sha512 }) };
      await refused(t, 'entry-sha512', edited(insertAfterLayout(pax, { name: 'blobs/sha512/long', data: Buffer.from('x') })), { mentions: [sha512.slice(0, 60), /not a name a bundle uses/] });
      const real = blobName(model.image(appRef).layers[1]!.digest);
      const upper = `blobs/sha256/${real.slice(13).toUpperCase()}`;
      await refused(t, 'entry-upper', edited(insertAfterLayout({ name: upper, data: Buffer.from('replacement') })), { mentions: [upper, /not a name a bundle uses/] });
    });
  });

  describe('huge entry counts and deep or huge JSON', () => {
    it('300,000 tiny entries', async (t) => {
      const es = model.entries();
      const tiny = emptyEntries(300_000, (i) => `blobs/sha256/${hexOf(`tiny ${i}`)}`);
      const bytes = Buffer.concat([tarBytes(es.slice(0, -1), { end: false }), tiny, tarBytes(es.slice(-1))]);
      await refused(t, 'many-entries', bytes, { mentions: [/blobs\/sha256\/[a-f0-9]{64}: more than 200000 entries/], bound: { ms: 45_000, rssMiB: 250 } });
    });

    it('ferry.json with a million nested arrays', async (t) => {
      const text = JSON.stringify(model.index).replace(/"creator":"[^"]*"/, `"creator":${deep(1_000_000)}`);
      await refused(t, 'deep-ferry-json', model.bytes({ ferryJson: Buffer.from(text) }), { mentions: ['ferry.json'] });
    });

    it('index.json with an annotation of 100,000 nested arrays', async (t) => {
      const text = doc('index.json').toString().replace('"docker.io/ferry-test/app:1"', deep(100_000));
      await refused(t, 'deep-index-json', model.bytes({ indexJson: Buffer.from(text) }), { mentions: ['index.json'] });
    });

    it('manifest.json with a Config of 100,000 nested arrays', async (t) => {
      const manifest = JSON.parse(doc('manifest.json').toString());
      manifest.push({ Config: 'DEEP', RepoTags: null, Layers: [] });
      const text = JSON.stringify(manifest).replace('"DEEP"', deep(100_000));
      await refused(t, 'deep-manifest-json', model.bytes({ manifestJson: Buffer.from(text) }), { mentions: ['manifest.json'] });
    });

    it('an OCI manifest and a config with 100,000 nested arrays', async (t) => {
      const m = model.clone();
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(m.manifest(appRef)).replace(/"layers":\[.*\]/, `"layers":${deep(100_000)}`)));
      await refused(t, 'deep-oci-manifest', m.bytes(), { mentions: [blobName(d)] });
      const c = model.clone();
      const cfg = Buffer.from(JSON.stringify(c.config(appRef)).replace(/"diff_ids":\[[^\]]*\]/, `"diff_ids":${deep(100_000)}`));
      c.setConfig(appRef, cfg);
      await refused(t, 'deep-config', c.bytes(), { mentions: [blobName(sha256(cfg))] });
    });

    it('a 100 MB ferry.json and a 100 MB index.json', async (t) => {
      const big = (text: string): Buffer => Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.alloc(100 << 20, ' '), Buffer.from('}')]);
      await refused(t, 'huge-ferry-json', model.bytes({ ferryJson: big(JSON.stringify(model.index)) }), { mentions: ['ferry.json', /more than the \d+ a metadata file may have/] });
      await refused(t, 'huge-index-json', model.bytes({ indexJson: big(doc('index.json').toString()) }), { mentions: ['index.json', /more than the \d+ a metadata file may have/] });
    });

    it('a 30 MB index.json of ten million empty lists (small text, huge once parsed)', async (t) => {
      const text = `{"schemaVersion":2,"manifests":[${'[],'.repeat(10_000_000)}[]]}`;
      await refused(t, 'wide-index-json', model.bytes({ indexJson: Buffer.from(text) }), { mentions: ['index.json'] });
    });

    it('one manifest of 20,000 layers named by 1,000 image records, against 20,000 relied-on layers: linear time', async (t) => {
      const m = model.clone();
      const fake = (i: number): string => `sha256:${hexOf(`fake ${i}`)}`;
      const man = m.manifest(appRef);
      man.layers = Array.from({ length: 20_000 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: fake(i), size: 1 }));
      const d = m.setManifest(appRef, Buffer.from(JSON.stringify(man)));
      const app = m.image(appRef);
      m.index.images.push(...Array.from({ length: 1_000 }, () => ({ ...structuredClone(app), refs: [] })));
      m.index.reliesOn = Array.from({ length: 20_000 }, (_, i) => ({ digest: fake(20_000 + i), size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', diffId: fake(40_000 + i), uncompressedSize: 1 })) as never;
      await refused(t, 'quadratic', m.bytes(), { mentions: [blobName(d)], bound: { ms: 20_000, rssMiB: 250 } });
    });
  });

  describe('cut short at every structural point', () => {
    /** Each cut: where, and what the refusal must name (the entry cut, or the last whole one). */
    interface Cut {
      at: number;
      kind: string;
      where: string;
      /** What the refusal must name: the entry cut, or the last whole one. */
      names: string | RegExp;
    }
    const cutPoints = (bytes: Buffer): Cut[] => {
      const { entries, end } = layout(bytes);
      const out: Cut[] = [];
      entries.forEach((e, k) => {
        const before = k === 0 ? /before its first entry|is empty/ : entries[k - 1]!.name;
        if (k > 0) out.push({ at: e.header, kind: 'at a header', where: `at ${e.name}'s header`, names: before });
        out.push({ at: e.header + 148, kind: 'inside a header', where: `inside ${e.name}'s header`, names: before });
        out.push({ at: e.data, kind: 'before data', where: `before ${e.name}'s data`, names: e.name });
        out.push({ at: e.data + Math.floor(e.size / 2), kind: 'inside data', where: `inside ${e.name}'s data`, names: e.name });
        if (e.size % BLOCK) out.push({ at: e.data + e.size, kind: 'in padding', where: `in ${e.name}'s padding`, names: e.name });
      });
      const last = entries.at(-1)!.name;
      out.push({ at: end, kind: 'before the end marker', where: 'before the end-of-archive marker', names: last });
      out.push({ at: end + 1, kind: 'inside the end marker', where: 'inside the end-of-archive marker', names: last });
      return out;
    };

    for (const which of ['full', 'thin'] as const) {
      it(`the ${which} bundle, cut at each header, inside it, before and inside each entry's data, in its padding and in the end marker`, async (t) => {
        const bytes = (which === 'full' ? model : thin).bytes();
        const cuts = cutPoints(bytes);
        const dir = join(work, `cuts-${which}`);
        const cwd = join(work, `cuts-${which}-cwd`);
        await mkdir(dir);
        await mkdir(cwd);
        const state = await daemonState(dst);
        // Every cut, through the reader both commands open a bundle with (in this process: a node start per cut would
        // cost a minute); then `ferry verify` and `ferry load` on one cut of each kind, each kind at another entry.
        for (const c of cuts) {
          const file = join(dir, `cut-${c.at}.ferry.tar`);
          await writeFile(file, bytes.subarray(0, c.at));
          await assert.rejects(BundleReader.open(file), (err: unknown) => {
            assert.ok(err instanceof FerryError && err.exitCode === 3, `cut at ${c.at} (${c.where}): ${String(err)}`);
            assert.ok(typeof c.names === 'string' ? err.message.includes(c.names) : c.names.test(err.message), `cut at ${c.at} (${c.where}) must name ${String(c.names)}: ${err.message}`);
            assert.match(err.message, /truncated|is empty/, `cut at ${c.at} (${c.where})`);
            return true;
          });
        }
        const kinds = [...new Set(cuts.map((c) => c.kind))];
        const chosen = kinds.map((kind, i) => {
          const of = cuts.filter((c) => c.kind === kind);
          return of[(i * 3) % of.length]!;
        });
        await pool(
          chosen.map((c) => async (): Promise<void> => {
            const file = join(dir, `cut-${c.at}.ferry.tar`);
            const [v, l] = await Promise.all([
              ferryMeasured(['verify', file], { cwd, timeoutMs: 60_000 }),
              ferryMeasured(['load', file], { dockerHost: dst.host, cwd, timeoutMs: 60_000 }),
            ]);
            for (const [what, r] of [['verify', v], ['load', l]] as const) {
              assertFails(r, 3, [c.names, /truncated|is empty/], `${what} of the ${which} bundle cut at ${c.at} (${c.where})`);
              assert.ok(r.ms < DEFAULT_BOUND.ms && r.peakRssKiB < DEFAULT_BOUND.rssMiB * 1024, `${what} cut at ${c.at}: ${r.ms} ms, ${r.peakRssKiB} KiB`);
            }
          }),
          1,
        );
        t.diagnostic(`${cuts.length} cuts refused by the reader; verify and load run on ${chosen.map((c) => `${c.at} (${c.where})`).join(', ')}`);
        // One zero block of the two is enough for a tar reader: cut there, the bundle is whole (and so verifies).
        const { end } = layout(bytes);
        for (const at of [end + BLOCK, end + 2 * BLOCK - 1]) {
          const file = join(dir, `cut-${at}.ferry.tar`);
          await writeFile(file, bytes.subarray(0, at));
          const v = await ferry(['verify', file], { cwd });
          assert.equal(v.code, 0, `cut at ${at}, after the first end block: ${v.stderr}`);
        }
        assert.deepEqual(await daemonState(dst), state, 'the target daemon has no new image, tag or layer');
        assert.deepEqual(await canaries(), []);
        assert.ok((await listTree(dir)).every((f) => /^cut-\d+\.ferry\.tar$/.test(f)), 'nothing but the cut bundles beside them');
        assert.deepEqual(await listTree(cwd), [], 'nothing written in the working directory');
      });
    }
  });

  describe('references in tags and annotations', () => {
    it('manifest.json RepoTags that are not references, or not strings', async (t) => {
      const manifest = JSON.parse(doc('manifest.json').toString());
      manifest[0].RepoTags = ['../../../etc/passwd'];
      await refused(t, 'repotags-path', model.bytes({ manifestJson: Buffer.from(JSON.stringify(manifest)) }), { mentions: ['manifest.json', /RepoTags/] });
      manifest[0].RepoTags = [{ toString: 'victim:latest' }, 42];
      await refused(t, 'repotags-objects', model.bytes({ manifestJson: Buffer.from(JSON.stringify(manifest)) }), { mentions: ['manifest.json', /RepoTags/] });
    });

    it('manifest.json with a second entry for the app image, tagged victim:latest (plain docker load tags by every entry)', async (t) => {
      const manifest = JSON.parse(doc('manifest.json').toString());
      manifest.push({ ...manifest[0], RepoTags: ['victim:latest'] });
      await refused(t, 'manifest-json-second-entry', model.bytes({ manifestJson: Buffer.from(JSON.stringify(manifest)) }), { mentions: ['manifest.json', 'victim:latest', /a name ferry.json does not give that image/] });
    });

    it('index.json that is not an OCI image index (schemaVersion 1, a manifest media type)', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.schemaVersion = 1;
      index.mediaType = 'application/vnd.oci.image.manifest.v1+json';
      await refused(t, 'index-not-an-index', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', /not an OCI image index/] });
    });

    it('index.json giving an image another name in its containerd annotation only', async (t) => {
      const index = JSON.parse(doc('index.json').toString());
      index.manifests[0].annotations['io.containerd.image.name'] = 'docker.io/library/victim:latest';
      await refused(t, 'index-containerd-name', model.bytes({ indexJson: Buffer.from(JSON.stringify(index)) }), { mentions: ['index.json', 'docker.io/library/victim:latest', /io.containerd.image.name/] });
    });

    it('a creator with terminal escapes in ferry.json (inspect prints it)', async (t) => {
      const lie = structuredClone(model.index);
      lie.creator = '\u001b]0;owned\u0007\u001b[2Jferry 0.1.0';
      await refused(t, 'creator-escapes', model.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: ['ferry.json', /creator holds control characters/], inspect: true });
    });

    it('a reference the schema lets through but that does not parse', async (t) => {
      const lie = structuredClone(model.index);
      lie.images[0]!.refs = ['[/x'];
      await refused(t, 'ref-bracket', model.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: ['ferry.json', /invalid reference "\[\/x"/], inspect: true });
    });

    it('a reference in ferry.json with terminal escapes and a newline', async (t) => {
      const lie = structuredClone(model.index) as unknown as { images: { refs: string[] }[] };
      lie.images[0]!.refs = ['docker.io/ferry-test/app:1\n\u001b[2Kvictim:latest'];
      await refused(t, 'ref-escapes', model.bytes({ ferryJson: Buffer.from(JSON.stringify(lie)) }), { mentions: ['ferry.json', /schema/] });
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
