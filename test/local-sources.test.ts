// Images from local files: docker-archive (legacy and Docker 25 saves), oci and oci-archive (skopeo's and Docker
// 25's), and bundles (a subset, a merge). Each is packed into a real bundle that must verify; IDs, diffIDs and
// manifest digests are compared with what the daemon and the files hold. Bad files give FerryErrors by code.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BundleReader } from '../src/bundle/reader.js';
import { BundleTarget } from '../src/targets/bundle.js';
import { verifyBundle } from '../src/bundle/verify.js';
import type { BundleIndex } from '../src/bundle/format.js';
import { packImages } from '../src/transfer/pack.js';
import { DockerArchiveSource } from '../src/sources/docker-archive.js';
import { ociLayoutSource } from '../src/sources/oci-layout.js';
import { ociArchiveSource } from '../src/sources/oci-archive.js';
import { bundleSource } from '../src/sources/bundle.js';
import { splitLocation } from '../src/sources/location.js';
import type { ImageSource, SourceImage } from '../src/sources/source.js';
import { FerryError, type ErrorCode } from '../src/ui/errors.js';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { docker25Save, type Docker25Save } from './helpers/docker25-save.js';
import { tarBytes } from './helpers/crafted-tar.js';
import { missing } from './helpers/tools.js';
import { ferry } from './helpers/ferry.js';

const exec = promisify(execFile);
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Packed {
  path: string;
  index: BundleIndex;
  /** Layers handed to the bundle, and how many of them were repeats it dropped. */
  layers: number;
  repeats: number;
}

let packs = 0;

/** pack resolves names with source, packs them into a new bundle in dir, and checks the bundle verifies. */
async function pack(source: ImageSource, names: string[], dir: string, opts: { allPlatforms?: boolean } = {}): Promise<Packed & { images: SourceImage[] }> {
  const resolved = await source.resolve(names, opts);
  const path = join(dir, `packed-${++packs}.ferry.tar`);
  const target = await BundleTarget.create(path, { compression: 'zstd', level: 1 });
  let layers = 0;
  let repeats = 0;
  await packImages([{ source, resolved }], target, { events: { layer: (l) => (l.repeat ? repeats++ : layers++) } });
  const index = target.index;
  const reader = await BundleReader.open(path);
  try {
    const report = await verifyBundle(reader);
    assert.ok(report.ok, `bundle from ${names.join(' ')} fails verify: ${JSON.stringify(report.faults)}`);
  } finally {
    await reader.close();
  }
  return { path, index, layers, repeats, images: resolved.images };
}

async function rejects(p: Promise<unknown>, code: ErrorCode, mentions: (string | RegExp)[] = []): Promise<FerryError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FerryError, `expected a FerryError ${code}, got ${caught instanceof Error ? caught.stack : String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const m of mentions) assert.match(caught.message, typeof m === 'string' ? new RegExp(m.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : m);
  return caught;
}

async function closing<T>(source: ImageSource, f: (s: ImageSource) => Promise<T>): Promise<T> {
  try {
    return await f(source);
  } finally {
    await source.close();
  }
}

const byId = (images: readonly { id: string }[], id: string): SourceImage => {
  const hit = images.find((i) => i.id === id) as SourceImage | undefined;
  assert.ok(hit, `no image ${id} among ${images.map((i) => i.id).join(', ')}`);
  return hit;
};

const layerBlobs = (index: BundleIndex): number => index.blobs.filter((b) => b.diffId).length;

const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo'], { root: true });

describe('local files as image sources (real daemon, docker save, skopeo)', { skip }, () => {
  let d: Dockerd;
  let imgs: TestImages;
  let work: string;
  let legacy: string;
  let d25: Docker25Save;
  const diffIds = new Map<string, string[]>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-local-'));
    d = await startDockerd('local-sources');
    imgs = await buildTestImages(d);
    for (const id of [imgs.app, imgs.tool, imgs.untagged]) diffIds.set(id, JSON.parse(await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', id])));
    legacy = join(work, 'legacy.tar');
    await d.docker(['save', '-o', legacy, 'ferry-test/app:1', 'ferry-test/tool:2', imgs.untagged]);
    d25 = await docker25Save(legacy, work);
  });

  after(async () => {
    await d?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('docker-archive: a legacy docker save, every image under its RepoTags, IDs and diffIDs as the daemon has them', async () => {
    const listing = (await exec('tar', ['-tf', legacy])).stdout;
    assert.match(listing, /^[a-f0-9]{64}\/layer\.tar$/m, 'the daemon writes the legacy form');
    const p = await closing(new DockerArchiveSource(), (s) => pack(s, [`docker-archive:${legacy}`], work));
    assert.equal(p.images.length, 3);
    assert.deepEqual(byId(p.images, imgs.app).refs, ['docker.io/ferry-test/app:1']);
    assert.deepEqual(byId(p.images, imgs.tool).refs, ['docker.io/ferry-test/tool:2']);
    assert.deepEqual(byId(p.images, imgs.untagged).refs, []);
    for (const [id, want] of diffIds) assert.deepEqual(byId(p.images, id).diffIds, want, id);
    assert.equal(byId(p.images, imgs.app).platform.os, 'linux');
    // The shared base is read once: base, app's two, tool's and untagged's layers, and no layer handed over twice.
    assert.equal(p.layers, 5);
    assert.equal(p.repeats, 0);
    assert.equal(layerBlobs(p.index), 5);
    assert.deepEqual(p.index.images.map((i) => i.imageId).sort(), [imgs.app, imgs.tool, imgs.untagged].sort());
  });

  it('docker-archive:FILE:REF takes one image under that name, by tag or image ID; an unknown REF names what the file holds', async () => {
    const tool = await closing(new DockerArchiveSource(), (s) => pack(s, [`docker-archive:${legacy}:ferry-test/tool:2`], work));
    assert.deepEqual(tool.images.map((i) => [i.id, i.refs]), [[imgs.tool, ['docker.io/ferry-test/tool:2']]]);
    assert.equal(layerBlobs(tool.index), 2, 'base and tool layer only');
    const byIdPrefix = await closing(new DockerArchiveSource(), (s) => s.resolve([`docker-archive:${legacy}:${imgs.untagged.slice(7, 19)}`]));
    assert.deepEqual(byIdPrefix.images.map((i) => [i.id, i.refs]), [[imgs.untagged, []]]);
    await closing(new DockerArchiveSource(), (s) => rejects(s.resolve([`docker-archive:${legacy}:ferry-test/app:latest`]), 'IMAGE_NOT_FOUND', ['ferry-test/app:latest', 'ferry-test/tool:2', 'untagged']));
  });

  it("docker-archive: Docker 25's OCI-shaped save, also with ./ names", async () => {
    const p = await closing(new DockerArchiveSource(), (s) => pack(s, [`docker-archive:${d25.tar}`], work));
    assert.deepEqual(p.images.map((i) => i.id).sort(), [imgs.app, imgs.tool, imgs.untagged].sort());
    for (const [id, want] of diffIds) assert.deepEqual(byId(p.images, id).diffIds, want, id);
    assert.equal(layerBlobs(p.index), 5);
    const one = await closing(new DockerArchiveSource(), (s) => s.resolve([`docker-archive:${d25.dotTar}:ferry-test/app:1`]));
    assert.deepEqual(one.images.map((i) => [i.id, i.refs]), [[imgs.app, ['docker.io/ferry-test/app:1']]]);
  });

  it('oci-archive and oci: a Docker 25 save as an OCI layout, full names from io.containerd.image.name, manifests byte for byte', async () => {
    const warnings: string[] = [];
    const p = await closing(ociArchiveSource({ warn: (m) => warnings.push(m) }), (s) => pack(s, [`oci-archive:${d25.dotTar}`], work));
    assert.deepEqual(warnings, []);
    assert.deepEqual(byId(p.images, imgs.app).refs, ['docker.io/ferry-test/app:1']);
    assert.deepEqual(byId(p.images, imgs.untagged).refs, []);
    for (const img of p.index.images) assert.equal(img.manifest.digest, d25.manifests.get(img.imageId), `manifest of ${img.imageId} kept`);
    // A bare tag as Docker 25 writes it finds the image; it travels under the full name beside it.
    const tool = await closing(ociArchiveSource(), (s) => s.resolve([`oci-archive:${d25.tar}:2`]));
    assert.deepEqual(tool.images.map((i) => [i.id, i.refs]), [[imgs.tool, ['docker.io/ferry-test/tool:2']]]);
    const app = await closing(ociLayoutSource(), (s) => pack(s, [`oci:${d25.dir}:ferry-test/app:1`], work));
    assert.deepEqual(app.index.images.map((i) => [i.imageId, i.refs, i.manifest.digest]), [[imgs.app, ['docker.io/ferry-test/app:1'], d25.manifests.get(imgs.app)]]);
  });

  it('skopeo: oci:DIR:TAG and oci-archive:FILE:TAG, by tag and without; bare tags travel untagged, with one warning', async () => {
    const dir = join(work, 'skopeo-oci');
    const file = join(work, 'skopeo.oci.tar');
    const copy = (from: string, to: string) => exec('skopeo', ['copy', '--quiet', '--src-daemon-host', d.host, `docker-daemon:${from}`, to]);
    await copy('ferry-test/app:1', `oci:${dir}:app1`);
    await copy('ferry-test/tool:2', `oci:${dir}:tool2`);
    await copy('ferry-test/tool:2', `oci-archive:${file}:tool2`);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    const digestOf = (tag: string): string => index.manifests.find((m) => m.annotations['org.opencontainers.image.ref.name'] === tag)!.digest;
    // skopeo rewrites the config as OCI's, so the image ID is its config digest, not the daemon's; the diffIDs stay.
    const idOf = async (tag: string): Promise<string> => JSON.parse(await readFile(join(dir, 'blobs/sha256', digestOf(tag).slice(7)), 'utf8')).config.digest;
    const [appId, toolId] = [await idOf('app1'), await idOf('tool2')];

    const warnings: string[] = [];
    const layout = ociLayoutSource({ warn: (m) => warnings.push(m) });
    await closing(layout, async (s) => {
      const one = await s.resolve([`oci:${dir}:app1`]);
      assert.deepEqual(one.images.map((i) => [i.id, i.refs, i.manifest?.digest]), [[appId, [], digestOf('app1')]]);
      assert.deepEqual(one.images[0]!.diffIds, diffIds.get(imgs.app));
      const all = await s.resolve([`oci:${dir}`]);
      assert.deepEqual(all.images.map((i) => i.id).sort(), [appId, toolId].sort());
      await rejects(s.resolve([`oci:${dir}:app2`]), 'IMAGE_NOT_FOUND', ['app1', 'tool2']);
    });
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /app1/);

    const p = await closing(ociLayoutSource({ warn: () => undefined }), (s) => pack(s, [`oci:${dir}`], work));
    assert.deepEqual(p.index.images.map((i) => i.manifest.digest).sort(), [digestOf('app1'), digestOf('tool2')].sort());
    assert.equal(layerBlobs(p.index), 4, 'the shared base once');

    const a = await closing(ociArchiveSource({ warn: () => undefined }), (s) => pack(s, [`oci-archive:${file}:tool2`], work));
    assert.deepEqual(a.index.images.map((i) => [i.imageId, i.refs]), [[toolId, []]]);
    assert.deepEqual(
      a.index.images[0]!.layers.map((l) => l.diffId),
      diffIds.get(imgs.tool),
    );
    const all = await closing(ociArchiveSource({ warn: () => undefined }), (s) => s.resolve([`oci-archive:${file}`]));
    assert.deepEqual(all.images.map((i) => i.id), [toolId]);
  });

  it('bundle: a subset of a three-image bundle by reference or ID, and two bundles merged, manifests byte for byte', async () => {
    const three = await closing(new DockerArchiveSource(), (s) => pack(s, [`docker-archive:${legacy}`], work));
    const manifestOf = (id: string): string => three.index.images.find((i) => i.imageId === id)!.manifest.digest;

    const tool = await closing(bundleSource(), (s) => pack(s, [`bundle:${three.path}:ferry-test/tool:2`], work));
    assert.deepEqual(tool.index.images.map((i) => [i.imageId, i.refs, i.manifest.digest]), [[imgs.tool, ['docker.io/ferry-test/tool:2'], manifestOf(imgs.tool)]]);
    assert.equal(layerBlobs(tool.index), 2);
    const untagged = await closing(bundleSource(), (s) => s.resolve([`bundle:${three.path}:${imgs.untagged.slice(7, 19)}`]));
    assert.deepEqual(untagged.images.map((i) => [i.id, i.refs, i.manifest?.digest]), [[imgs.untagged, [], manifestOf(imgs.untagged)]]);
    await closing(bundleSource(), (s) => rejects(s.resolve([`bundle:${three.path}:ferry-test/nope:1`]), 'IMAGE_NOT_FOUND', ['ferry-test/nope:1', 'ferry-test/app:1', 'untagged']));

    const app = await closing(bundleSource(), (s) => pack(s, [`bundle:${three.path}:ferry-test/app:1`], work));
    const merged = await closing(bundleSource(), (s) => pack(s, [`bundle:${app.path}`, `bundle:${tool.path}`], work));
    assert.deepEqual(
      merged.index.images.map((i) => [i.imageId, i.refs, i.manifest.digest]).sort(),
      [
        [imgs.app, ['docker.io/ferry-test/app:1'], manifestOf(imgs.app)],
        [imgs.tool, ['docker.io/ferry-test/tool:2'], manifestOf(imgs.tool)],
      ].sort(),
    );
    assert.equal(layerBlobs(merged.index), 4, 'the base both bundles hold is stored once');
    const originalBlobs = new Set(three.index.blobs.map((b) => b.digest));
    assert.ok(merged.index.blobs.every((b) => originalBlobs.has(b.digest)), 'every blob kept byte for byte');
  });

  it('the command line: one `ferry pack` mixing docker-archive, oci, oci-archive and bundle sources shares layers, verifies and loads', async () => {
    const first = join(work, 'cli-first.ferry.tar');
    const one = await ferry(['pack', `docker-archive:${legacy}:ferry-test/app:1`, '-o', first]);
    assert.equal(one.code, 0, one.stderr);
    const mixed = join(work, 'cli-mixed.ferry.tar');
    const run = await ferry(['pack', `bundle:${first}`, `oci:${join(work, 'skopeo-oci')}:tool2`, `oci-archive:${d25.tar}:docker.io/ferry-test/tool:2`, `docker-archive:${legacy}:${imgs.untagged.slice(7, 19)}`, '-o', mixed, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /warning: .*tool2.*untagged/);
    const out = JSON.parse(run.stdout) as { images: { refs: string[]; imageId: string }[]; layers: number };
    assert.ok(out.images.some((i) => i.imageId === imgs.app && i.refs.includes('docker.io/ferry-test/app:1')));
    assert.ok(out.images.some((i) => i.imageId === imgs.untagged));
    const index = JSON.parse((await exec('tar', ['-xOf', mixed, 'ferry.json'])).stdout) as BundleIndex;
    const ids = index.blobs.filter((b) => b.diffId).map((b) => b.diffId);
    // gzip or zstd copies of one layer may both be kept (their digests are pinned by manifests), but the base
    // layer from the bundle is reused by the daemon-format images rather than compressed again.
    const untaggedImage = index.images.find((i) => i.imageId === imgs.untagged)!;
    const appImage = index.images.find((i) => i.imageId === imgs.app)!;
    assert.equal(untaggedImage.layers[0]!.digest, appImage.layers[0]!.digest, 'the base blob is shared');
    assert.ok(ids.length >= 4);
    assert.equal((await ferry(['verify', mixed])).code, 0);
    const missingFile = await ferry(['pack', `docker-archive:${join(work, 'nope.tar')}`, '-o', join(work, 'x.tar')]);
    assert.equal(missingFile.code, 2, missingFile.stderr);
    assert.match(missingFile.stderr, /nope\.tar/);
  });

});

/** A one-layer image made by hand, as an OCI layout directory. */
async function tinyLayout(dir: string, names: Record<string, string> = { 'org.opencontainers.image.ref.name': 'docker.io/example/tiny:1' }): Promise<{ id: string; manifest: string; layer: Buffer; config: Buffer }> {
  const layer = tarBytes([{ name: 'hello.txt', data: Buffer.from('hello\n') }]);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, config: {} }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
    }),
  );
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const b of [layer, config, manifest]) await writeFile(join(dir, 'blobs/sha256', sha(b).slice(7)), b);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: names }] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return { id: sha(config), manifest: sha(manifest), layer, config };
}

describe('local sources refuse bad files with FerryErrors', () => {
  let work: string;
  let text: string;
  let layout: string;
  let tiny: Awaited<ReturnType<typeof tinyLayout>>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-local-bad-'));
    text = join(work, 'notes.txt');
    await writeFile(text, 'these are not the images you are looking for\n'.repeat(40));
    layout = join(work, 'tiny');
    tiny = await tinyLayout(layout);
  });

  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('splits NAME at the first colon, as skopeo does', () => {
    assert.deepEqual(splitLocation('oci:/srv/x:docker.io/library/nginx:1.27', 'oci:'), { location: '/srv/x', ref: 'docker.io/library/nginx:1.27' });
    assert.deepEqual(splitLocation('docker-archive:a.tar', 'docker-archive:'), { location: 'a.tar' });
    assert.throws(() => splitLocation('bundle::x', 'bundle:'), (e: unknown) => e instanceof FerryError && e.code === 'USAGE');
  });

  it('a missing file or directory is a usage error naming it', async () => {
    const gone = join(work, 'gone.tar');
    await closing(new DockerArchiveSource(), (s) => rejects(s.resolve([`docker-archive:${gone}`]), 'USAGE', [gone, 'no such file']));
    await closing(ociArchiveSource(), (s) => rejects(s.resolve([`oci-archive:${gone}`]), 'USAGE', [gone, 'no such file']));
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${gone}`]), 'USAGE', [gone, 'no such directory']));
    await closing(bundleSource(), (s) => rejects(s.resolve([`bundle:${gone}`]), 'USAGE', [gone, 'no such file']));
  });

  it('a text file is no archive, a directory without oci-layout no layout', async () => {
    await closing(new DockerArchiveSource(), (s) => rejects(s.resolve([`docker-archive:${text}`]), 'USAGE', [text, 'not a tar']));
    await closing(ociArchiveSource(), (s) => rejects(s.resolve([`oci-archive:${text}`]), 'USAGE', [text, 'not a tar']));
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${text}`]), 'USAGE', [text, 'not a directory']));
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${work}`]), 'USAGE', [work, 'no oci-layout file']));
    // A bundle that is not one is refused as `ferry verify` refuses it.
    await closing(bundleSource(), (s) => rejects(s.resolve([`bundle:${text}`]), 'BUNDLE_INVALID', [text, 'not a tar']));
    // An OCI archive named as a docker archive is pointed at the right transport.
    const ociTar = join(work, 'tiny.tar');
    await exec('tar', ['-C', layout, '-cf', ociTar, '.']);
    const err = await closing(new DockerArchiveSource(), (s) => rejects(s.resolve([`docker-archive:${ociTar}`]), 'USAGE', ['no manifest.json']));
    assert.match(err.hint ?? '', /oci-archive:/);
  });

  it('a hand-made layout reads by full name and by digest; an absent name says what the layout holds', async () => {
    const p = await closing(ociLayoutSource(), (s) => pack(s, [`oci:${layout}:example/tiny:1`], work));
    assert.deepEqual(p.index.images.map((i) => [i.imageId, i.refs, i.manifest.digest]), [[tiny.id, ['docker.io/example/tiny:1'], tiny.manifest]]);
    const byDigest = await closing(ociLayoutSource(), (s) => s.resolve([`oci:${layout}:${tiny.manifest}`]));
    assert.deepEqual(byDigest.images.map((i) => [i.id, i.refs]), [[tiny.id, []]]);
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${layout}:example/tiny:2`]), 'IMAGE_NOT_FOUND', ['example/tiny:2', 'docker.io/example/tiny:1']));
    // The same image as a bundle source, after the bundle it went into.
    const again = await closing(bundleSource(), (s) => pack(s, [`bundle:${p.path}`], work));
    assert.equal(again.index.images[0]!.manifest.digest, tiny.manifest);
  });

  it('bundle: a kept multi-platform index travels by its reference (indexes[].refs), whole or as one platform', async () => {
    const dir = join(work, 'multi');
    const amd = await tinyLayout(dir);
    const armConfig = Buffer.from(JSON.stringify({ ...JSON.parse(amd.config.toString()), architecture: 'arm64', variant: 'v8' }));
    const amdManifest = await readFile(join(dir, 'blobs/sha256', amd.manifest.slice(7)));
    const armManifest = Buffer.from(amdManifest.toString().replace(sha(amd.config), sha(armConfig)).replace(`"size":${amd.config.length}`, `"size":${armConfig.length}`));
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.manifest, size: amdManifest.length, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(armManifest), size: armManifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      }),
    );
    for (const b of [armConfig, armManifest, index]) await writeFile(join(dir, 'blobs/sha256', sha(b).slice(7)), b);
    const top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'docker.io/example/multi:1' } };
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [top] }));

    const kept = await closing(ociLayoutSource(), (s) => pack(s, [`oci:${dir}`], work, { allPlatforms: true }));
    assert.deepEqual(kept.index.indexes?.map((x) => [x.digest, x.refs]), [[sha(index), ['docker.io/example/multi:1']]]);
    const whole = await closing(bundleSource(), (s) => pack(s, [`bundle:${kept.path}:example/multi:1`], work, { allPlatforms: true }));
    assert.deepEqual(whole.index.indexes?.map((x) => [x.digest, x.refs, x.images.length]), [[sha(index), ['docker.io/example/multi:1'], 2]]);
    assert.deepEqual(whole.index.images.map((i) => i.manifest.digest).sort(), [amd.manifest, sha(armManifest)].sort());
    // Without --all-platforms one platform is taken, under the index's name; the other is not taken on its own.
    const one = await closing(bundleSource(), (s) => s.resolve([`bundle:${kept.path}`], { platforms: [{ os: 'linux', architecture: 'arm64' }] }));
    assert.deepEqual(one.images.map((i) => [i.manifest?.digest, i.refs]), [[sha(armManifest), ['docker.io/example/multi:1']]]);
    assert.deepEqual(one.indexes, []);
  });

  it('index.json digests that climb out of the layout, and blobs that link out of it, are refused', async () => {
    const canary = join(work, 'canary');
    await writeFile(canary, '{"schemaVersion":2}');
    const bad = join(work, 'climb');
    await tinyLayout(bad);
    const index = JSON.parse(await readFile(join(bad, 'index.json'), 'utf8'));
    index.manifests[0].digest = `sha256:../../../canary`;
    await writeFile(join(bad, 'index.json'), JSON.stringify(index));
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${bad}`]), 'RUNTIME', ['index.json entry 1', 'not sha256:']));

    const linked = join(work, 'linked');
    const t = await tinyLayout(linked);
    const blob = join(linked, 'blobs/sha256', t.manifest.slice(7));
    await rm(blob);
    await symlink(canary, blob);
    await closing(ociLayoutSource(), (s) => rejects(s.resolve([`oci:${linked}`]), 'RUNTIME', ['leads outside the layout']));
  });

  it('oci-archive refuses links and climbing names where layout files belong', async () => {
    const files = [
      { name: 'oci-layout', data: await readFile(join(layout, 'oci-layout')) },
      { name: 'index.json', data: await readFile(join(layout, 'index.json')) },
    ];
    const blobs = [tiny.layer, tiny.config].map((b) => ({ name: `blobs/sha256/${sha(b).slice(7)}`, data: b }));
    const link = join(work, 'link.tar');
    await writeFile(link, tarBytes([...files, ...blobs, { name: `blobs/sha256/${tiny.manifest.slice(7)}`, type: '2', linkname: '/etc/passwd' }]));
    await closing(ociArchiveSource(), (s) => rejects(s.resolve([`oci-archive:${link}`]), 'RUNTIME', ['symbolic link']));
    const climb = join(work, 'climb.tar');
    await writeFile(climb, tarBytes([...files, { name: '../../escape', data: Buffer.from('x') }]));
    await closing(ociArchiveSource(), (s) => rejects(s.resolve([`oci-archive:${climb}`]), 'RUNTIME', ['climbs out']));
    const whole = join(work, 'whole.tar');
    const manifestBytes = await readFile(join(layout, 'blobs/sha256', tiny.manifest.slice(7)));
    await writeFile(whole, tarBytes([...files.map((f) => ({ ...f, name: `./${f.name}` })), ...blobs, { name: `./blobs/sha256/${tiny.manifest.slice(7)}`, data: manifestBytes }]));
    const ok = await closing(ociArchiveSource(), (s) => s.resolve([`oci-archive:${whole}:docker.io/example/tiny:1`]));
    assert.deepEqual(ok.images.map((i) => i.id), [tiny.id]);
  });

  it('docker-archive: a layer that does not hash to its diffID fails the export, naming the layer', async () => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('something else')] } }));
    const file = join(work, 'lying.tar');
    const cfgName = `${sha(config).slice(7)}.json`;
    await writeFile(
      file,
      tarBytes([
        { name: 'abc/layer.tar', data: tiny.layer },
        { name: cfgName, data: config },
        { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: ['lying:1'], Layers: ['abc/layer.tar'] }])) },
      ]),
    );
    await closing(new DockerArchiveSource(), async (s) => {
      const r = await s.resolve([`docker-archive:${file}:lying:1`]);
      assert.deepEqual(r.images[0]!.refs, ['docker.io/library/lying:1']);
      const sink = {
        has: () => false,
        wantsBlob: () => true,
        put: async (body: AsyncIterable<Buffer>) => {
          const h = createHash('sha256');
          for await (const c of body) h.update(c);
          return `sha256:${h.digest('hex')}` as never;
        },
        putBlob: async () => assert.fail('no blobs from a docker archive'),
        putOpaque: async () => assert.fail('no blobs from a docker archive'),
        hasOpaque: () => false,
      };
      await rejects(s.export(r.images, sink), 'RUNTIME', ['abc/layer.tar', sha(tiny.layer)]);
    });
  });
});
