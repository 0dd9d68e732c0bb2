// End to end with real engines: pack from a source dockerd, inspect, verify, load into an empty target dockerd.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { startEngineProxy } from './helpers/engine-proxy.js';
import { spawn } from 'node:child_process';
import { FERRY_BIN, ferry, json } from './helpers/ferry.js';
import { checkJson } from './helpers/json-schemas.js';
import { missing } from './helpers/tools.js';
import { listTar, readTarEntry } from './helpers/tar.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });

describe('bundles through Docker daemons', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let imgs: TestImages;
  let work: string;
  let bundle: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-work-'));
    [src, dst] = await Promise.all([startDockerd('src'), startDockerd('dst')]);
    imgs = await buildTestImages(src);
    bundle = join(work, 'week47.ferry.tar');
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('packs several images by tag and by ID, each layer stored once', async () => {
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/app:latest', 'ferry-test/tool:2', imgs.untagged, '-o', bundle, '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const out = json<{ images: { refs: string[]; imageId: string }[]; layers: number }>(run);
    assert.equal(out.images.length, 3);
    const app = out.images.find((i) => i.imageId === imgs.app)!;
    assert.deepEqual(app.refs.sort(), ['docker.io/ferry-test/app:1', 'docker.io/ferry-test/app:latest']);
    assert.deepEqual(out.images.find((i) => i.imageId === imgs.untagged)!.refs, []);
    // base + app's two COPY layers + tool's layer + untagged's layer: the shared base once.
    assert.equal(out.layers, 5);

    const entries = await listTar(bundle);
    const names = entries.map((e) => e.name);
    assert.equal(new Set(names).size, names.length, 'no duplicate entries');
    for (const n of ['oci-layout', 'index.json', 'manifest.json', 'ferry.json']) assert.ok(names.includes(n), n);
    assert.ok(names.every((n) => ['oci-layout', 'index.json', 'manifest.json', 'ferry.json'].includes(n) || /^blobs\/sha256\/[a-f0-9]{64}$/.test(n)), names.join(','));
    assert.equal(entries.find((e) => e.name === 'ferry.json')?.type, 'file');
    // No temp file left beside it.
    assert.deepEqual((await readdir(work)).filter((f) => f !== 'week47.ferry.tar'), []);
  });

  it('writes ferry.json that matches its JSON Schema and index.json named by full references', async () => {
    const ferryJson = JSON.parse((await readTarEntry(bundle, 'ferry.json')).toString()) as { blobs: { diffId?: string; mediaType: string; uncompressedSize: number }[] };
    const schema = JSON.parse(await readFile(new URL('../schemas/ferry-bundle-v1.schema.json', import.meta.url), 'utf8'));
    const validate = new Ajv({ strict: true }).compile(schema);
    assert.ok(validate(ferryJson), JSON.stringify(validate.errors));
    const layerBlobs = ferryJson.blobs.filter((b) => b.diffId);
    for (const b of layerBlobs) {
      assert.equal(b.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
      assert.ok(b.uncompressedSize > 0);
    }
    const index = JSON.parse((await readTarEntry(bundle, 'index.json')).toString());
    const names = index.manifests.map((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name']).filter(Boolean).sort();
    assert.deepEqual(names, ['docker.io/ferry-test/app:1', 'docker.io/ferry-test/app:latest', 'docker.io/ferry-test/tool:2']);
    for (const m of index.manifests) {
      if (m.annotations) assert.equal(m.annotations['io.containerd.image.name'], m.annotations['org.opencontainers.image.ref.name']);
    }
    assert.equal(index.manifests.length, 4, 'one descriptor per tag plus one for the untagged image');
    const manifest = JSON.parse((await readTarEntry(bundle, 'manifest.json')).toString());
    const appEntry = manifest.find((e: { Config: string }) => e.Config === `blobs/sha256/${imgs.app.slice(7)}`);
    // Full references: docker load reads them as its short ones, and podman does not file them under localhost/.
    assert.deepEqual(appEntry.RepoTags.sort(), ['docker.io/ferry-test/app:1', 'docker.io/ferry-test/app:latest']);
    assert.equal(appEntry.Layers.length, 3);
    assert.ok(appEntry.Layers.every((l: string) => l.startsWith('blobs/sha256/')));
  });

  it('inspect shows images, tags, shared layers and sizes', async () => {
    const run = await ferry(['inspect', bundle, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const v = json<{ images: { refs: string[]; layers: { shared: boolean; size: number }[] }[]; totals: { sharedLayers: number; layers: number } }>(run);
    assert.equal(v.totals.layers, 5);
    assert.equal(v.totals.sharedLayers, 3, 'the base is shared by all three; app layers by app and untagged');
    const tool = v.images.find((i) => i.refs.includes('docker.io/ferry-test/tool:2'))!;
    assert.equal(tool.layers[0]!.shared, true);
    assert.equal(tool.layers[1]!.shared, false);
    const text = await ferry(['inspect', bundle]);
    assert.match(text.stdout, /ferry-test\/app:1, ferry-test\/app:latest/);
    assert.match(text.stdout, /<untagged>/);
    assert.match(text.stdout, /\[shared\]/);
  });

  it('verify passes a good bundle', async () => {
    const run = await ferry(['verify', bundle, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(json<{ ok: boolean }>(run).ok, true);
  });

  it('loads into an empty daemon with the same image IDs under retagged names', async () => {
    const run = await ferry(['load', bundle, '--retag', 'docker.io/ferry-test/=registry.local/mirror/', '--retag', 'ferry-test/tool:2=tool:prod', '--json'], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    const ids = async (ref: string): Promise<string> => (await dst.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).trim();
    assert.equal(await ids('registry.local/mirror/app:1'), imgs.app);
    assert.equal(await ids('registry.local/mirror/app:latest'), imgs.app);
    assert.equal(await ids('tool:prod'), imgs.tool);
    assert.equal(await ids(imgs.untagged), imgs.untagged);
    await assert.rejects(ids('ferry-test/app:1'), 'the original name was rewritten, not added');
    // The Docker daemon's load output keeps the shape of schemas/cli/load.json (containerd's: json-output.test.ts).
    const out = checkJson('load', json<{ images: { imageId: string; refs: string[]; layersSent: number }[] }>(run));
    assert.equal(out.images.reduce((s, i) => s + i.layersSent, 0), 5, 'each layer sent once');
    // Plain progress has a line for every layer sent, with bytes of the total: as many as the summary counts.
    const progress = run.stderr.split('\n').filter((l) => /^ {2}layer \d+ sent \(/.test(l));
    assert.equal(progress.length, 5, run.stderr);
    assert.match(progress.at(-1)!, /^ {2}layer 5 sent .* of .*\(\d+%\), .*\/s/);
    assert.deepEqual(out.images.find((i) => i.imageId === imgs.tool)?.refs, ['docker.io/library/tool:prod']);
  });

  it('a second load sends no layers and only adds the new names', async () => {
    const run = await ferry(['load', bundle, 'ferry-test/app:1', '--json'], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    const out = json<{ images: { imageId: string; layersSent: number }[] }>(run);
    assert.deepEqual(out.images.map((i) => [i.imageId, i.layersSent]), [[imgs.app, 0]]);
    assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim(), imgs.app);
    await assert.rejects(dst.docker(['image', 'inspect', 'ferry-test/tool:2']), 'only the named image was tagged');
  });

  it('`cat BUNDLE | ferry load`: the pipe is spooled, unlinked once open, and every layer read through the open file', async () => {
    const fresh = await startDockerd('piped');
    const tmp = await mkdtemp(join(work, 'tmp-'));
    try {
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const p = spawn('bash', ['-c', 'cat "$1" | "$2" "$3" load --json', 'bash', bundle, process.execPath, FERRY_BIN], { env: { ...process.env, DOCKER_HOST: fresh.host, TMPDIR: tmp, FERRY_CACHE: 'off' }, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        p.stderr!.on('data', (d) => (stderr += d));
        p.on('error', reject);
        p.on('close', (code) => resolve({ code, stderr }));
      });
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await fresh.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim(), imgs.app);
      assert.deepEqual(await readdir(tmp), [], 'the spooled copy is gone');
    } finally {
      await fresh.stop();
    }
  });

  it('reads image lists from plain and YAML files', async () => {
    const plain = join(work, 'images.txt');
    await writeFile(plain, '# weekly\nferry-test/tool:2\n\nferry-test/base:1  # the base\n');
    const yaml = join(work, 'images.yaml');
    await writeFile(yaml, 'images:\n  - ferry-test/tool:2\n  - name: ferry-test/base:1\n');
    for (const f of [plain, yaml]) {
      const out = join(work, `list-${f.endsWith('yaml') ? 'yaml' : 'txt'}.ferry.tar`);
      const run = await ferry(['pack', '-f', f, '-o', out, '--json', '--compression', 'gzip'], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      const refs = json<{ images: { refs: string[] }[] }>(run).images.flatMap((i) => i.refs).sort();
      assert.deepEqual(refs, ['docker.io/ferry-test/base:1', 'docker.io/ferry-test/tool:2']);
    }
  });

  it('packs with gzip and none so that plain `docker load` on Docker 20.10 reads the bundle', async () => {
    for (const c of ['gzip', 'none']) {
      const out = join(work, `plain-${c}.ferry.tar`);
      const run = await ferry(['pack', 'ferry-test/app:1', '-o', out, '--compression', c], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
      const fresh = await startDockerd(`plain-${c}`);
      try {
        await fresh.docker(['load', '-i', out]);
        assert.equal((await fresh.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/app:1'])).trim(), imgs.app);
      } finally {
        await fresh.stop();
      }
      assert.ok((await stat(out)).size > 0);
    }
  });

  it('images that branch off a shared base load as several requests: the base first, then the branches side by side', async () => {
    const branches = join(work, 'branches.ferry.tar');
    const packed = await ferry(['pack', 'ferry-test/base:1', 'ferry-test/tool:2', 'ferry-test/app:1', imgs.untagged, '-o', branches], { dockerHost: src.host });
    assert.equal(packed.code, 0, packed.stderr);
    const fresh = await startDockerd('branches');
    // Through a proxy that sees each load request: when it began and ended.
    const proxy = await startEngineProxy(fresh.host, work);
    try {
      const run = await ferry(['load', branches, '--json'], { dockerHost: proxy.host });
      assert.equal(run.code, 0, run.stderr);
      for (const [ref, id] of [['ferry-test/base:1', imgs.base], ['ferry-test/tool:2', imgs.tool], ['ferry-test/app:1', imgs.app], [imgs.untagged, imgs.untagged]]) {
        assert.equal((await fresh.docker(['image', 'inspect', '--format', '{{.Id}}', ref!])).trim(), id, ref);
      }
      const out = json<{ images: { layersSent: number }[] }>(run);
      assert.equal(out.images.reduce((n, i) => n + i.layersSent, 0), 5, 'each layer sent once');
      // base alone; then tool (one layer on the base) beside app and the image built on it (one chain, one request).
      // The branches may upload while the base is registered (their requests may even arrive first), but their
      // uploads end (the daemon's cue to register) only once the base's request is done: else they would fail.
      const [first, ...rest] = [...proxy.loads].sort((a, b) => a.end! - b.end!);
      assert.equal(proxy.loads.length, 3, 'three load requests');
      assert.ok(proxy.loads.every((l) => l.status === 200));
      assert.ok(rest.every((l) => l.uploaded! >= first!.end!), 'no branch finished its upload before the base was loaded');
      assert.ok(rest[1]!.start < rest[0]!.end! && rest[0]!.start < rest[1]!.end!, 'the two branches were loaded side by side');
    } finally {
      await proxy.close();
      await fresh.stop();
    }
  });
});
