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
