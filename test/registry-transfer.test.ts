// Registries end to end: pack from one real registry (digests kept, platforms picked or kept whole), push to
// another (skip, mount, upload; zstd turned into gzip for Docker 20.10), then `docker pull` and check files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { ferry, json } from './helpers/ferry.js';
import { checkJson } from './helpers/json-schemas.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { htpasswdLine } from './helpers/htpasswd.js';
import { readTarEntry } from './helpers/tar.js';
import { serve } from './helpers/serve.js';
import { missing } from './helpers/tools.js';

const exec = promisify(execFile);
const skopeo = async (...args: string[]): Promise<string> => (await exec('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 })).stdout;
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const htpasswd = htpasswdLine('ferry', 's3cret');
const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo', 'docker-registry'], { root: true });

/** rawDigest is the digest of what the registry serves for a reference, read by skopeo (an independent reader). */
async function rawDigest(ref: string): Promise<string> {
  return sha256(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${ref}`));
}

async function putBlob(host: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location')!, `http://${host}`);
  location.searchParams.set('digest', digest);
  const res = await fetch(location, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

async function putManifest(host: string, repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<string> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': mediaType } });
  assert.equal(res.status, 201, await res.text());
  return sha256(bytes);
}

async function getManifest(host: string, repo: string, ref: string): Promise<Buffer> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { accept: `${DOCKER_MANIFEST}, ${MANIFEST_LIST}, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json` } });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

interface Packed {
  images: { refs: string[]; imageId: string; manifest: string; platform: { os: string; architecture: string; variant?: string } }[];
  indexes: { refs: string[]; digest: string; images: number }[];
}

describe('registries end to end', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let imgs: TestImages;
  let a: Registry;
  let b: Registry;
  let work: string;
  let multi: { index: string; attested: string; amd64: string; arm64: string; arm: string };
  let attestationDigest: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-registries-'));
    [src, dst, a, b] = await Promise.all([startDockerd('regsrc'), startDockerd('regdst'), startRegistry(), startRegistry()]);
    imgs = await buildTestImages(src);
    // Registry A gets the test images as `docker push` would make them: Docker v2 manifests, gzip layers.
    for (const ref of ['ferry-test/app:1', 'ferry-test/tool:2']) {
      await skopeo('copy', '--src-daemon-host', src.host, '--dest-tls-verify=false', `docker-daemon:${ref}`, `docker://${a.host}/${ref}`);
    }
    // A three-platform manifest list: the app's layers under configs that claim arm64/v8 and arm/v7 too.
    const amd64Bytes = await getManifest(a.host, 'ferry-test/app', '1');
    const amd64 = JSON.parse(amd64Bytes.toString()) as { config: { digest: string; size: number } };
    const configRes = await fetch(`http://${a.host}/v2/ferry-test/app/blobs/${amd64.config.digest}`);
    const config = JSON.parse(await configRes.text()) as Record<string, unknown>;
    const variant = async (arch: string, v: string): Promise<{ digest: string; size: number }> => {
      const cfg = Buffer.from(JSON.stringify({ ...config, architecture: arch, variant: v }));
      const cd = await putBlob(a.host, 'multi/app', cfg);
      const m = Buffer.from(JSON.stringify({ ...amd64, config: { ...amd64.config, digest: cd, size: cfg.length } }));
      return { digest: await putManifest(a.host, 'multi/app', sha256(m), m, DOCKER_MANIFEST), size: m.length };
    };
    // Layers must be in multi/app too: mount them from ferry-test/app.
    for (const l of (JSON.parse(amd64Bytes.toString()) as { layers: { digest: string }[] }).layers) {
      const res = await fetch(`http://${a.host}/v2/multi/app/blobs/uploads/?mount=${l.digest}&from=ferry-test/app`, { method: 'POST' });
      assert.equal(res.status, 201);
    }
    await putBlob(a.host, 'multi/app', Buffer.from(await (await fetch(`http://${a.host}/v2/ferry-test/app/blobs/${amd64.config.digest}`)).arrayBuffer()));
    const amd = { digest: await putManifest(a.host, 'multi/app', sha256(amd64Bytes), amd64Bytes, DOCKER_MANIFEST), size: amd64Bytes.length };
    const arm64 = await variant('arm64', 'v8');
    const arm = await variant('arm', 'v7');
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_LIST,
        manifests: [
          { mediaType: DOCKER_MANIFEST, ...amd, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: DOCKER_MANIFEST, ...arm64, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
          { mediaType: DOCKER_MANIFEST, ...arm, platform: { architecture: 'arm', os: 'linux', variant: 'v7' } },
        ],
      }),
    );
    // An OCI index as buildx makes it: two platforms and an attestation manifest (not an image) for one of them.
    const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://slsa.dev/provenance/v0.2' }));
    const emptyConfig = Buffer.from('{}');
    const attestation = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await putBlob(a.host, 'multi/app', emptyConfig), size: emptyConfig.length },
        layers: [{ mediaType: 'application/vnd.in-toto+json', digest: await putBlob(a.host, 'multi/app', statement), size: statement.length }],
      }),
    );
    const attDigest = await putManifest(a.host, 'multi/app', sha256(attestation), attestation, 'application/vnd.oci.image.manifest.v1+json');
    attestationDigest = attDigest;
    const attested = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: DOCKER_MANIFEST, ...amd, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: DOCKER_MANIFEST, ...arm64, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: attDigest,
            size: attestation.length,
            platform: { architecture: 'unknown', os: 'unknown' },
            annotations: { 'vnd.docker.reference.digest': amd.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
          },
        ],
      }),
    );
    multi = {
      index: await putManifest(a.host, 'multi/app', '1', list, MANIFEST_LIST),
      attested: await putManifest(a.host, 'multi/app', 'attested', attested, 'application/vnd.oci.image.index.v1+json'),
      amd64: amd.digest,
      arm64: arm64.digest,
      arm: arm.digest,
    };
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), a?.stop(), b?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('registry -> bundle -> registry keeps manifest digests and gzip layers byte for byte', async () => {
    const out = join(work, 'reg.ferry.tar');
    const pack = await ferry(['pack', `docker://${a.host}/ferry-test/app:1`, `docker://${a.host}/ferry-test/tool:2`, '-o', out, '--json']);
    assert.equal(pack.code, 0, pack.stderr);
    const packed = json<Packed>(pack);
    const want = await rawDigest(`${a.host}/ferry-test/app:1`);
    assert.equal(packed.images.find((i) => i.refs[0] === `${a.host}/ferry-test/app:1`)?.manifest, want);
    const index = JSON.parse((await readTarEntry(out, 'ferry.json')).toString()) as { blobs: { mediaType: string; diffId?: string }[] };
    const layers = index.blobs.filter((x) => x.diffId);
    assert.ok(layers.length >= 3 && layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'), 'layers stay gzip');
    assert.equal((await ferry(['verify', out])).code, 0);

    const push = await ferry(['push', out, '--to', b.host, '--json']);
    assert.equal(push.code, 0, push.stderr);
    const pushed = json<{ images: { name: string; digest: string }[]; blobs: { uploaded: number; mounted: number; present: number } }>(push);
    assert.equal(await rawDigest(`${b.host}/ferry-test/app:1`), want, 'same manifest digest on the second registry (skopeo)');
    assert.equal(await rawDigest(`${b.host}/ferry-test/tool:2`), await rawDigest(`${a.host}/ferry-test/tool:2`));
    assert.equal(pushed.images.find((i) => i.name === `${b.host}/ferry-test/app:1`)?.digest, want);
    // The base layer is shared by app and tool, which live in two repositories: the second gets it mounted.
    assert.ok(pushed.blobs.mounted >= 1, `a shared layer was mounted, not uploaded again: ${JSON.stringify(pushed.blobs)}`);

    const again = json<{ blobs: { uploaded: number; present: number } }>(await ferry(['push', out, '--to', b.host, '--json']));
    assert.equal(again.blobs.uploaded, 0, 'a second push uploads nothing');
  });

  it('a bundle packed from a registry loads into a daemon (gzip layers) with the same image ID', async () => {
    const out = join(work, 'load.ferry.tar');
    assert.equal((await ferry(['pack', `docker://${a.host}/ferry-test/app:1`, '-o', out])).code, 0);
    const load = await ferry(['load', out, '--retag', `${a.host}/=loaded/`], { dockerHost: dst.host });
    assert.equal(load.code, 0, load.stderr);
    assert.equal((await dst.docker(['image', 'inspect', '-f', '{{.Id}}', 'loaded/ferry-test/app:1'])).trim(), imgs.app);
  });

  it('--platform picks one image from an index; several make a filtered index; --all-platforms keeps it whole', async () => {
    const one = join(work, 'arm64.ferry.tar');
    const r1 = await ferry(['pack', `docker://${a.host}/multi/app:1`, '--platform', 'linux/arm64', '-o', one, '--json']);
    assert.equal(r1.code, 0, r1.stderr);
    const p1 = json<Packed>(r1);
    assert.equal(p1.images.length, 1);
    assert.equal(p1.images[0]!.manifest, multi.arm64);
    assert.deepEqual(p1.images[0]!.refs, [`${a.host}/multi/app:1`]);
    assert.equal(p1.indexes.length, 0);

    const two = join(work, 'two.ferry.tar');
    const r2 = await ferry(['pack', `docker://${a.host}/multi/app:1`, '--platform', 'linux/amd64,linux/arm/v7', '-o', two, '--json']);
    assert.equal(r2.code, 0, r2.stderr);
    const p2 = json<Packed>(r2);
    assert.deepEqual(p2.images.map((i) => i.manifest).sort(), [multi.amd64, multi.arm].sort());
    assert.equal(p2.indexes.length, 1);
    assert.notEqual(p2.indexes[0]!.digest, multi.index, 'a filtered index is a new index');
    assert.equal((await ferry(['verify', two])).code, 0);

    const all = join(work, 'all.ferry.tar');
    const r3 = await ferry(['pack', `docker://${a.host}/multi/app:1`, '--all-platforms', '-o', all, '--json']);
    assert.equal(r3.code, 0, r3.stderr);
    const p3 = json<Packed>(r3);
    assert.equal(p3.indexes[0]!.digest, multi.index);
    assert.equal(p3.images.length, 3);
    assert.equal((await ferry(['verify', all])).code, 0);
    // A kept index's --json shapes: its platforms are objects, as each image's platform is (schemas/cli/).
    checkJson('pack', p3);
    const view = checkJson('inspect', json<{ indexes: { platforms: unknown[] }[] }>(await ferry(['inspect', all, '--json'])));
    assert.deepEqual(view.indexes[0]!.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm', variant: 'v7' }]);
    // The OCI view names the kept index by its reference (with its Docker media type: containers/image reads
    // only OCI-typed entries there, so skopeo finds it after a push rather than in the archive).
    const ociIndex = JSON.parse((await readTarEntry(all, 'index.json')).toString()) as { manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[] };
    const named = ociIndex.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === `${a.host}/multi/app:1`);
    assert.deepEqual(named.map((d) => [d.digest, d.mediaType]), [[multi.index, MANIFEST_LIST]]);

    const push = await ferry(['push', all, '--to', `${b.host}/kept`, '--json']);
    assert.equal(push.code, 0, push.stderr);
    checkJson('push', json(push));
    assert.equal(await rawDigest(`${b.host}/kept/multi/app:1`), multi.index, 'the whole index keeps its digest');
    assert.equal(sha256(await skopeo('inspect', '--tls-verify=false', '--raw', '--override-arch', 'arm64', `docker://${b.host}/kept/multi/app@${multi.arm64}`)), multi.arm64);

    // Loading an index gives the daemon's platform (amd64 here) the index's name.
    const load = await ferry(['load', all, '--retag', `${a.host}/=idx/`], { dockerHost: dst.host });
    assert.equal(load.code, 0, load.stderr);
    assert.equal((await dst.docker(['image', 'inspect', '-f', '{{.Architecture}}', 'idx/multi/app:1'])).trim(), 'amd64');

    const none = await ferry(['pack', `docker://${a.host}/multi/app:1`, '--platform', 'linux/s390x', '-o', join(work, 'none.tar')]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no linux\/s390x image.*linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7/);
  });

  it('--all-platforms carries attestation manifests as they are, so an attested index keeps its digest through pack and push', async () => {
    const out = join(work, 'attested.ferry.tar');
    const run = await ferry(['pack', `docker://${a.host}/multi/app:attested`, '--all-platforms', '-o', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    const p = json<Packed>(run);
    assert.equal(p.indexes[0]!.digest, multi.attested);
    assert.equal(p.images.length, 2, 'the attestation is not an image');
    const verify = await ferry(['verify', out]);
    assert.equal(verify.code, 0, verify.stderr);
    const push = await ferry(['push', out, '--to', `${b.host}/att`]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(await rawDigest(`${b.host}/att/multi/app:attested`), multi.attested);
    const one = await ferry(['pack', `docker://${a.host}/multi/app:attested`, '--platform', 'linux/arm64', '-o', join(work, 'att-arm64.ferry.tar'), '--json']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(json<Packed>(one).images[0]!.manifest, multi.arm64);
    // Served, the index keeps its digest and the attestation is a referrer of the image it is about (OCI 1.1).
    const served = await serve([out]);
    try {
      const index = await fetch(`${served.url}/v2/multi/app/manifests/attested`, { method: 'HEAD' });
      assert.equal(index.headers.get('docker-content-digest'), multi.attested);
      const refs = (await (await fetch(`${served.url}/v2/multi/app/referrers/${multi.amd64}`)).json()) as { manifests: { digest: string; artifactType?: string }[] };
      assert.deepEqual(refs.manifests.map((m) => m.digest), [attestationDigest]);
      assert.deepEqual(((await (await fetch(`${served.url}/v2/multi/app/referrers/${multi.arm64}`)).json()) as { manifests: unknown[] }).manifests, []);
    } finally {
      await served.stop();
    }
  });

  it('a zstd bundle from the daemon is pushed as gzip by default, so Docker 20.10 pulls it and its files are there', async () => {
    const out = join(work, 'daemon.ferry.tar');
    assert.equal((await ferry(['pack', 'ferry-test/app:1', '-o', out], { dockerHost: src.host })).code, 0);
    const push = await ferry(['push', out, '--to', `${b.host}/conv`, '--json']);
    assert.equal(push.code, 0, push.stderr);
    const raw = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/conv/ferry-test/app:1`)) as { layers: { mediaType: string }[] };
    assert.ok(raw.layers.every((l) => l.mediaType.endsWith('gzip')), JSON.stringify(raw.layers));
    await dst.docker(['pull', `${b.host}/conv/ferry-test/app:1`]);
    assert.equal((await dst.docker(['image', 'inspect', '-f', '{{.Id}}', `${b.host}/conv/ferry-test/app:1`])).trim(), imgs.app, 'same image ID: the config travelled unchanged');
    const cid = (await dst.docker(['create', `${b.host}/conv/ferry-test/app:1`, '/bin/sh'])).trim();
    const tarPath = join(work, 'export.tar');
    await dst.docker(['export', '-o', tarPath, cid]);
    assert.equal((await exec('tar', ['-xOf', tarPath, 'srv/app.txt'])).stdout, 'app v1\n');
    await dst.docker(['rm', cid]);

    const keep = await ferry(['push', out, '--to', `${b.host}/keep`, '--compression', 'keep']);
    assert.equal(keep.code, 0, keep.stderr);
    const kept = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${b.host}/keep/ferry-test/app:1`)) as { layers: { mediaType: string }[] };
    assert.ok(kept.layers.every((l) => l.mediaType.endsWith('zstd')));
  });

  it('--recompress makes zstd blobs and says the digests change; mixed sources share layers in the bundle', async () => {
    const out = join(work, 'recompressed.ferry.tar');
    const run = await ferry(['pack', `docker://${a.host}/ferry-test/app:1`, '--recompress', '-o', out, '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /digests differ/);
    const packed = json<Packed>(run);
    assert.notEqual(packed.images[0]!.manifest, await rawDigest(`${a.host}/ferry-test/app:1`));
    assert.equal(packed.images[0]!.imageId, imgs.app, 'the config, and so the image ID, is unchanged');
    const index = JSON.parse((await readTarEntry(out, 'ferry.json')).toString()) as { blobs: { mediaType: string; diffId?: string }[] };
    assert.ok(index.blobs.filter((x) => x.diffId).every((l) => l.mediaType.endsWith('+zstd')));
    assert.equal((await ferry(['verify', out])).code, 0);

    // The daemon's tool image shares its base layer with the registry's app image: stored once.
    const mixed = join(work, 'mixed.ferry.tar');
    const m = await ferry(['pack', 'ferry-test/tool:2', `docker://${a.host}/ferry-test/app:1`, '-o', mixed], { dockerHost: src.host });
    assert.equal(m.code, 0, m.stderr);
    const mi = JSON.parse((await readTarEntry(mixed, 'ferry.json')).toString()) as { images: { layers: { diffId: string; digest: string }[] }[]; blobs: { diffId?: string }[] };
    const diffIds = mi.blobs.filter((x) => x.diffId).map((x) => x.diffId);
    assert.equal(diffIds.length, new Set(diffIds).size, 'each layer stored once');
    assert.equal(mi.images[0]!.layers[0]!.digest, mi.images[1]!.layers[0]!.digest, 'both images use the one base blob');
    assert.equal((await ferry(['verify', mixed])).code, 0);
    const load = await ferry(['load', mixed, 'ferry-test/tool:2', '--retag', 'ferry-test/tool:2=mixed/tool:2'], { dockerHost: dst.host });
    assert.equal(load.code, 0, load.stderr);
    assert.equal((await dst.docker(['image', 'inspect', '-f', '{{.Id}}', 'mixed/tool:2'])).trim(), imgs.tool);
  });

  it('--dry-run prints the plan and writes nothing; --retag renames before --to', async () => {
    const out = join(work, 'dry.ferry.tar');
    assert.equal((await ferry(['pack', `docker://${a.host}/ferry-test/tool:2`, '-o', out])).code, 0);
    const dry = await ferry(['push', out, '--to', `${b.host}/dry`, '--retag', `${a.host}/ferry-test/=${a.host}/renamed/`, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`${b.host}/dry/renamed/tool \\(2\\)`));
    assert.match(dry.stdout, /upload|mount|present/);
    const res = await fetch(`http://${b.host}/v2/dry/renamed/tool/tags/list`);
    assert.equal(res.status, 404, 'nothing was pushed');
  });

  it('Basic auth: --creds-file works, a wrong password exits 5 naming the registry; nothing is pushed without credentials', { skip: htpasswd ? undefined : missing(['htpasswd']) }, async () => {
    const dir = await mkdtemp(join(work, 'auth-'));
    await writeFile(join(dir, 'htpasswd'), `${htpasswd}\n`);
    const secured = await startRegistry(`auth:\n  htpasswd:\n    realm: ferry-test\n    path: ${join(dir, 'htpasswd')}\n`);
    try {
      const out = join(work, 'auth.ferry.tar');
      assert.equal((await ferry(['pack', `docker://${a.host}/ferry-test/tool:2`, '-o', out])).code, 0);
      const env = { DOCKER_CONFIG: dir };
      const anon = await ferry(['push', out, '--to', secured.host], { env });
      assert.equal(anon.code, 5, anon.stderr);
      await writeFile(join(dir, 'wrong'), 'ferry:nope\n');
      const wrong = await ferry(['push', out, '--to', secured.host, '--creds-file', join(dir, 'wrong')], { env });
      assert.equal(wrong.code, 5, wrong.stderr);
      assert.match(wrong.stderr, new RegExp(secured.host.replace(/\./g, '\\.')));
      assert.match(wrong.stderr, /--creds|docker login/);
      await writeFile(join(dir, 'right'), 'ferry:s3cret\n');
      const ok = await ferry(['push', out, '--to', secured.host, '--creds-file', join(dir, 'right')], { env });
      assert.equal(ok.code, 0, ok.stderr);
      const back = await ferry(['pack', `docker://${secured.host}/ferry-test/tool:2`, '-o', join(work, 'auth2.ferry.tar'), '--creds', 'ferry:s3cret', '--json'], { env });
      assert.equal(back.code, 0, back.stderr);
      assert.equal(json<Packed>(back).images[0]!.manifest, await rawDigest(`${a.host}/ferry-test/tool:2`));
    } finally {
      await secured.stop();
    }
  });

  it('retries recover from 500s and a dropped download; a registry that keeps failing ends with exit 1 and a clear error', async () => {
    const proxy = await startFaultProxy(a.host);
    try {
      proxy.fail(2, 500);
      proxy.dropDownload({ after: 100_000, match: (m, url) => m === 'GET' && /\/blobs\/sha256:/.test(url) });
      const out = join(work, 'flaky.ferry.tar');
      const run = await ferry(['pack', `docker://${proxy.host}/ferry-test/app:1`, '-o', out, '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(json<Packed>(run).images[0]!.manifest, await rawDigest(`${a.host}/ferry-test/app:1`));
      assert.equal((await ferry(['verify', out])).code, 0);
      proxy.fail(1000, 503, { message: 'down for maintenance' });
      const down = await ferry(['pack', `docker://${proxy.host}/ferry-test/app:1`, '-o', join(work, 'never.ferry.tar')]);
      assert.equal(down.code, 1, down.stderr);
      assert.match(down.stderr, /503|maintenance/);
      await assert.rejects(access(join(work, 'never.ferry.tar')));
    } finally {
      await proxy.close();
    }
  });

  it('failures: unknown tag, stopped registry, bad --to, each with its exit code and no bundle left', async () => {
    const out = join(work, 'fail.ferry.tar');
    const unknown = await ferry(['pack', `docker://${a.host}/ferry-test/app:nope`, '-o', out]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /not found|unknown/i);
    const down = await startRegistry();
    await down.stop();
    const gone = await ferry(['pack', `docker://${down.host}/x/y:1`, '-o', out]);
    assert.equal(gone.code, 5, gone.stderr);
    assert.match(gone.stderr, new RegExp(`cannot reach registry ${down.host.replace(/\./g, '\\.')}`));
    // An image whose config names a diffID its layer does not have: the copy is refused and nothing is left.
    const m = JSON.parse((await getManifest(a.host, 'ferry-test/tool', '2')).toString()) as { config: { digest: string; size: number }; layers: { digest: string }[] };
    const cfg = JSON.parse(await (await fetch(`http://${a.host}/v2/ferry-test/tool/blobs/${m.config.digest}`)).text()) as { rootfs: { diff_ids: string[] } };
    cfg.rootfs.diff_ids[cfg.rootfs.diff_ids.length - 1] = sha256('not this layer');
    const cfgBytes = Buffer.from(JSON.stringify(cfg));
    const lying = Buffer.from(JSON.stringify({ ...m, config: { ...m.config, digest: await putBlob(a.host, 'ferry-test/tool', cfgBytes), size: cfgBytes.length } }));
    await putManifest(a.host, 'ferry-test/tool', 'lying', lying, DOCKER_MANIFEST);
    const lie = await ferry(['pack', `docker://${a.host}/ferry-test/tool:lying`, '-o', out]);
    assert.equal(lie.code, 1, lie.stderr);
    assert.match(lie.stderr, new RegExp(`decompresses to .*but its image config says ${sha256('not this layer')}`));
    await assert.rejects(access(out), 'no bundle was left behind');
    const bad = await ferry(['push', out, '--to', 'not a host']);
    assert.equal(bad.code, 2);
    await assert.rejects(access(out), 'no bundle was left behind');
  });
});
