// The containerd client against a real, private containerd 1.6: content writes (resumed, already present),
// labels, leases and GC, images, a 2-layer unpack (gzip + zstd), errors; ctr and kernel mounts as independent readers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';
import { chainIds, asDiffId } from '../src/image/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST } from '../src/image/media-types.js';
import { childGcLabels, ContainerdClient, containerdAddress, unpackLayers, type Descriptor } from '../src/containerd/index.js';
import { FerryError } from '../src/ui/errors.js';
import { containerdMissing, startContainerd, type Containerd } from './helpers/containerd.js';

const exec = promisify(execFile);
const NS = 'ferry-test';
const MiB = 1 << 20;
const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const skip = containerdMissing();

/** source yields bytes from offset in pieces, recording every offset it was opened at. */
function source(bytes: Buffer, piece = 256 * 1024, opens: number[] = []) {
  return async function* (offset: number): AsyncGenerator<Buffer> {
    opens.push(offset);
    for (let i = offset; i < bytes.length; i += piece) yield bytes.subarray(i, Math.min(i + piece, bytes.length));
  };
}

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mtime: new Date(0), mode: 0o644 }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** testImage is a 2-layer OCI image for this machine's platform: a gzip layer and a zstd one. */
async function testImage() {
  const tars = [await layerTar({ 'hello.txt': 'hello\n', 'etc/os-release': 'NAME=ferry\n' }), await layerTar({ 'two.txt': 'second layer\n' })];
  const blobs = [gzipSync(tars[0]!), zstdCompress(tars[1]!)];
  const layers: Descriptor[] = blobs.map((b, i) => ({ mediaType: i === 0 ? OCI_LAYER_GZIP : OCI_LAYER_ZSTD, digest: sha256(b), size: b.length }));
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const configBytes = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) } }));
  const config: Descriptor = { mediaType: OCI_CONFIG, digest: sha256(configBytes), size: configBytes.length };
  const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));
  const manifest: Descriptor = { mediaType: OCI_MANIFEST, digest: sha256(manifestBytes), size: manifestBytes.length };
  return { tars, blobs, layers, config, configBytes, manifest, manifestBytes };
}

describe('containerd client (real containerd)', { skip }, () => {
  let ctd: Containerd;
  let root: ContainerdClient;
  let c: ContainerdClient; // under the suite's lease, so GC from the lease test cannot take our blobs
  const ctr = (...args: string[]): Promise<string> => ctd.ctr(['-n', NS, ...args]);

  before(async () => {
    ctd = await startContainerd('client');
    root = new ContainerdClient({ address: ctd.address, namespace: NS });
    c = root.withLease((await root.leases.create({ 'ferry.test/suite': '1' })).id);
  });
  after(async () => {
    root?.close();
    await ctd?.stop();
  });

  it('finds the socket like ctr does', () => {
    assert.equal(containerdAddress('unix:///x/y.sock', {}), '/x/y.sock');
    assert.equal(containerdAddress(undefined, { CONTAINERD_ADDRESS: '/e.sock' }), '/e.sock');
    assert.equal(containerdAddress(undefined, {}), '/run/containerd/containerd.sock');
  });

  it('reads the version ctr reports', async () => {
    const v = await c.version();
    assert.match(await ctd.ctr(['version']), new RegExp(`Server:[\\s\\S]*Version:\\s+${v.version.replace(/[.~]/g, '\\$&')}`));
  });

  let blob: Buffer;
  it('writes content, then info, list and ctr see it', async () => {
    blob = randomBytes(3 * MiB + 123);
    const digest = sha256(blob);
    const res = await c.content.write('ferry-w1', { digest, size: blob.length }, source(blob, 5 * MiB), { 'ferry.test/kind': 'blob' });
    assert.equal(res, 'written');
    assert.deepEqual(await c.content.info(digest), { digest, size: blob.length, labels: { 'ferry.test/kind': 'blob' } });
    assert.ok((await c.content.list()).some((i) => i.digest === digest));
    assert.equal(await c.content.info(sha256(Buffer.from('absent'))), undefined);
    const got = (await exec('sh', ['-c', `ctr --address ${ctd.address} -n ${NS} content get ${digest} | sha256sum`])).stdout;
    assert.equal(`sha256:${got.split(' ')[0]}`, digest);
  });

  /** cutWrite starts writing ref, yields first, waits until containerd holds it, then cuts the stream as a crash would. */
  async function cutWrite(ref: string, target: { digest: string; size: number }, first: Buffer): Promise<void> {
    const ac = new AbortController();
    async function* cut(offset: number): AsyncGenerator<Buffer> {
      assert.equal(offset, 0);
      yield* source(first)(0);
      while ((await c.content.status(ref))?.offset !== first.length) await new Promise((r) => setTimeout(r, 20));
      ac.abort(new Error('cut'));
      await new Promise(() => undefined); // a source that never answers again: the write must still end
    }
    await assert.rejects(c.content.write(ref, target, cut, {}, ac.signal), /cut/);
  }

  /** counted is a source that records where it was opened and how many bytes it gave. */
  function counted(bytes: Buffer) {
    const seen = { opens: [] as number[], sent: 0 };
    const open = async function* (offset: number): AsyncGenerator<Buffer> {
      for await (const b of source(bytes, 256 * 1024, seen.opens)(offset)) {
        seen.sent += b.length;
        yield b;
      }
    };
    return { seen, open };
  }

  it('resumes a write cut half way, sending only the rest', { timeout: 20_000 }, async () => {
    const bytes = randomBytes(4 * MiB);
    const target = { digest: sha256(bytes), size: bytes.length };
    await cutWrite('ferry-cut', target, bytes.subarray(0, 2 * MiB));
    assert.match(await ctr('content', 'active'), /ferry-cut\s+2\.097MB/);

    const { seen, open } = counted(bytes);
    assert.equal(await c.content.write('ferry-cut', target, open), 'written');
    assert.deepEqual(seen, { opens: [2 * MiB], sent: 2 * MiB });
    assert.equal((await c.content.info(target.digest))?.size, bytes.length);
    assert.equal(await c.content.status('ferry-cut'), undefined);
  });

  it('starts over when what a cut write left under the ref is not the blob', { timeout: 20_000 }, async () => {
    const bytes = randomBytes(MiB);
    const target = { digest: sha256(bytes), size: bytes.length };
    await cutWrite('ferry-stale', target, Buffer.alloc(MiB / 2));
    const { seen, open } = counted(bytes);
    assert.equal(await c.content.write('ferry-stale', target, open), 'written');
    assert.deepEqual(seen, { opens: [MiB / 2, 0], sent: MiB + MiB / 2 });
    assert.equal((await c.content.info(target.digest))?.size, MiB);
  });

  it('answers present for content it holds, without reading the source', async () => {
    const opens: number[] = [];
    assert.equal(await c.content.write('ferry-w2', { digest: sha256(blob), size: blob.length }, source(blob, MiB, opens)), 'present');
    assert.deepEqual(opens, []);
  });

  it('sets and removes labels, leaving the others', async () => {
    const digest = sha256(blob);
    await c.content.updateLabels(digest, { 'ferry.test/a': '1' });
    assert.match(await ctr('content', 'ls'), new RegExp(`${digest}.*ferry\\.test/a=1`));
    const info = await c.content.updateLabels(digest, { 'ferry.test/a': '' });
    assert.deepEqual(info.labels, { 'ferry.test/kind': 'blob' });
  });

  it('keeps content under a lease until the lease goes, then GC takes it', async () => {
    const lease = await root.leases.create({ 'ferry.test/lease': 'gc' }, { ttlMs: 3600_000 });
    const leases = await ctr('leases', 'ls');
    assert.match(leases, new RegExp(`${lease.id}.*containerd\\.io/gc\\.expire=\\d{4}-\\d\\d-\\d\\dT`));
    const bytes = randomBytes(1000);
    const digest = sha256(bytes);
    assert.equal(await root.withLease(lease.id).content.write('ferry-leased', { digest, size: 1000 }, source(bytes)), 'written');
    await root.leases.delete(lease.id, { sync: true });
    assert.doesNotMatch(await ctr('leases', 'ls'), new RegExp(lease.id));
    assert.equal(await c.content.info(digest), undefined, 'collected once its lease is gone');
    assert.ok(await c.content.info(sha256(blob)), 'the suite lease still keeps its blob');
  });

  it('creates, gets, lists and re-points images', async () => {
    const target: Descriptor = { mediaType: OCI_MANIFEST, digest: sha256(Buffer.from('m1')), size: 2 };
    const made = await c.images.create({ name: 'docker.io/ferry/test:1', target, labels: { 'ferry.test/i': '1' } });
    assert.deepEqual({ name: made.name, target: made.target, labels: made.labels }, { name: 'docker.io/ferry/test:1', target, labels: { 'ferry.test/i': '1' } });
    assert.deepEqual((await c.images.get('docker.io/ferry/test:1'))?.target, target);
    assert.equal(await c.images.get('docker.io/ferry/absent:1'), undefined);
    const moved = { ...target, digest: sha256(Buffer.from('m2')) };
    const again = await c.images.create({ name: 'docker.io/ferry/test:1', target: moved });
    assert.equal(again.target.digest, moved.digest);
    assert.deepEqual(again.labels, { 'ferry.test/i': '1' });
    assert.ok((await c.images.list()).some((i) => i.name === 'docker.io/ferry/test:1'));
    assert.match(await ctr('images', 'ls'), new RegExp(`docker.io/ferry/test:1\\s+${OCI_MANIFEST.replace(/[.+]/g, '\\$&')}\\s+${moved.digest}`));
    await c.images.delete('docker.io/ferry/test:1');
  });

  it('unpacks a gzip and a zstd layer into committed snapshots, as containerd would', async () => {
    const { tars, blobs, layers, config, configBytes, manifest, manifestBytes } = await testImage();
    const diffIds = tars.map((t) => sha256(t));
    for (const [d, bytes] of [[config, configBytes], [layers[0]!, blobs[0]!], [layers[1]!, blobs[1]!]] as const) {
      await c.content.write(`ferry-u-${d.digest}`, d, source(bytes));
    }
    await c.content.write('ferry-u-manifest', manifest, source(manifestBytes), childGcLabels([config, ...layers]));
    await c.images.create({ name: 'docker.io/ferry/unpacked:1', target: manifest });

    const todo = layers.map((descriptor, i) => ({ descriptor, diffId: diffIds[i]! }));
    const chain = chainIds(diffIds.map(asDiffId));
    // overlayfs where the kernel allows it, and native (the fallback on overlay roots) always.
    const loaded = (await c.introspection.snapshotters()).filter((p) => !p.error).map((p) => p.id);
    const snapshotters = ['overlayfs', 'native'].filter((s) => loaded.includes(s));
    assert.ok(snapshotters.includes('native'), `native is always loaded: ${loaded.join(', ')}`);
    for (const snapshotter of snapshotters) {
      const res = await unpackLayers(c, snapshotter, todo, undefined, { config: config.digest });
      assert.deepEqual(res, { chainId: chain[1], layers: ['applied', 'applied'] }, snapshotter);
      assert.deepEqual((await unpackLayers(c, snapshotter, todo)).layers, ['present', 'present']);

      const snaps = await ctr('snapshots', '--snapshotter', snapshotter, 'ls');
      assert.match(snaps, new RegExp(`${chain[0]}\\s+Committed`));
      assert.match(snaps, new RegExp(`${chain[1]}\\s+${chain[0]}\\s+Committed`));
      assert.doesNotMatch(snaps, /extract-/);
      const info = JSON.parse(await ctr('snapshots', '--snapshotter', snapshotter, 'info', chain[1]!)) as { Labels: Record<string, string> };
      assert.equal(info.Labels['containerd.io/snapshot.ref'], chain[1]);
      await assertFiles(snapshotter, chain[1]!);
    }
    const content = await ctr('content', 'ls');
    for (const s of snapshotters) assert.match(content, new RegExp(`${config.digest}.*containerd\\.io/gc\\.ref\\.snapshot\\.${s}=${chain[1]}`));
    for (const [i, l] of layers.entries()) assert.match(content, new RegExp(`${l.digest}.*containerd\\.io/uncompressed=${diffIds[i]}`));
    assert.deepEqual((await c.content.info(manifest.digest))!.labels, {
      'containerd.io/gc.ref.content.config': config.digest,
      'containerd.io/gc.ref.content.l.0': layers[0]!.digest,
      'containerd.io/gc.ref.content.l.1': layers[1]!.digest,
    });
    // ctr checks the default snapshotter (overlayfs) for the UNPACKED column.
    if (snapshotters.includes('overlayfs')) assert.match(await ctr('images', 'check'), /docker.io\/ferry\/unpacked:1.*complete.*true/);
  });

  /** assertFiles mounts a fresh snapshot on top of the chain, as a container would, and reads both layers' files. */
  async function assertFiles(snapshotter: string, top: string): Promise<void> {
    const mnt = await mkdtemp(join(ctd.dir, 'mnt-'));
    const [m] = await c.snapshots.prepare(snapshotter, `ferry-check-${snapshotter}`, top);
    await exec('mount', ['-t', m!.type, '-o', m!.options.join(','), m!.source, mnt]);
    try {
      assert.equal(await readFile(join(mnt, 'hello.txt'), 'utf8'), 'hello\n');
      assert.equal(await readFile(join(mnt, 'two.txt'), 'utf8'), 'second layer\n');
    } finally {
      await exec('umount', [mnt]);
      await c.snapshots.remove(snapshotter, `ferry-check-${snapshotter}`);
      await rm(mnt, { recursive: true });
    }
  }

  it('labels manifests and indexes for GC as `ctr import` does', async () => {
    const { blobs, layers, config, configBytes, manifest, manifestBytes } = await testImage();
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const inner = { ...manifest, platform: { architecture: arch, os: 'linux' } };
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [inner, { ...inner, platform: { architecture: 'riscv64', os: 'linux' } }] }));
    const index: Descriptor = { mediaType: OCI_INDEX, digest: sha256(indexBytes), size: indexBytes.length };
    const pack = tar.pack();
    pack.entry({ name: 'oci-layout' }, '{"imageLayoutVersion":"1.0.0"}');
    pack.entry({ name: 'index.json' }, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...index, annotations: { 'io.containerd.image.name': 'docker.io/ferry/imported:1' } }] }));
    for (const [d, b] of [[config, configBytes], [layers[0]!, blobs[0]!], [layers[1]!, blobs[1]!], [manifest, manifestBytes], [index, indexBytes]] as const) {
      pack.entry({ name: `blobs/sha256/${d.digest.slice(7)}` }, b);
    }
    pack.finalize();
    const archive = join(ctd.dir, 'import.tar');
    await pipeline(pack, createWriteStream(archive));
    await ctd.ctr(['-n', 'ferry-import', 'images', 'import', '--all-platforms', archive]);

    const imported = new ContainerdClient({ address: ctd.address, namespace: 'ferry-import' });
    try {
      assert.equal((await imported.images.get('docker.io/ferry/imported:1'))?.target.digest, index.digest);
      assert.deepEqual((await imported.content.info(index.digest))?.labels, childGcLabels([inner, inner]));
      assert.deepEqual((await imported.content.info(manifest.digest))?.labels, childGcLabels([config, ...layers]));
    } finally {
      imported.close();
    }
  });

  it('refuses a layer whose diffID is not the one named, leaving no half-made snapshot', async () => {
    const snapshotter = (await c.introspection.usableSnapshotter())!;
    const t = await layerTar({ 'x.txt': 'x' });
    const gz = gzipSync(t);
    const d: Descriptor = { mediaType: OCI_LAYER_GZIP, digest: sha256(gz), size: gz.length };
    await c.content.write('ferry-bad', d, source(gz));
    const wrong = sha256(Buffer.from('not this'));
    await assert.rejects(unpackLayers(c, snapshotter, [{ descriptor: d, diffId: wrong }]), /unpacks to diffID/);
    const snaps = await c.snapshots.list(snapshotter);
    assert.ok(!snaps.some((s) => s.name.startsWith('extract-') || s.name === wrong));
  });

  it('names containerd\'s refusals (exit 1) and an unreachable socket (exit 5)', async () => {
    const refused = await c.snapshots.prepare('no-such-snapshotter', 'k', '').catch((e: unknown) => e);
    assert.ok(refused instanceof FerryError && refused.code === 'CONTAINERD_ERROR' && refused.exitCode === 1, String(refused));
    assert.match(refused.message, /no-such-snapshotter/);
    const gone = new ContainerdClient({ address: join(ctd.dir, 'nothing.sock'), namespace: NS });
    const err = await gone.version().catch((e: unknown) => e);
    gone.close();
    assert.ok(err instanceof FerryError, String(err));
    assert.equal(err.code, 'CONTAINERD_UNREACHABLE');
    assert.equal(err.exitCode, 5);
    assert.match(err.message, /nothing\.sock: no socket there/);
    assert.match(err.hint ?? '', /CONTAINERD_ADDRESS/);
  });
});
