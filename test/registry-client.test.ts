// The OCI distribution client against Debian's real docker-registry: open, htpasswd, token auth, TLS via certs.d, injected faults.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, delimiter } from 'node:path';
import { RegistryClient, nextLink, type RegistryOptions } from '../src/registry/client.js';
import { parseChallenges } from '../src/registry/challenge.js';
import { apiHost, candidates } from '../src/registry/endpoint.js';
import { retryAfterMs } from '../src/registry/retry.js';
import { sha256Of, type Digest } from '../src/image/digest.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../src/image/media-types.js';
import { DigestMismatchError } from '../src/transfer/hash.js';
import { FerryError } from '../src/ui/errors.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';
import { selfSigned } from './helpers/certs.js';
import { htpasswdLine } from './helpers/htpasswd.js';
import { missing } from './helpers/tools.js';

const MiB = 1024 * 1024;
const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const FAST: RegistryOptions = { backoffMs: 5 };

/** A deterministic pseudo-random blob that is never held whole: open(offset) streams it from any offset (AES-CTR keystream). */
function generated(seed: string, size: number): { size: number; open: (offset: number) => AsyncIterable<Buffer>; digest: () => Promise<Digest> } {
  const key = createHash('sha256').update(seed).digest();
  const open = (offset: number): AsyncIterable<Buffer> =>
    (async function* () {
      const block = Math.floor(offset / 16);
      const iv = Buffer.alloc(16);
      iv.writeBigUInt64BE(BigInt(block), 8);
      const c = createCipheriv('aes-256-ctr', key, iv);
      let pos = block * 16;
      while (pos < size) {
        const n = Math.min(256 * 1024, size - pos);
        let out = c.update(Buffer.alloc(n));
        if (pos < offset) out = out.subarray(offset - pos);
        pos += n;
        yield out;
      }
    })();
  const digest = async (): Promise<Digest> => {
    const h = createHash('sha256');
    for await (const b of open(0)) h.update(b);
    return `sha256:${h.digest('hex')}` as Digest;
  };
  return { size, open, digest };
}

function bytesOf(b: Buffer): (offset: number) => AsyncIterable<Buffer> {
  return (offset) =>
    (async function* () {
      if (offset < b.length) yield b.subarray(offset);
    })();
}

async function digestOfStream(s: AsyncIterable<Buffer>): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const b of s) {
    h.update(b);
    size += b.length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

async function pushBytes(c: RegistryClient, repo: string, b: Buffer): Promise<Digest> {
  const d = sha256Of(b);
  await c.uploadBlob(repo, d, b.length, bytesOf(b));
  return d;
}

/** pushImage pushes a one-layer image of the given flavour and returns its manifest bytes and digest. */
async function pushImage(c: RegistryClient, repo: string, flavour: 'oci' | 'docker', tag?: string): Promise<{ bytes: Buffer; digest: Digest; mediaType: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, flavour }));
  const layer = Buffer.from(`layer of ${repo} ${flavour}`);
  const configDigest = await pushBytes(c, repo, config);
  const layerDigest = await pushBytes(c, repo, layer);
  const mediaType = flavour === 'oci' ? OCI_MANIFEST : DOCKER_MANIFEST;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: flavour === 'oci' ? OCI_CONFIG : DOCKER_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: flavour === 'oci' ? OCI_LAYER_GZIP : DOCKER_LAYER_GZIP, digest: layerDigest, size: layer.length }],
    }),
  );
  const digest = await c.putManifest(repo, tag ?? sha256Of(bytes), bytes, mediaType);
  return { bytes, digest, mediaType };
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<FerryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FerryError, `expected a FerryError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

describe('registry client: pure parts', () => {
  test('docker.io is served by registry-1.docker.io over verified TLS; loopback is plain HTTP; insecure tries https then http', () => {
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.deepEqual(candidates('docker.io', { insecure: false, tls: undefined }), [{ origin: 'https://registry-1.docker.io', verify: true }]);
    assert.deepEqual(candidates('localhost:5000', { insecure: false, tls: undefined }).map((e) => e.origin), ['http://localhost:5000']);
    assert.deepEqual(candidates('127.0.0.7:80', { insecure: false, tls: undefined }).map((e) => e.origin), ['http://127.0.0.7:80']);
    assert.deepEqual(candidates('[::1]:5000', { insecure: false, tls: undefined }).map((e) => e.origin), ['http://[::1]:5000']);
    assert.deepEqual(candidates('localhost:5000', { insecure: false, tls: { ca: ['x'] } }).map((e) => `${e.origin} ${e.verify}`), ['https://localhost:5000 true']);
    assert.deepEqual(candidates('registry.example', { insecure: true, tls: undefined }).map((e) => `${e.origin} ${e.verify}`), ['https://registry.example false', 'http://registry.example false']);
  });

  test('WWW-Authenticate, Link and Retry-After parsing', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a/b:pull,push' } },
    ]);
    assert.deepEqual(parseChallenges(['Basic realm="x, y"', 'Negotiate abc']), [{ scheme: 'basic', params: { realm: 'x, y' } }]);
    assert.equal(nextLink('</v2/a/tags/list?last=b&n=2>; rel="next"'), '/v2/a/tags/list?last=b&n=2');
    assert.equal(nextLink('<https://x/prev>; rel="prev", <https://x/next>; rel=next'), 'https://x/next');
    assert.equal(nextLink(undefined), undefined);
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs(new Date(Date.now() + 60 * 60_000).toUTCString()), 60_000);
    assert.equal(retryAfterMs('soon'), undefined);
  });
});

describe('registry client: open registry', { skip: missing(['docker-registry']) }, () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let direct: RegistryClient;
  let viaProxy: RegistryClient;
  const big = generated('big', 6 * MiB + 123);
  let bigDigest: Digest;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host, { paginateTags: true });
    direct = new RegistryClient(reg.host, FAST);
    viaProxy = new RegistryClient(proxy.host, { ...FAST, chunkSize: MiB });
    bigDigest = await big.digest();
  });
  after(async () => {
    await direct?.close();
    await viaProxy?.close();
    await proxy?.close();
    await reg?.stop();
  });

  test('ping', async () => {
    await direct.ping();
  });

  test('a streamed multi-MB upload, then hasBlob and a verified pull', async () => {
    assert.equal(await direct.hasBlob('big/one', bigDigest), undefined);
    await direct.uploadBlob('big/one', bigDigest, big.size, big.open);
    assert.equal(await direct.hasBlob('big/one', bigDigest), big.size);
    const got = await digestOfStream(await direct.blob('big/one', bigDigest, big.size));
    assert.deepEqual(got, { digest: bigDigest, size: big.size });
    // an empty blob too
    const empty = sha256Of(Buffer.alloc(0));
    await direct.uploadBlob('big/one', empty, 0, bytesOf(Buffer.alloc(0)));
    assert.equal(await direct.hasBlob('big/one', empty), 0);
  });

  test('a blob whose bytes do not match its digest or size fails with DigestMismatchError', async () => {
    const b = Buffer.from('soon to rot on disk');
    const d = await pushBytes(direct, 'rot', b);
    await assert.rejects(direct.blob('rot', d, b.length + 1), DigestMismatchError);
    const file = join(reg.dir, 'data/docker/registry/v2/blobs/sha256', d.slice(7, 9), d.slice(7), 'data');
    await writeFile(file, Buffer.from('SOON to rot on disk'));
    const s = await direct.blob('rot', d, b.length);
    await assert.rejects(digestOfStream(s), (err: unknown) => err instanceof DigestMismatchError && /digest/.test(err.message));
    await assert.rejects(direct.blob('rot', sha256Of('absent')), (err: unknown) => err instanceof FerryError && err.code === 'REGISTRY_ERROR' && /not found/.test(err.message));
  });

  test('cross-repository mount: 201 when the source holds it, false (session cancelled) when not', async () => {
    const d = await pushBytes(direct, 'mount/src', Buffer.from('shared layer'));
    assert.equal(await direct.hasBlob('mount/dst', d), undefined);
    assert.equal(await direct.mountBlob('mount/dst', d, 'mount/src'), true);
    assert.equal(await direct.hasBlob('mount/dst', d), Buffer.from('shared layer').length);
    assert.equal(await direct.mountBlob('mount/dst2', sha256Of('nowhere'), 'mount/src'), false);
  });

  test('manifests of all four media types, by tag and by digest; headManifest; absent → IMAGE_NOT_FOUND', async () => {
    const oci = await pushImage(direct, 'multi', 'oci', 'oci');
    const docker = await pushImage(direct, 'multi', 'docker', 'docker');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: oci.digest, size: oci.bytes.length, platform: { architecture: 'amd64', os: 'linux' } }],
      }),
    );
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: docker.digest, size: docker.bytes.length, platform: { architecture: 'amd64', os: 'linux' } }],
      }),
    );
    const indexDigest = await direct.putManifest('multi', 'index', index, OCI_INDEX);
    const listDigest = await direct.putManifest('multi', 'list', list, DOCKER_MANIFEST_LIST);
    const cases = [
      { tag: 'oci', bytes: oci.bytes, digest: oci.digest, mediaType: OCI_MANIFEST },
      { tag: 'docker', bytes: docker.bytes, digest: docker.digest, mediaType: DOCKER_MANIFEST },
      { tag: 'index', bytes: index, digest: indexDigest, mediaType: OCI_INDEX },
      { tag: 'list', bytes: list, digest: listDigest, mediaType: DOCKER_MANIFEST_LIST },
    ];
    for (const c of cases) {
      assert.equal(c.digest, sha256Of(c.bytes));
      for (const ref of [c.tag, c.digest]) {
        const m = await direct.getManifest('multi', ref);
        assert.equal(m.mediaType, c.mediaType, `${ref}`);
        assert.equal(m.digest, c.digest);
        assert.ok(m.bytes.equals(c.bytes));
        assert.deepEqual(await direct.headManifest('multi', ref), { digest: c.digest, mediaType: c.mediaType, size: c.bytes.length });
      }
    }
    assert.equal(await direct.headManifest('multi', 'nope'), undefined);
    await rejectsWith(direct.getManifest('multi', 'nope'), 'IMAGE_NOT_FOUND', new RegExp(`${reg.host}/multi:nope`));
    await rejectsWith(direct.getManifest('never/pushed', sha256Of('x')), 'IMAGE_NOT_FOUND', /never\/pushed@sha256:/);
    await rejectsWith(direct.getManifest('Bad Name', 'x'), 'USAGE');
    await assert.rejects(direct.putManifest('multi', sha256Of('other'), index, OCI_INDEX), DigestMismatchError);
  });

  test('listTags follows Link rel="next" pages; an unknown repository has none', async () => {
    const img = await pushImage(direct, 'tagged', 'oci');
    const tags = ['a', 'b', 'c', 'd', 'e'];
    for (const t of tags) await direct.putManifest('tagged', t, img.bytes, img.mediaType);
    proxy.reset();
    assert.deepEqual((await viaProxy.listTags('tagged', undefined, 2)).sort(), tags);
    assert.deepEqual(
      proxy.log.filter((e) => e.url.includes('/tags/list')).map((e) => e.url),
      ['/v2/tagged/tags/list?n=2', '/v2/tagged/tags/list?n=2&last=b', '/v2/tagged/tags/list?n=2&last=d'],
    );
    assert.deepEqual((await viaProxy.listTags('tagged')).sort(), tags);
    assert.deepEqual(await viaProxy.listTags('no/such/repo'), []);
  });

  test('retries: 500s and a 429 with Retry-After are ridden out; persistent 5xx ends as REGISTRY_ERROR quoting the registry, escaped', async () => {
    const img = await pushImage(direct, 'retry', 'oci', 'v1');
    proxy.reset();
    proxy.fail(2, 500, { match: (m, u) => m === 'GET' && u.includes('/manifests/') });
    assert.equal((await viaProxy.getManifest('retry', 'v1')).digest, img.digest);
    assert.equal(proxy.log.filter((e) => e.url.includes('/manifests/')).length, 3);

    proxy.reset();
    proxy.fail(1, 429, { retryAfter: 1, match: (m, u) => u.includes('/manifests/') });
    const t0 = Date.now();
    assert.equal((await viaProxy.getManifest('retry', 'v1')).digest, img.digest);
    assert.ok(Date.now() - t0 >= 950, `waited only ${Date.now() - t0} ms`);

    proxy.reset();
    proxy.fail(100, 503, { match: (m, u) => u.includes('/manifests/'), message: 'down for \x1b[31mmaintenance' });
    const err = await rejectsWith(viaProxy.getManifest('retry', 'v1'), 'REGISTRY_ERROR', /HTTP 503 UNAVAILABLE: down for \\x1b\[31mmaintenance/);
    assert.equal(err.exitCode, 1);
    assert.equal(proxy.log.length, 5, 'five attempts by default');
    proxy.reset();
  });

  test('an upload PATCH dropped before the registry saw it resumes from the offset the registry reports', async () => {
    const blob = generated('resume', 5 * MiB + 77);
    const d = await blob.digest();
    proxy.reset();
    proxy.dropUpload({ nth: 4, after: 300 * 1024, buffered: true });
    await viaProxy.uploadBlob('resume/buffered', d, blob.size, blob.open);
    const posts = proxy.log.filter((e) => e.method === 'POST');
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    const statusChecks = proxy.log.filter((e) => e.method === 'GET' && e.url.includes('/blobs/uploads/'));
    assert.equal(posts.length, 1, 'one session: no restart');
    assert.equal(statusChecks.length, 1, 'the registry was asked what it holds');
    assert.equal(patches.length, 7, '3 good chunks, the cut one, then the 3 remaining');
    assert.ok(proxy.bytesIn < blob.size + MiB, `sent ${proxy.bytesIn} bytes for a ${blob.size}-byte blob`);
    assert.deepEqual(await digestOfStream(await direct.blob('resume/buffered', d, blob.size)), { digest: d, size: blob.size });
  });

  test('an upload PATCH cut after the registry took part of it starts a fresh session and still lands intact', async () => {
    const blob = generated('restart', 3 * MiB + 5);
    const d = await blob.digest();
    proxy.reset();
    proxy.dropUpload({ nth: 2, after: 512 * 1024, buffered: false });
    await viaProxy.uploadBlob('resume/unbuffered', d, blob.size, blob.open);
    assert.equal(proxy.log.filter((e) => e.method === 'POST').length, 2, 'distribution cancels a session whose offset moved under it');
    assert.ok(proxy.bytesIn < 2 * blob.size);
    assert.deepEqual(await digestOfStream(await direct.blob('resume/unbuffered', d, blob.size)), { digest: d, size: blob.size });
  });

  test('a blob download cut mid-body resumes with a Range request', async () => {
    proxy.reset();
    proxy.dropDownload({ after: 2 * MiB + 3, match: (m, u) => m === 'GET' && u.includes(`/blobs/${bigDigest}`) });
    assert.deepEqual(await digestOfStream(await viaProxy.blob('big/one', bigDigest, big.size)), { digest: bigDigest, size: big.size });
    const gets = proxy.log.filter((e) => e.url.includes(`/blobs/${bigDigest}`));
    assert.equal(gets.length, 2);
    assert.equal(gets[1]?.range, `bytes=${2 * MiB + 3}-`);
  });

  test('a stopped registry is REGISTRY_UNREACHABLE (exit 5), after the retries', async () => {
    const gone = await startRegistry();
    await gone.stop();
    const c = new RegistryClient(gone.host, { retries: 3, backoffMs: 5 });
    const err = await rejectsWith(c.ping(), 'REGISTRY_UNREACHABLE', new RegExp(`cannot reach registry ${gone.host}.*ECONNREFUSED`));
    assert.equal(err.exitCode, 5);
    assert.ok(err.hint);
    await c.close();
  });
});
