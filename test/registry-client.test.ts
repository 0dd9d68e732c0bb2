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
import { registryTimeoutMs } from '../src/registry/http.js';
import { sha256Of, type Digest } from '../src/image/digest.js';
import { DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../src/image/media-types.js';
import { DigestMismatchError } from '../src/stream/hash.js';
import { FerryError } from '../src/ui/errors.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';
import { selfSigned } from './helpers/certs.js';
import { htpasswdLine } from './helpers/htpasswd.js';
import { missing } from './helpers/tools.js';

const MiB = 1024 * 1024;
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
    proxy.reset();
    assert.equal(await viaProxy.mountBlob('mount/dst2', sha256Of('nowhere'), 'mount/src'), false);
    assert.deepEqual(
      proxy.log.filter((e) => e.url !== '/v2/').map((e) => `${e.method} ${e.status}`),
      ['POST 202', 'DELETE 204'],
      'the unwanted upload session is cancelled',
    );
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
    proxy.fail(1, 429, { retryAfter: 1, match: (_m, u) => u.includes('/manifests/') });
    const t0 = Date.now();
    assert.equal((await viaProxy.getManifest('retry', 'v1')).digest, img.digest);
    assert.ok(Date.now() - t0 >= 950, `waited only ${Date.now() - t0} ms`);

    proxy.reset();
    proxy.fail(100, 503, { match: (_m, u) => u.includes('/manifests/'), message: 'down for \x1b[31mmaintenance' });
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

  test('an upload session the registry says it lost (404 BLOB_UPLOAD_UNKNOWN) is started again', async () => {
    const b = Buffer.from('a session that vanished');
    proxy.reset();
    // The PATCH and the status check after it both hear that the session is gone.
    const lost = { match: (m: string, u: string) => u.includes('/blobs/uploads/') && (m === 'PATCH' || m === 'GET'), code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry' };
    proxy.fail(2, 404, lost);
    const d = await pushBytes(viaProxy, 'resume/lost', b);
    assert.deepEqual(
      proxy.log.filter((e) => e.url !== '/v2/').map((e) => `${e.method} ${e.status}`),
      ['POST 202', 'PATCH 404', 'GET 404', 'POST 202', 'PATCH 202', 'PUT 201'],
    );
    // A 404 the registry itself did not mean (its session is fine) costs only a status check.
    proxy.reset();
    proxy.fail(1, 404, lost);
    await pushBytes(viaProxy, 'resume/lost', Buffer.from('a session that only seemed to vanish'));
    assert.deepEqual(
      proxy.log.filter((e) => e.url !== '/v2/').map((e) => `${e.method} ${e.status}`),
      ['POST 202', 'PATCH 404', 'GET 204', 'PATCH 202', 'PUT 201'],
    );
    assert.equal(await direct.hasBlob('resume/lost', d), b.length);
  });

  test('a blob download cut mid-body resumes with a Range request', async () => {
    proxy.reset();
    proxy.dropDownload({ after: 2 * MiB + 3, match: (m, u) => m === 'GET' && u.includes(`/blobs/${bigDigest}`) });
    assert.deepEqual(await digestOfStream(await viaProxy.blob('big/one', bigDigest, big.size)), { digest: bigDigest, size: big.size });
    const gets = proxy.log.filter((e) => e.url.includes(`/blobs/${bigDigest}`));
    assert.equal(gets.length, 2);
    assert.equal(gets[1]?.range, `bytes=${2 * MiB + 3}-`);
  });

  test('an upload the registry stops reading is given up after the timeout (no hang) and resumed; a silent one, retried to the end, is REGISTRY_UNREACHABLE', async () => {
    // Bigger than what the loopback socket buffers take in, so ferry's writes really block.
    const blob = generated('stuck', 24 * MiB + 5);
    const d = await blob.digest();
    const c = new RegistryClient(proxy.host, { ...FAST, chunkSize: 32 * MiB, timeoutMs: 1000 });
    proxy.reset();
    proxy.stall({ match: (m) => m === 'PATCH', phase: 'request' });
    const t0 = Date.now();
    await c.uploadBlob('stuck/upload', d, blob.size, blob.open);
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    assert.deepEqual(patches.map((e) => e.fault), ['stall request', undefined]);
    assert.ok(patches[0]!.bodyBytes < blob.size, `the proxy stopped reading after ${patches[0]!.bodyBytes} bytes`);
    assert.ok(patches[1]!.at - patches[0]!.at >= 1000, `given up after ${patches[1]!.at - patches[0]!.at} ms`);
    assert.ok(Date.now() - t0 < 15_000);
    assert.deepEqual(await digestOfStream(await direct.blob('stuck/upload', d, blob.size)), { digest: d, size: blob.size });

    proxy.reset();
    proxy.stall({ match: (_m, u) => u.includes('/manifests/'), phase: 'headers', times: 100 });
    const silent = new RegistryClient(proxy.host, { retries: 2, backoffMs: 5, timeoutMs: 500 });
    const err = await rejectsWith(silent.getManifest('stuck/upload', 'v1'), 'REGISTRY_UNREACHABLE', new RegExp(`registry ${proxy.host} did not answer for 0\\.5 s`));
    assert.equal(err.exitCode, 5);
    assert.match(err.hint ?? '', /FERRY_REGISTRY_TIMEOUT/);
    assert.equal(proxy.log.filter((e) => e.url.includes('/manifests/')).length, 2);
    await c.close();
    await silent.close();
    proxy.reset();
  });

  test('the PUT that closes an upload may take five timeouts to answer (the registry hashes or moves the blob), then is given up and sent again', async () => {
    const c = new RegistryClient(proxy.host, { ...FAST, timeoutMs: 400 });
    proxy.reset();
    proxy.stall({ match: (m, u) => m === 'PUT' && u.includes('digest='), phase: 'headers' });
    const d = await pushBytes(c, 'slow/commit', Buffer.from('committed slowly'));
    const puts = proxy.log.filter((e) => e.method === 'PUT');
    assert.deepEqual(puts.map((e) => e.fault), ['stall headers', undefined]);
    const waited = proxy.log[proxy.log.indexOf(puts[0]!) + 1]!.at - puts[0]!.at;
    assert.ok(waited >= 2000 && waited < 4000, `waited ${waited} ms for the closing PUT's answer`);
    assert.equal(await direct.hasBlob('slow/commit', d), 'committed slowly'.length);
    await c.close();
    proxy.reset();
  });

  test('FERRY_REGISTRY_TIMEOUT and FERRY_REGISTRY_CHUNK_SIZE are read from the environment, and refused when not numbers', async () => {
    assert.equal(registryTimeoutMs({}), 60_000);
    assert.equal(registryTimeoutMs({ FERRY_REGISTRY_TIMEOUT: '2.5' }), 2500);
    assert.throws(() => registryTimeoutMs({ FERRY_REGISTRY_TIMEOUT: 'soon' }), (e: unknown) => e instanceof FerryError && e.code === 'USAGE');
    assert.throws(() => registryTimeoutMs({ FERRY_REGISTRY_TIMEOUT: '0' }), FerryError);
    await withEnv({ FERRY_REGISTRY_CHUNK_SIZE: 'lots' }, async () => assert.throws(() => new RegistryClient(reg.host), /FERRY_REGISTRY_CHUNK_SIZE/));
    // Two PATCHes of 1 KiB and one of the rest, when the environment says so.
    const b = Buffer.alloc(2500, 3);
    proxy.reset();
    await withEnv({ FERRY_REGISTRY_CHUNK_SIZE: '1024' }, async () => pushBytes(new RegistryClient(proxy.host, FAST), 'chunked', b));
    assert.deepEqual(proxy.log.filter((e) => e.method === 'PATCH').map((e) => e.contentRange), ['0-1023', '1024-2047', '2048-2499']);
    proxy.reset();
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

/** withEnv runs fn with environment variables set, and puts them back after. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const bcryptLine = htpasswdLine('alice', 's3cret');

describe('registry client: htpasswd Basic auth and docker credentials', { skip: missing(['docker-registry']) ?? (bcryptLine ? undefined : missing(['htpasswd'])) }, () => {
  let dir: string;
  let reg: Registry;
  let empty: string;
  let bin: string;

  /** dockerConfig writes a config.json into a fresh dir and returns the dir. */
  const dockerConfig = async (config: unknown): Promise<string> => {
    const d = await mkdtemp(join(dir, 'docker-config-'));
    await writeFile(join(d, 'config.json'), JSON.stringify(config));
    return d;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-basic-'));
    await writeFile(join(dir, 'htpasswd'), `${bcryptLine}\n`);
    reg = await startRegistry(`auth:\n  htpasswd:\n    realm: ferry-test\n    path: ${join(dir, 'htpasswd')}\n`);
    empty = await dockerConfig({});
    bin = join(dir, 'bin');
    await mkdir(bin);
    // A credential helper as docker runs it: `get`, the server on stdin, JSON on stdout.
    await writeFile(
      join(bin, 'docker-credential-fake'),
      `#!/bin/sh\nread host\necho "$host" >> ${join(dir, 'helper.log')}\nif [ "$1" = get ] && [ "$host" = "${reg.host}" ]; then\n  printf '{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}' "$host"; exit 0\nfi\necho "credentials not found in native keychain"; exit 1\n`,
    );
    await writeFile(join(bin, 'docker-credential-broken'), '#!/bin/sh\necho "helper exploded" >&2\nexit 2\n');
    await chmod(join(bin, 'docker-credential-fake'), 0o755);
    await chmod(join(bin, 'docker-credential-broken'), 0o755);
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('explicit credentials: ping, push and pull', async () => {
    const c = new RegistryClient(reg.host, { ...FAST, creds: { username: 'alice', password: 's3cret' }, dockerConfig: empty });
    await c.ping();
    const img = await pushImage(c, 'private/app', 'oci', 'v1');
    assert.equal((await c.getManifest('private/app', 'v1')).digest, img.digest);
    await c.close();
  });

  test('a wrong password or no credentials is REGISTRY_AUTH (exit 5) naming the registry, with a hint', async () => {
    const wrong = new RegistryClient(reg.host, { ...FAST, creds: { username: 'alice', password: 'nope' }, dockerConfig: empty });
    const err = await rejectsWith(wrong.getManifest('private/app', 'v1'), 'REGISTRY_AUTH', new RegExp(`registry ${reg.host} refused the credentials`));
    assert.equal(err.exitCode, 5);
    assert.match(err.hint ?? '', /--creds/);
    assert.match(err.hint ?? '', /docker login/);
    const anonymous = new RegistryClient(reg.host, { ...FAST, dockerConfig: empty });
    await rejectsWith(anonymous.ping(), 'REGISTRY_AUTH', /requires credentials/);
  });

  test('docker config auths: base64 auth under https://HOST (via $DOCKER_CONFIG), username/password under HOST', async () => {
    const b64 = await dockerConfig({ auths: { [`https://${reg.host}`]: { auth: Buffer.from('alice:s3cret').toString('base64') } } });
    await withEnv({ DOCKER_CONFIG: b64 }, async () => new RegistryClient(reg.host, FAST).ping());
    const plain = await dockerConfig({ auths: { [reg.host]: { username: 'alice', password: 's3cret' }, 'other.example': { auth: 'eDp5' } } });
    await new RegistryClient(reg.host, { ...FAST, dockerConfig: plain }).ping();
    const wrong = await dockerConfig({ auths: { [reg.host]: { auth: Buffer.from('alice:wrong').toString('base64') } } });
    await rejectsWith(new RegistryClient(reg.host, { ...FAST, dockerConfig: wrong }).ping(), 'REGISTRY_AUTH');
    // explicit credentials win over the config
    await new RegistryClient(reg.host, { ...FAST, dockerConfig: wrong, creds: { username: 'alice', password: 's3cret' } }).ping();
  });

  test('credential helpers: credHelpers[host] and credsStore run docker-credential-NAME; a failing or absent helper is a clear error', async () => {
    await withEnv({ PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` }, async () => {
      await new RegistryClient(reg.host, { ...FAST, dockerConfig: await dockerConfig({ credHelpers: { [reg.host]: 'fake' } }) }).ping();
      assert.equal((await readFile(join(dir, 'helper.log'), 'utf8')).trim(), reg.host);
      await new RegistryClient(reg.host, { ...FAST, dockerConfig: await dockerConfig({ credsStore: 'fake', auths: { [reg.host]: {} } }) }).ping();
      // credHelpers for the host wins over credsStore
      await new RegistryClient(reg.host, { ...FAST, dockerConfig: await dockerConfig({ credsStore: 'broken', credHelpers: { [reg.host]: 'fake' } }) }).ping();
      await rejectsWith(
        new RegistryClient(reg.host, { ...FAST, dockerConfig: await dockerConfig({ credHelpers: { [reg.host]: 'broken' } }) }).ping(),
        'REGISTRY_AUTH',
        /docker-credential-broken failed for .*helper exploded/,
      );
      await rejectsWith(
        new RegistryClient(reg.host, { ...FAST, dockerConfig: await dockerConfig({ credsStore: 'absent' }) }).ping(),
        'REGISTRY_AUTH',
        /docker-credential-absent is not installed/,
      );
    });
  });
});

describe('registry client: Bearer token auth', { skip: missing(['docker-registry', 'openssl']) }, () => {
  let dir: string;
  let tokens: TokenServer;
  let reg: Registry;
  const alice: RegistryOptions = { ...FAST, creds: { username: 'alice', password: 's3cret' } };
  const asked = (scope: string): number => tokens.requests.filter((r) => r.scopes.includes(scope)).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-token-'));
    tokens = await startTokenServer(dir, { alice: 's3cret' });
    reg = await startRegistry(tokens.registryConfig());
  });
  after(async () => {
    await reg?.stop();
    await tokens?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('ping, push and pull with scoped tokens, cached per scope set', async () => {
    const c = new RegistryClient(reg.host, alice);
    await c.ping();
    assert.deepEqual(tokens.requests.at(-1), { scopes: [], account: 'alice', user: 'alice' });
    const img = await pushImage(c, 'team/app', 'docker', 'v1');
    const pushes = asked('repository:team/app:pull,push');
    assert.equal(pushes, 1, 'one token for every push request of the repository');
    assert.equal((await c.getManifest('team/app', 'v1')).digest, img.digest);
    assert.equal((await c.getManifest('team/app', img.digest)).digest, img.digest);
    assert.equal(await c.hasBlob('team/app', sha256Of('absent')), undefined);
    assert.equal(asked('repository:team/app:pull'), 1);
    await c.close();
  });

  test('a mount asks one token for pull,push on the target and pull on the source', async () => {
    const c = new RegistryClient(reg.host, alice);
    const d = await pushBytes(c, 'team/base', Buffer.from('base layer'));
    assert.equal(await c.mountBlob('team/app2', d, 'team/base'), true);
    const req = tokens.requests.find((r) => r.scopes.includes('repository:team/app2:pull,push'));
    assert.deepEqual(req?.scopes, ['repository:team/app2:pull,push', 'repository:team/base:pull']);
    assert.equal(await c.hasBlob('team/app2', d), 'base layer'.length);
  });

  test('a token is renewed once expires_in has passed', async () => {
    tokens.expiresIn = 1;
    try {
      const c = new RegistryClient(reg.host, alice);
      await c.listTags('team/app');
      const before = asked('repository:team/app:pull');
      await c.listTags('team/app');
      assert.equal(asked('repository:team/app:pull'), before, 'still fresh');
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual(await c.listTags('team/app'), ['v1']);
      assert.equal(asked('repository:team/app:pull'), before + 1, 'renewed');
    } finally {
      tokens.expiresIn = 300;
    }
  });

  test('a cached token the registry refuses is fetched again, once; access_token is accepted for token', async () => {
    tokens.staleNext = 1;
    tokens.field = 'access_token';
    try {
      const c = new RegistryClient(reg.host, alice);
      const before = asked('repository:team/app:pull');
      assert.deepEqual(await c.listTags('team/app'), ['v1']);
      assert.equal(asked('repository:team/app:pull'), before + 2, 'the stale token, then a good one');
    } finally {
      tokens.field = 'token';
    }
  });

  test('a token server that refuses the password is REGISTRY_AUTH', async () => {
    const c = new RegistryClient(reg.host, { ...FAST, creds: { username: 'alice', password: 'nope' } });
    const err = await rejectsWith(c.getManifest('team/app', 'v1'), 'REGISTRY_AUTH', new RegExp(`${reg.host} refused the credentials.*UNAUTHORIZED`));
    assert.equal(err.exitCode, 5);
  });
});

describe('registry client: TLS with certs.d', { skip: missing(['docker-registry', 'openssl']) }, () => {
  let dir: string;
  let reg: Registry;
  let tlsProxy: FaultProxy;
  let mtlsProxy: FaultProxy;
  let certsDir: string;
  let name: string;
  let mtlsName: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
    reg = await startRegistry();
    const server = selfSigned(dir, 'server');
    const client = selfSigned(dir, 'client', 'ferry test client');
    tlsProxy = await startFaultProxy(reg.host, { tls: { cert: server.cert, key: server.key } });
    mtlsProxy = await startFaultProxy(reg.host, { tls: { cert: server.cert, key: server.key, clientCa: client.cert } });
    name = `localhost:${tlsProxy.port}`;
    mtlsName = `localhost:${mtlsProxy.port}`;
    certsDir = join(dir, 'certs.d');
    await mkdir(join(certsDir, name), { recursive: true });
    await copyFile(server.certFile, join(certsDir, name, 'ca.crt'));
    await mkdir(join(certsDir, mtlsName), { recursive: true });
    await copyFile(server.certFile, join(certsDir, mtlsName, 'ca.crt'));
    await copyFile(client.certFile, join(certsDir, mtlsName, 'client.cert'));
    await copyFile(client.keyFile, join(certsDir, mtlsName, 'client.key'));
  });
  after(async () => {
    await tlsProxy?.close();
    await mtlsProxy?.close();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a loopback host with a CA in certs.d speaks verified TLS: push and pull through it', async () => {
    const c = new RegistryClient(name, { ...FAST, certsDir });
    await c.ping();
    const img = await pushImage(c, 'tls/app', 'oci', 'v1');
    assert.equal((await c.getManifest('tls/app', 'v1')).digest, img.digest);
    assert.ok(tlsProxy.log.some((e) => e.method === 'PATCH'), 'the upload went through the TLS proxy');
    // FERRY_CERTS_D names the root when no option does
    await withEnv({ FERRY_CERTS_D: certsDir }, async () => new RegistryClient(name, FAST).ping());
  });

  test('without its CA the same host fails as REGISTRY_UNREACHABLE: plain HTTP on loopback, or an untrusted certificate', async () => {
    await rejectsWith(new RegistryClient(name, { retries: 1, certsDir: join(dir, 'nothing') }).ping(), 'REGISTRY_UNREACHABLE', new RegExp(name));
    const other = selfSigned(dir, 'other');
    const wrongCa = join(dir, 'wrong-ca');
    await mkdir(join(wrongCa, name), { recursive: true });
    await copyFile(other.certFile, join(wrongCa, name, 'ca.crt'));
    const err = await rejectsWith(new RegistryClient(name, { retries: 1, certsDir: wrongCa }).ping(), 'REGISTRY_UNREACHABLE');
    assert.match(err.hint ?? '', /certs\.d/);
  });

  test('insecure: TLS without verification, and plain HTTP when the host does not speak TLS', async () => {
    await new RegistryClient(name, { ...FAST, insecure: true, certsDir: join(dir, 'nothing') }).ping();
    await new RegistryClient(reg.host, { ...FAST, insecure: true, certsDir: join(dir, 'nothing') }).ping();
  });

  test('a client certificate pair (*.cert + *.key) from certs.d is presented; without it the server refuses us', async () => {
    const c = new RegistryClient(mtlsName, { ...FAST, certsDir });
    await c.ping();
    assert.equal((await c.listTags('tls/app')).length, 1);
    const noPair = join(dir, 'no-pair');
    await mkdir(join(noPair, mtlsName), { recursive: true });
    await copyFile(join(certsDir, mtlsName, 'ca.crt'), join(noPair, mtlsName, 'ca.crt'));
    await rejectsWith(new RegistryClient(mtlsName, { retries: 1, certsDir: noPair }).ping(), 'REGISTRY_UNREACHABLE');
  });
});
