// `ferry load --containerd` and `ferry inventory --containerd` against a real, private containerd 1.6: a load that
// a container starts from (ctr run, runc), the same bundle again, a thin bundle planned from the inventory and from
// the receipt, a thin bundle refused with exit 4 where its layers are missing, a SIGKILL mid-load and a re-run that
// sends only the rest; and the interop of Kubernetes tooling that reads bundles without ferry (ctr import, podman
// load, a zstd-compressed bundle). Hostile bundles go through this target in hostile-bundles.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BundleReader } from '../src/bundle/reader.js';
import { containerdMissing, holdings, startContainerd, type Containerd } from './helpers/containerd.js';
import { FERRY_BIN, ferry, json, type FerryRun } from './helpers/ferry.js';
import { writeSaveArchive, type ArchivedImage } from './helpers/save-archive.js';
import { missing } from './helpers/tools.js';
import { tarBytes } from './helpers/crafted-tar.js';

const exec = promisify(execFile);
const skip = containerdMissing() ?? missing(['busybox', 'runc', 'zstd']);

interface LoadJson {
  images: { imageId: string; refs: string[]; status: string; layersSent: number; layersPresent: number }[];
  blobs: { present: number; written: number };
  bytesWritten: number;
  bytesSent: number;
}

describe('containerd as a target (real containerd)', { skip }, () => {
  let ctd: Containerd;
  let work: string;
  let archive: string;
  let ids: ArchivedImage[];
  let full: string;
  let load: (args: string[], ns: string) => Promise<FerryRun>;

  before(async () => {
    work = await mkdtemp('/tmp/ferry-ctd-target-');
    ctd = await startContainerd('target');
    load = (args, ns) => ferry(['load', ...args, '--containerd', ctd.address, '--namespace', ns]);
    const busybox = { data: readFileSync('/bin/busybox'), mode: 0o755 };
    const app = { 'srv/app.txt': 'app 1\n' };
    archive = join(work, 'images.tar');
    ids = await writeSaveArchive(archive, [
      { tag: 'ferry-test/base:1', layers: [{ 'bin/busybox': busybox }] },
      { tag: 'ferry-test/app:1', layers: [{ 'bin/busybox': busybox }, app] },
      { tag: 'ferry-test/app:2', layers: [{ 'bin/busybox': busybox }, app, { 'srv/more.txt': 'more\n' }] },
    ]);
    full = join(work, 'full.ferry.tar');
    const packed = await ferry(['pack', `docker-archive:${archive}:ferry-test/base:1`, `docker-archive:${archive}:ferry-test/app:1`, '-o', full]);
    assert.equal(packed.code, 0, packed.stderr);
  });

  after(async () => {
    await ctd?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('loads a bundle: image records under their names at the source manifest digests, unpacked, and a container runs from it', async () => {
    const r = await load([full, '--receipt', join(work, 'full.receipt.json'), '--json'], 'k8s.io');
    assert.equal(r.code, 0, r.stderr);
    const out = json<LoadJson>(r);
    assert.deepEqual(out.images.map((i) => [i.imageId, i.refs, i.status]), [
      [ids[0]!.id, ['docker.io/ferry-test/base:1'], 'loaded'],
      [ids[1]!.id, ['docker.io/ferry-test/app:1'], 'loaded'],
    ]);
    const bundle = await BundleReader.open(full);
    const index = bundle.index;
    await bundle.close();
    // Records point at the bundle's own manifests (its layers were not converted), and their configs are the image IDs.
    const listed = await ctd.ctr(['-n', 'k8s.io', 'images', 'ls']);
    for (const img of index.images) {
      assert.match(listed, new RegExp(`${img.refs[0]!.replace(/[.:/]/g, '\\$&')}\\s+\\S+\\s+${img.manifest.digest}`), `${img.refs[0]} at ${img.manifest.digest}`);
      const manifest = JSON.parse(await ctd.ctr(['-n', 'k8s.io', 'content', 'get', img.manifest.digest])) as { config: { digest: string } };
      assert.equal(manifest.config.digest, img.imageId);
    }
    const layersAndConfigs = new Set(index.images.flatMap((img) => [img.imageId, ...img.layers.map((l) => l.digest)]));
    assert.equal(out.blobs.written, layersAndConfigs.size, 'every layer and config written once (manifests are put with the images)');
    const held = await holdings(ctd, 'k8s.io');
    assert.deepEqual(held.leases, [], 'the lease ended at commit: the image records keep everything now');
    for (const id of ids.slice(0, 2)) for (const d of id.diffIds) assert.ok(held.content.length > 0 && d);
    // ctr's own check: every blob of each image is in the content store.
    const check = await ctd.ctr(['-n', 'k8s.io', 'images', 'check']);
    assert.equal((check.match(/complete \(/g) ?? []).length, 2, check);
    // A container from the loaded image, with no pull: the snapshots are there.
    const ran = await ctd.ctr(['-n', 'k8s.io', 'run', '--rm', 'docker.io/ferry-test/app:1', `ferry-c-${process.pid}`, '/bin/busybox', 'cat', '/srv/app.txt']);
    assert.equal(ran, 'app 1\n');
    const receipt = JSON.parse(await readFile(join(work, 'full.receipt.json'), 'utf8')) as { target: { kind: string; id: string } };
    assert.equal(receipt.target.kind, 'containerd');
    assert.match(receipt.target.id, /\/k8s\.io$/);
  });

  it('loads the same bundle again: every blob found, nothing sent', async () => {
    // As a user may type it: the flag first, taking no value, the socket from CONTAINERD_ADDRESS, namespace k8s.io.
    const r = await ferry(['load', '--containerd', full, '--json'], { env: { CONTAINERD_ADDRESS: ctd.address } });
    assert.equal(r.code, 0, r.stderr);
    const out = json<LoadJson>(r);
    assert.equal(out.blobs.written, 0);
    assert.equal(out.bytesSent, 0);
    assert.deepEqual(out.images.map((i) => i.status), ['present', 'present']);
  });

  it('plans a thin bundle from `ferry inventory --containerd` and from the receipt, and loads it', async () => {
    const inv = join(work, 'node.inventory.json');
    const i = await ferry(['inventory', '--containerd', ctd.address, '-o', inv]);
    assert.equal(i.code, 0, i.stderr);
    const doc = JSON.parse(await readFile(inv, 'utf8')) as { target: { kind: string }; images: { id: string; refs: string[] }[] };
    assert.equal(doc.target.kind, 'containerd');
    assert.deepEqual(doc.images.map((x) => x.refs).sort(), [['docker.io/ferry-test/app:1'], ['docker.io/ferry-test/base:1']]);

    const thin = join(work, 'thin.ferry.tar');
    const fromReceipt = join(work, 'thin-receipt.ferry.tar');
    for (const [have, out] of [[inv, thin], [join(work, 'full.receipt.json'), fromReceipt]] as const) {
      const p = await ferry(['pack', `docker-archive:${archive}:ferry-test/app:2`, '--have', have, '-o', out]);
      assert.equal(p.code, 0, p.stderr);
    }
    const [a, b] = await Promise.all([BundleReader.open(thin), BundleReader.open(fromReceipt)]);
    assert.equal(a.index.reliesOn.length, 2, 'busybox and app.txt stay behind');
    assert.deepEqual(b.index.reliesOn.map((x) => x.digest), a.index.reliesOn.map((x) => x.digest), 'the receipt plans the same');
    await Promise.all([a.close(), b.close()]);

    const r = await load([thin, '--json'], 'k8s.io');
    assert.equal(r.code, 0, r.stderr);
    const out = json<LoadJson>(r);
    assert.deepEqual(out.images.map((x) => [x.refs, x.layersSent, x.layersPresent]), [[['docker.io/ferry-test/app:2'], 1, 2]]);
    const ran = await ctd.ctr(['-n', 'k8s.io', 'run', '--rm', 'docker.io/ferry-test/app:2', `ferry-c2-${process.pid}`, '/bin/busybox', 'cat', '/srv/more.txt']);
    assert.equal(ran, 'more\n');
  });

  it('reads the bundle from stdin as docker load does: redirected (read in place) and piped (spooled, then removed)', async () => {
    const tmp = join(work, 'stdin-tmp');
    await mkdir(tmp);
    const run = (ns: string, stdin: 'file' | 'pipe'): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve, reject) => {
        const args = [FERRY_BIN, 'load', '--containerd', ctd.address, '--namespace', ns, ...(stdin === 'pipe' ? ['-'] : [])];
        const fd = stdin === 'file' ? openSync(full, 'r') : undefined;
        const p = spawn(process.execPath, args, { env: { ...process.env, TMPDIR: tmp }, stdio: [fd ?? 'pipe', 'ignore', 'pipe'] });
        if (fd !== undefined) closeSync(fd);
        else createReadStream(full).pipe(p.stdin!);
        let stderr = '';
        p.stderr!.on('data', (d) => (stderr += d));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
      });
    for (const [ns, how] of [['stdin-file', 'file'], ['stdin-pipe', 'pipe']] as const) {
      const r = await run(ns, how);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await holdings(ctd, ns)).images, ['docker.io/ferry-test/app:1', 'docker.io/ferry-test/base:1'], `loaded from stdin (${how})`);
    }
    assert.deepEqual(await readdir(tmp), [], 'the spooled copy is gone');
  });

  it('refuses a thin bundle whose relied-on layers a namespace lacks: exit 4, naming them, nothing written', async () => {
    const before = await holdings(ctd, 'empty');
    const r = await load([join(work, 'thin.ferry.tar')], 'empty');
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /lacks 2 layer blob\(s\)/);
    assert.match(r.stderr, new RegExp(ids[2]!.diffIds[0]!));
    assert.match(r.stderr, /ferry inventory --containerd/);
    assert.deepEqual(await holdings(ctd, 'empty'), before);
    assert.deepEqual(before, { images: [], content: [], snapshots: [], leases: [] });
  });

  it('keeps a multi-platform index: one record at the index digest, the host platform unpacked and runnable, the other stored', async () => {
    // An OCI layout by hand: one busybox layer under an amd64 and an arm64 config, listed by one index.
    const dir = join(work, 'multi-layout');
    await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
    const put = async (b: Buffer): Promise<string> => {
      const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
      await writeFile(join(dir, 'blobs/sha256', d.slice(7)), b);
      return d;
    };
    const layer = tarBytes([{ name: 'bin/busybox', data: readFileSync('/bin/busybox'), mode: 0o755 }, { name: 'srv/multi.txt', data: Buffer.from('multi\n') }]);
    const layerDigest = await put(layer);
    const manifests = [];
    for (const [architecture, variant] of [['amd64', undefined], ['arm64', 'v8']] as const) {
      const config = Buffer.from(JSON.stringify({ architecture, ...(variant ? { variant } : {}), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      }));
      manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: await put(manifest), size: manifest.length, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    const indexDigest = await put(index);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/ferry-test/multi:1' } }] }));
    const bundle = join(work, 'multi.ferry.tar');
    const p = await ferry(['pack', `oci:${dir}`, '--all-platforms', '-o', bundle]);
    assert.equal(p.code, 0, p.stderr);

    const r = await load([bundle, '--json'], 'multi');
    assert.equal(r.code, 0, r.stderr);
    const listed = await ctd.ctr(['-n', 'multi', 'images', 'ls']);
    assert.match(listed, new RegExp(`docker\\.io/ferry-test/multi:1\\s+\\S+\\s+${indexDigest}\\s.*linux/amd64,linux/arm64/v8`), listed);
    const check = await ctd.ctr(['-n', 'multi', 'images', 'check']);
    assert.match(check, /complete \(/, check);
    const ran = await ctd.ctr(['-n', 'multi', 'run', '--rm', 'docker.io/ferry-test/multi:1', `ferry-m-${process.pid}`, '/bin/busybox', 'cat', '/srv/multi.txt']);
    assert.equal(ran, 'multi\n');
  });

  it('SIGKILL mid-load, then a re-run finishes without sending again what arrived', async () => {
    const bigArchive = join(work, 'big.tar');
    await writeSaveArchive(bigArchive, [{ tag: 'ferry-test/big:1', layers: [{ 'bin/busybox': { data: readFileSync('/bin/busybox'), mode: 0o755 } }, { 'data.bin': randomBytes(96 << 20) }] }]);
    const big = join(work, 'big.ferry.tar');
    assert.equal((await ferry(['pack', `docker-archive:${bigArchive}`, '-o', big])).code, 0);
    await rm(bigArchive);
    const child = spawn(process.execPath, [FERRY_BIN, 'load', big, '--containerd', ctd.address, '--namespace', 'kill'], { stdio: 'ignore' });
    // Killed once containerd holds part of the big blob: an active ingest with bytes in it.
    // `ctr content active` prints each ingest's offset as docker's HumanSize (decimal units, 4 significant digits).
    const units: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
    let offset = 0;
    const deadline = Date.now() + 60_000;
    while (offset < 8 << 20 && child.exitCode === null && Date.now() < deadline) {
      const active = await ctd.ctr(['-n', 'kill', 'content', 'active']).catch(() => '');
      for (const m of active.matchAll(/^ferry-\S*\t(\d+(?:\.\d+)?)(B|kB|MB|GB)\t/gm)) offset = Math.max(offset, Math.floor(Number(m[1]) * units[m[2]!]! * 0.999));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    assert.ok(offset > 0, 'the kill came while the big blob was being written');
    assert.deepEqual((await holdings(ctd, 'kill')).images, [], 'nothing named');

    const r = await load([big, '--json'], 'kill');
    assert.equal(r.code, 0, r.stderr);
    const out = json<LoadJson>(r);
    const size = (await readFile(big)).length;
    assert.ok(out.bytesSent <= size - offset, `the re-run sent ${out.bytesSent} B; ${offset} B had arrived of a ${size} B bundle`);
    assert.deepEqual(out.images.map((i) => i.refs), [['docker.io/ferry-test/big:1']]);
    const check = await ctd.ctr(['-n', 'kill', 'images', 'check']);
    assert.match(check, /complete \(/);
    assert.equal((await ctd.ctr(['-n', 'kill', 'content', 'active'])).trim().split('\n').length, 1, 'no ingest left behind');
    await rm(big);
  });

  it('ctr import and podman load read a bundle without ferry, under its names and IDs; so does ctr from a zstd-compressed one', async () => {
    const imported = await ctd.ctr(['-n', 'imported', 'images', 'import', full]);
    assert.match(imported, /docker\.io\/ferry-test\/app:1/);
    const bundle = await BundleReader.open(full);
    const index = bundle.index;
    await bundle.close();
    const listed = await ctd.ctr(['-n', 'imported', 'images', 'ls']);
    for (const img of index.images) assert.match(listed, new RegExp(`${img.refs[0]!.replace(/[.:/]/g, '\\$&')}\\s+\\S+\\s+${img.manifest.digest}`));
    // k3s and RKE2 read agent images as .tar.zst with a decoder capped at a 32 MiB window: zstd's defaults stay far below.
    const zst = `${full}.zst`;
    await exec('zstd', ['-q', '-T0', full, '-o', zst]);
    const header = (await readFile(zst)).subarray(0, 6);
    const descriptor = header[4]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    if (!singleSegment) {
      const wd = header[5]!;
      const windowLog = 10 + (wd >> 3);
      const window = 2 ** windowLog + (2 ** windowLog / 8) * (wd & 7);
      assert.ok(window <= 32 << 20, `zstd's window is ${window} B`);
    }
    await exec('sh', ['-c', `zstd -dc '${zst}' | ctr --address '${ctd.address}' -n zst images import -`]);
    assert.match(await ctd.ctr(['-n', 'zst', 'images', 'ls', '-q']), /docker\.io\/ferry-test\/base:1/);
    await rm(zst);
    // podman reads the OCI side of the tar too (as oci-archive) with every image ID kept.
    if (missing(['podman'])) return;
    const root = join(work, 'podman');
    const podman = (args: string[]) => exec('podman', ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args], { maxBuffer: 16 << 20 });
    await podman(['load', '-i', full]);
    const ids2 = (await podman(['images', '--no-trunc', '--format', '{{.Id}} {{.Repository}}:{{.Tag}}'])).stdout;
    for (const img of index.images) assert.match(ids2, new RegExp(`${img.imageId.slice(7)} ${img.refs[0]!.replace(/[.:/]/g, '\\$&')}`), ids2);
  });
});
