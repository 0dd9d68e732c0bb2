// Interop: skopeo reads what ferry writes (oci-archive and docker-archive); DOCKER_HOST over tcp; images named by digest.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { freePort, startRegistry, type Registry } from './helpers/registry.js';
import { readTarEntry } from './helpers/tar.js';
import { missing } from './helpers/tools.js';

const exec = promisify(execFile);
const skopeo = async (...args: string[]): Promise<string> => (await exec('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 })).stdout;
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo', 'docker-registry'], { root: true });

describe('interop', { skip }, () => {
  let src: Dockerd;
  let imgs: TestImages;
  let reg: Registry;
  let work: string;
  let tcpPort: number;
  const bundles: Record<string, string> = {};

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-interop-'));
    tcpPort = await freePort();
    [src, reg] = await Promise.all([startDockerd('interop', { tcpPort }), startRegistry()]);
    imgs = await buildTestImages(src);
    for (const c of ['zstd', 'gzip', 'none']) {
      bundles[c] = join(work, `${c}.ferry.tar`);
      const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/tool:2', '-o', bundles[c]!, '--compression', c], { dockerHost: src.host });
      assert.equal(run.code, 0, run.stderr);
    }
  });

  after(async () => {
    await Promise.all([src?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const c of ['zstd', 'gzip', 'none']) {
    it(`skopeo reads a ${c} bundle as oci-archive: manifests, configs and blobs keep their digests`, async () => {
      const b = bundles[c]!;
      const index = JSON.parse((await readTarEntry(b, 'ferry.json')).toString()) as { images: { refs: string[]; manifest: { digest: string }; imageId: string; layers: { digest: string }[] }[] };
      for (const img of index.images) {
        const ref = img.refs[0]!;
        const raw = await skopeo('inspect', '--raw', `oci-archive:${b}:${ref}`);
        assert.equal(sha256(raw), img.manifest.digest, `${ref} manifest digest`);
        const config = await skopeo('inspect', '--config', '--raw', `oci-archive:${b}:${ref}`);
        assert.equal(sha256(config), img.imageId, `${ref} config digest is the image ID`);
        const out = join(work, `copy-${c}-${img.imageId.slice(7, 19)}`);
        await skopeo('copy', '--preserve-digests', `oci-archive:${b}:${ref}`, `dir:${out}`);
        const files = await readdir(out);
        for (const l of img.layers) {
          const hex = l.digest.slice(7);
          assert.ok(files.includes(hex), `layer ${hex} copied out under its digest`);
          assert.equal(sha256(await readFile(join(out, hex))), l.digest);
        }
        assert.equal(sha256(await readFile(join(out, 'manifest.json'))), img.manifest.digest);
      }
    });

    it(`skopeo reads a ${c} bundle as docker-archive`, async () => {
      const b = bundles[c]!;
      const out = JSON.parse(await skopeo('inspect', `docker-archive:${b}:ferry-test/app:1`)) as { Layers: string[] };
      assert.equal(out.Layers.length, 3);
      const config = await skopeo('inspect', '--config', '--raw', `docker-archive:${b}:ferry-test/app:1`);
      assert.equal(sha256(config), imgs.app);
    });
  }

  it('packs through DOCKER_HOST=tcp://127.0.0.1:PORT', async () => {
    const out = join(work, 'tcp.ferry.tar');
    const run = await ferry(['pack', 'ferry-test/base:1', '-o', out, '--json'], { dockerHost: `tcp://127.0.0.1:${tcpPort}` });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(json<{ images: { imageId: string }[] }>(run).images[0]!.imageId, imgs.base);
  });

  it('packs an image named by repository digest, and by short ID', async () => {
    const name = `${reg.host}/ferry-test/tool`;
    await src.docker(['tag', 'ferry-test/tool:2', `${name}:2`]);
    await src.docker(['push', `${name}:2`]);
    const digests = (await src.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${name}:2`])).trim();
    const byDigest = (JSON.parse(digests) as string[])[0]!;
    assert.match(byDigest, /@sha256:[a-f0-9]{64}$/);
    const out = join(work, 'digest.ferry.tar');
    const run = await ferry(['pack', byDigest, imgs.base.slice(7, 19), '-o', out, '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const ids = json<{ images: { imageId: string; refs: string[] }[] }>(run).images.map((i) => i.imageId).sort();
    assert.deepEqual(ids, [imgs.base, imgs.tool].sort());
  });
});
