// Registry faults survived (issue 6, point 5), through the real CLI: a fault-injecting proxy in front of a real
// docker-registry, `ferry pack docker://…` and `ferry push … --to` run as a user runs them. Dropped connections mid-blob
// (resumed where the registry stands), 5xx, 429 + Retry-After, stalls past the timeout, tampered bytes, persistent
// failure; credentials never printed; then 50 images pushed in one go and every digest checked in the registry.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { FERRY_BIN, json, type FerryRun } from './helpers/ferry.js';
import { startFaultProxy, type FaultProxy, type Match, type ProxyLogEntry } from './helpers/fault-proxy.js';
import { htpasswdLine } from './helpers/htpasswd.js';
import { assertFails } from './helpers/outcome.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { missing } from './helpers/tools.js';

const exec = promisify(execFile);
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1024 * 1024;
const ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');
const PASSWORD = 'Pw-7c41e9-never-print-me';
const htpasswd = htpasswdLine('ferry', PASSWORD);
const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo', 'docker-registry'], { root: true });

interface Run extends FerryRun {
  ms: number;
}

/** run is the real CLI in a child process, timed; a run that outlives `limitMs` is killed and fails the test (ferry must never hang). */
function run(args: readonly string[], env: Record<string, string> = {}, limitMs = 90_000, dockerHost?: string): Promise<Run> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.FORCE_COLOR;
  if (dockerHost) e.DOCKER_HOST = dockerHost;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [FERRY_BIN, ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      p.kill('SIGKILL');
    }, limitMs);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(killer);
      if (killed) reject(new Error(`ferry ${args.join(' ')} hung: killed after ${limitMs} ms\nstderr: ${stderr}`));
      else resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** note prints what a case observed (attempts, gaps, times, the error's first line) into the test output. */
function note(what: string, r?: Run, extra = ''): void {
  const first = r ? (/^ferry: .*$/m.exec(r.stderr)?.[0] ?? '') : '';
  const parts = [r ? `exit ${r.code} in ${(r.ms / 1000).toFixed(1)} s` : '', extra, first ? `"${first.slice(0, 220)}"` : ''].filter(Boolean);
  process.stderr.write(`# ${what}: ${parts.join('; ')}\n`);
}

/** pseudoRandom: `size` incompressible bytes, the same every run (AES-CTR keystream of a seed). */
function pseudoRandom(seed: string, size: number): Buffer {
  const c = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return c.update(Buffer.alloc(size));
}

/** flipMiddle changes one byte in the middle: same length, different digest. */
const flipMiddle = (b: Buffer): Buffer => {
  const out = Buffer.from(b);
  out[out.length >> 1] = out[out.length >> 1]! ^ 0xff;
  return out;
};

/** tamperDigest rewrites one hex digit of the last digest a manifest names: still valid JSON, same length, another document. */
const tamperDigest = (b: Buffer): Buffer => {
  const s = b.toString('utf8');
  const at = s.lastIndexOf('sha256:') + 7;
  return Buffer.from(`${s.slice(0, at)}${s[at] === '0' ? '1' : '0'}${s.slice(at + 1)}`);
};

const is =
  (method: string, re: RegExp): Match =>
  (m, u) =>
    m === method && re.test(u);

/** gaps are the times between consecutive requests of a list, in ms. */
const gaps = (entries: readonly ProxyLogEntry[]): number[] => entries.slice(1).map((e, i) => e.at - entries[i]!.at);

/** sessionOf is the upload session (its UUID) a request to /blobs/uploads/UUID belongs to. */
const sessionOf = (url: string): string | undefined => /\/blobs\/uploads\/([^/?]+)/.exec(url)?.[1];

/** empty: the directory holds nothing: no bundle at -o and no hidden temp file beside it. */
async function assertEmpty(dir: string, what: string): Promise<void> {
  assert.deepEqual(await readdir(dir), [], `${what}: pack left files behind`);
}

interface ManifestDoc {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
  manifests?: { digest: string }[];
}

/**
 * checkImage reads a tag back from the registry's API: the manifest must hash to `digest` (and skopeo, an independent
 * reader, must agree when asked), and every blob it names must be in the repository (HEAD, with its size) and hash to
 * its digest (GET; once per digest across calls, through `hashed`).
 */
async function checkImage(host: string, repo: string, tag: string, digest: string, hashed: Set<string>, opts: { skopeo?: boolean; auth?: string } = {}): Promise<void> {
  const headers: Record<string, string> = { accept: ACCEPT, ...(opts.auth ? { authorization: opts.auth } : {}) };
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { headers });
  assert.equal(res.status, 200, `${host}/${repo}:${tag}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(sha256(bytes), digest, `${repo}:${tag}: the manifest in the registry hashes to what ferry reported`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  if (opts.skopeo) {
    const raw = await exec('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', '--raw', `docker://${host}/${repo}:${tag}`], { maxBuffer: 16 << 20, encoding: 'buffer' });
    assert.equal(sha256(raw.stdout), digest, `${repo}:${tag}: skopeo reads the same manifest`);
  }
  const doc = JSON.parse(bytes.toString('utf8')) as ManifestDoc;
  for (const b of [doc.config, ...doc.layers]) {
    const head = await fetch(`http://${host}/v2/${repo}/blobs/${b.digest}`, { method: 'HEAD', headers });
    assert.equal(head.status, 200, `${repo} holds ${b.digest}`);
    assert.equal(Number(head.headers.get('content-length')), b.size, `${repo}: ${b.digest} has its size`);
    if (hashed.has(b.digest)) continue;
    const got = Buffer.from(await (await fetch(`http://${host}/v2/${repo}/blobs/${b.digest}`, { headers })).arrayBuffer());
    assert.equal(sha256(got), b.digest, `${repo}: blob ${b.digest} hashes to its digest`);
    assert.equal(got.length, b.size);
    hashed.add(b.digest);
  }
}

interface Packed {
  images: { refs: string[]; manifest: string }[];
}
interface Pushed {
  images: { name: string; digest: string }[];
  blobs: { uploaded: number; mounted: number; present: number };
  bytesUploaded: number;
}

describe('registry faults survived, through the CLI', { skip }, () => {
  let d: Dockerd;
  let src: Registry;
  let dst: Registry;
  let work: string;
  /** A's manifest digests of the two source images, and the big image's 3 MiB (incompressible) layer and config */
  const want: Record<string, string> = {};
  let bigLayer: { digest: string; size: number };
  let bigConfig: string;
  /** a bundle of both images packed straight from A (gzip layers, A's manifests), for the push cases */
  let bundle: string;
  let cases = 0;
  const fresh = async (): Promise<string> => mkdtemp(join(work, `case-${++cases}-`));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-faults-'));
    [d, src, dst] = await Promise.all([startDockerd('faults'), startRegistry(), startRegistry()]);
    await importBase(d, 'faults/base:1');
    await Promise.all([
      build(d, 'faults/big:1', 'FROM faults/base:1\nCOPY big.bin /srv/big.bin\nCOPY note.txt /srv/note.txt\n', { 'big.bin': pseudoRandom('big', 3 * MiB + 12_345), 'note.txt': 'big\n' }),
      build(d, 'faults/tool:1', 'FROM faults/base:1\nCOPY tool.sh /usr/local/bin/tool.sh\n', { 'tool.sh': '#!/bin/sh\necho tool\n' }),
    ]);
    for (const ref of ['faults/big:1', 'faults/tool:1']) {
      await exec('skopeo', ['--insecure-policy', 'copy', '--src-daemon-host', d.host, '--dest-tls-verify=false', `docker-daemon:${ref}`, `docker://${src.host}/${ref}`]);
      const res = await fetch(`http://${src.host}/v2/${ref.replace(':', '/manifests/')}`, { headers: { accept: ACCEPT } });
      want[ref] = res.headers.get('docker-content-digest')!;
      if (ref === 'faults/big:1') {
        const m = JSON.parse(await res.text()) as ManifestDoc;
        bigLayer = m.layers.reduce((a, b) => (b.size > a.size ? b : a));
        bigConfig = m.config.digest;
      }
    }
    assert.ok(bigLayer.size > 3 * MiB, `the big layer stays big in gzip: ${bigLayer.size}`);
    bundle = join(work, 'clean.ferry.tar');
    const packed = await run(['pack', `docker://${src.host}/faults/big:1`, `docker://${src.host}/faults/tool:1`, '-o', bundle]);
    assert.equal(packed.code, 0, packed.stderr);
  });

  after(async () => {
    await Promise.all([d?.stop(), src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** withProxy runs fn with a fresh fault proxy in front of `upstream`, closed after. */
  async function withProxy<T>(upstream: string, fn: (p: FaultProxy) => Promise<T>): Promise<T> {
    const p = await startFaultProxy(upstream);
    try {
      return await fn(p);
    } finally {
      await p.close();
    }
  }

  const bigBlobGet: Match = (m, u) => m === 'GET' && u.includes(`/blobs/${bigLayer.digest}`);
  const manifestGet = (repo: string): Match => is('GET', new RegExp(`/v2/${repo}/manifests/`));

  describe('pack docker:// (pull)', () => {
    it('a connection reset mid-blob is resumed with a Range request; the bundle holds the registry\'s exact bytes', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        const cut = MiB + 7;
        p.dropDownload({ after: cut, match: bigBlobGet });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar'), '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(json<Packed>(r).images[0]!.manifest, want['faults/big:1']);
        const gets = p.log.filter((e) => bigBlobGet(e.method, e.url, {}));
        assert.deepEqual(
          gets.map((e) => [e.fault, e.status]),
          [
            ['drop download', 200],
            [undefined, 206],
          ],
        );
        // The reset (RST) may lose the last bytes in flight; ferry asks for the rest from what it really got.
        const from = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
        assert.ok(from > cut - 64 * 1024 && from <= cut, `resumed at byte ${from} of a body cut at ${cut}`);
        note('pull, reset mid-blob', r, `cut at ${cut}, resumed with Range bytes=${from}- after ${gaps(gets)[0]} ms`);
        const v = await run(['verify', join(dir, 'b.ferry.tar')]);
        assert.equal(v.code, 0, v.stderr);
      });
    });

    it('500s on the manifest and 503s on a blob are retried with growing backoff, and the pack succeeds', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.fail(2, 500, { match: manifestGet('faults/big'), code: 'UNKNOWN', message: 'injected 500' });
        p.fail(2, 503, { match: bigBlobGet, message: 'injected 503' });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar'), '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(json<Packed>(r).images[0]!.manifest, want['faults/big:1']);
        for (const [match, status] of [[manifestGet('faults/big'), 500], [bigBlobGet, 503]] as const) {
          const tries = p.log.filter((e) => match(e.method, e.url, {}));
          assert.deepEqual(tries.map((e) => e.status), [status, status, 200]);
          const [g1, g2] = gaps(tries) as [number, number];
          // 200 ms, then 400 ms (each up to 25% more): backoff, growing, and not a busy loop.
          assert.ok(g1 >= 190 && g2 >= 390 && g2 > g1 && g2 < 2000, `gaps ${g1} ms, ${g2} ms`);
          note(`pull, ${status} x2 on ${status === 500 ? 'the manifest' : 'the big blob'}`, undefined, `attempts ${tries.map((e) => e.status).join(', ')}, gaps ${g1} ms, ${g2} ms`);
        }
        note('pull, 500s and 503s', r);
        assert.equal((await run(['verify', join(dir, 'b.ferry.tar')])).code, 0);
      });
    });

    it('429 with Retry-After: 1 is honoured (≥ 1 s before the next attempt) on a manifest and a blob', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.fail(1, 429, { match: manifestGet('faults/tool'), retryAfter: 1, code: 'TOOMANYREQUESTS', message: 'slow down' });
        p.fail(1, 429, { match: bigBlobGet, retryAfter: 1, code: 'TOOMANYREQUESTS', message: 'slow down' });
        const r = await run(['pack', `docker://${p.host}/faults/tool:1`, `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar'), '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(json<Packed>(r).images.map((i) => i.manifest).sort(), [want['faults/tool:1'], want['faults/big:1']].sort());
        for (const match of [manifestGet('faults/tool'), bigBlobGet]) {
          const tries = p.log.filter((e) => match(e.method, e.url, {}));
          assert.deepEqual(tries.map((e) => e.status), [429, 200]);
          assert.ok(gaps(tries)[0]! >= 980, `next attempt after ${gaps(tries)[0]} ms`);
          note(`pull, 429 Retry-After: 1 on ${tries[0]!.url.slice(0, 60)}`, undefined, `next attempt after ${gaps(tries)[0]} ms`);
        }
        note('pull, 429s', r);
      });
    });

    it('stalls past FERRY_REGISTRY_TIMEOUT (no headers; headers then silence mid-body) are given up and retried; a silent blob resumes where it stopped', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.stall({ match: manifestGet('faults/tool'), phase: 'headers' });
        p.stall({ match: manifestGet('faults/big'), phase: 'body', after: 40 });
        p.stall({ match: bigBlobGet, phase: 'body', after: 512 * 1024 });
        const r = await run(['pack', `docker://${p.host}/faults/tool:1`, `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar'), '--json'], { FERRY_REGISTRY_TIMEOUT: '2' });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(json<Packed>(r).images.map((i) => i.manifest).sort(), [want['faults/tool:1'], want['faults/big:1']].sort());
        for (const match of [manifestGet('faults/tool'), manifestGet('faults/big'), bigBlobGet]) {
          const tries = p.log.filter((e) => match(e.method, e.url, {}));
          assert.equal(tries.length, 2, JSON.stringify(tries));
          assert.ok(gaps(tries)[0]! >= 1950 && gaps(tries)[0]! < 5000, `retried after ${gaps(tries)[0]} ms`);
          note(`pull, ${tries[0]!.fault} (FERRY_REGISTRY_TIMEOUT=2) on ${tries[0]!.url.slice(0, 60)}`, undefined, `retried after ${gaps(tries)[0]} ms${tries[1]!.range ? ` with Range ${tries[1]!.range}` : ''}`);
        }
        note('pull, stalls', r);
        assert.equal(p.log.filter((e) => bigBlobGet(e.method, e.url, {}))[1]!.range, `bytes=${512 * 1024}-`);
        assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
        assert.equal((await run(['verify', join(dir, 'b.ferry.tar')])).code, 0);
      });
    });

    it('a registry that stays silent fails the pack with exit 5 after the retries, in bounded time, leaving nothing', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.stall({ match: bigBlobGet, phase: 'headers', times: 1000 });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar')], { FERRY_REGISTRY_TIMEOUT: '1' }, 30_000);
        assertFails(r, 5, [`registry ${p.host} did not answer for 1 s`, 'FERRY_REGISTRY_TIMEOUT']);
        assert.equal(p.log.filter((e) => bigBlobGet(e.method, e.url, {})).length, 5, 'five attempts');
        note('pull, silent registry (FERRY_REGISTRY_TIMEOUT=1)', r, `attempts at +${p.log.filter((e) => bigBlobGet(e.method, e.url, {})).map((e, _i, a) => e.at - a[0]!.at).join(', +')} ms`);
        // 5 × 1 s of silence + 0.2 + 0.4 + 0.8 + 1.6 s of backoff (+25%), plus start-up
        assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
        await assertEmpty(dir, 'silent registry');
      });
    });

    it('a blob served with wrong bytes is never accepted: exit 1 naming the blob and the registry, no bundle, no temp file', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.tamper({ match: bigBlobGet, rewrite: flipMiddle });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar')]);
        note('pull, tampered blob', r);
        assertFails(r, 1, [bigLayer.digest, `${p.host}/faults/big`]);
        await assertEmpty(dir, 'tampered blob');
        const j = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar'), '--json']);
        assert.equal(j.code, 1);
        const e = json<{ error: { code: string; message: string; exitCode: number } }>(j).error;
        assert.equal(e.exitCode, 1);
        assert.match(e.message, new RegExp(bigLayer.digest));
        await assertEmpty(dir, 'tampered blob, --json');
      });
    });

    it('a manifest served with wrong bytes is never accepted, by tag (Docker-Content-Digest) or by digest (no header)', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.tamper({ match: manifestGet('faults/tool'), rewrite: tamperDigest });
        const byTag = await run(['pack', `docker://${p.host}/faults/tool:1`, '-o', join(dir, 'b.ferry.tar')]);
        note('pull, tampered manifest by tag', byTag);
        assertFails(byTag, 1, [`manifest ${p.host}/faults/tool:1`, want['faults/tool:1']!]);
        await assertEmpty(dir, 'tampered manifest by tag');
        p.reset();
        p.tamper({ match: manifestGet('faults/tool'), rewrite: tamperDigest, dropDigestHeader: true });
        const byDigest = await run(['pack', `docker://${p.host}/faults/tool@${want['faults/tool:1']}`, '-o', join(dir, 'b.ferry.tar')]);
        note('pull, tampered manifest by digest', byDigest);
        assertFails(byDigest, 1, [`manifest ${p.host}/faults/tool@${want['faults/tool:1']}`]);
        await assertEmpty(dir, 'tampered manifest by digest');
      });
    });

    it('a blob that keeps going silent mid-body fails the pack with exit 5 once its resumes are spent, in bounded time, leaving nothing', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.stall({ match: bigBlobGet, phase: 'body', after: 256 * 1024, times: 1000 });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar')], { FERRY_REGISTRY_TIMEOUT: '1' }, 30_000);
        const tries = p.log.filter((e) => bigBlobGet(e.method, e.url, {}));
        assert.deepEqual(tries.map((e) => e.range), [undefined, ...[1, 2, 3, 4].map((k) => `bytes=${k * 256 * 1024}-`)], 'each resume went on from the bytes already had');
        note('pull, blob silent mid-body every time (FERRY_REGISTRY_TIMEOUT=1)', r, `ranges ${tries.map((e) => e.range ?? '-').join(', ')}`);
        assertFails(r, 5, [`registry ${p.host} stopped sending mid-answer for 1 s`]);
        assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
        await assertEmpty(dir, 'a blob that keeps stalling');
      });
    });

    it('every attempt 500: exit 1 after five attempts, in bounded time, quoting the registry, leaving nothing', async () => {
      await withProxy(src.host, async (p) => {
        const dir = await fresh();
        p.fail(1000, 500, { match: (m, u) => u !== '/v2/', code: 'UNKNOWN', message: 'storage backend down' });
        const r = await run(['pack', `docker://${p.host}/faults/big:1`, '-o', join(dir, 'b.ferry.tar')]);
        note('pull, every attempt 500', r, `attempts at +${p.log.filter((e) => manifestGet('faults/big')(e.method, e.url, {})).map((e, _i, a) => e.at - a[0]!.at).join(', +')} ms`);
        assertFails(r, 1, [`registry ${p.host}`, 'HTTP 500', 'storage backend down', '(5 attempts)', 'hint: the registry kept failing']);
        assert.equal(p.log.filter((e) => manifestGet('faults/big')(e.method, e.url, {})).length, 5);
        assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
        await assertEmpty(dir, 'persistent 500');
      });
    });
  });

  describe('push --to (upload)', () => {
    const bigPut: Match = (m, u) => m === 'PUT' && u.includes(`digest=${encodeURIComponent(bigLayer.digest)}`);

    it('resets mid-PATCH and on the closing PUT: the upload resumes where the registry stands, resending none of what it holds', async () => {
      await withProxy(dst.host, async (p) => {
        const chunk = MiB;
        // The PATCH carrying the big layer's third MiB is cut after 300 KB, before the registry sees any of it (nginx-style buffering).
        p.dropUpload({ nth: 1, after: 300_000, buffered: true, match: (_m, _u, h) => String(h['content-range']).startsWith(`${2 * chunk}-`) });
        // Its closing PUT is lost before the registry sees it; the config's PUT reaches the registry but its answer is lost.
        p.dropRequest({ match: bigPut, when: 'before' });
        p.dropRequest({ match: (m, u) => m === 'PUT' && u.includes(`digest=${encodeURIComponent(bigConfig)}`), when: 'after' });
        const r = await run(['push', bundle, '--to', `${p.host}/resets`, '--json'], { FERRY_REGISTRY_CHUNK_SIZE: String(chunk) });
        assert.equal(r.code, 0, r.stderr);
        const pushed = json<Pushed>(r);

        const cutPatch = p.log.find((e) => e.fault === 'drop upload buffered')!;
        assert.ok(cutPatch, 'the PATCH was cut');
        const session = p.log.filter((e) => sessionOf(e.url) === sessionOf(cutPatch.url));
        const afterCut = session.slice(session.indexOf(cutPatch) + 1);
        // Asked where it stands (2 MiB held), then only the rest, in one session.
        assert.equal(afterCut[0]!.method, 'GET');
        assert.equal(afterCut[0]!.status, 204);
        const resent = afterCut.filter((e) => e.method === 'PATCH');
        assert.equal(resent[0]!.contentRange?.split('-')[0], String(2 * chunk), 'the resumed PATCH starts at the registry\'s offset');
        assert.equal(resent.reduce((n, e) => n + e.bodyBytes, 0), bigLayer.size - 2 * chunk, 'nothing the registry held was sent again');
        const patched = session.filter((e) => e.method === 'PATCH' && e !== cutPatch).reduce((n, e) => n + e.bodyBytes, 0);
        assert.equal(patched, bigLayer.size, 'the blob went up exactly once, apart from the cut request');
        // The lost PUT: the registry is asked whether the blob landed (no), where the upload stands (all of it), and the PUT is sent again.
        const puts = p.log.filter((e) => bigPut(e.method, e.url, {}));
        assert.deepEqual(puts.map((e) => [e.fault, e.status]), [['drop before', undefined], [undefined, 201]]);
        const between = p.log.slice(p.log.indexOf(puts[0]!) + 1, p.log.indexOf(puts[1]!)).filter((e) => e.url.includes(bigLayer.digest) || sessionOf(e.url) === sessionOf(puts[0]!.url));
        assert.deepEqual(between.map((e) => `${e.method} ${e.status}`), ['HEAD 404', 'GET 204']);
        // The PUT that landed unheard: the registry says it holds the blob, and nothing is sent again.
        note('push, reset mid-PATCH and on PUTs', r, `cut PATCH ${cutPatch.contentRange} after ${cutPatch.bodyBytes} B; then ${afterCut.map((e) => `${e.method} ${e.contentRange ?? ''} ${e.status ?? '-'}`.replace('  ', ' ')).join(', ')}; ${resent.reduce((n, e) => n + e.bodyBytes, 0)} B resent of ${bigLayer.size}`);
        const configPuts = p.log.filter((e) => e.method === 'PUT' && e.url.includes(encodeURIComponent(bigConfig)));
        assert.deepEqual(configPuts.map((e) => [e.fault, e.status]), [['drop after', 201]]);
        // Every PATCH byte is accounted for: the blobs ferry says it uploaded, plus the 300 KB of the cut request.
        const allPatched = p.log.filter((e) => e.method === 'PATCH').reduce((n, e) => n + e.bodyBytes, 0);
        assert.equal(allPatched, pushed.bytesUploaded + cutPatch.bodyBytes);

        const hashed = new Set<string>();
        for (const [ref, digest] of Object.entries(want)) {
          const [repo, tag] = ref.split(':') as [string, string];
          const got = pushed.images.find((i) => i.name === `${p.host}/resets/${ref}`);
          assert.equal(got?.digest, digest, `${ref} keeps its digest`);
          await checkImage(dst.host, `resets/${repo}`, tag, digest, hashed, { skopeo: true });
        }
      });
    });

    it('500s and 503s on blob HEADs, PATCHes and manifest PUTs, and a 429 with Retry-After: 1 on a PATCH, are ridden out', async () => {
      await withProxy(dst.host, async (p) => {
        p.fail(2, 503, { match: is('HEAD', /\/blobs\/sha256:/), message: 'injected 503' });
        p.fail(1, 500, { match: is('PATCH', /./), code: 'UNKNOWN', message: 'injected 500' });
        p.fail(1, 429, { match: is('PATCH', /./), retryAfter: 1, code: 'TOOMANYREQUESTS', message: 'slow down' });
        p.fail(2, 500, { match: is('PUT', /\/manifests\//), code: 'UNKNOWN', message: 'injected 500' });
        const r = await run(['push', bundle, '--to', `${p.host}/statuses`, '--json'], { FERRY_REGISTRY_CHUNK_SIZE: String(MiB) });
        assert.equal(r.code, 0, r.stderr);
        const pushed = json<Pushed>(r);
        assert.equal(p.log.filter((e) => e.fault).length, 6, 'every fault was met');
        // Each refused PATCH is followed, in its session, by a status check and the same bytes again; after the 429, ≥ 1 s later.
        for (const status of [500, 429]) {
          const refused = p.log.find((e) => e.method === 'PATCH' && e.fault === `status ${status}`)!;
          const next = p.log.filter((e) => sessionOf(e.url) === sessionOf(refused.url) && e.at >= refused.at && e !== refused);
          assert.equal(next[0]?.method, 'GET', `a status check after the ${status}`);
          const again = next.find((e) => e.method === 'PATCH')!;
          assert.equal(again.contentRange, refused.contentRange, 'the refused chunk, not the whole blob, is sent again');
          note(`push, PATCH ${status}`, undefined, `status check after ${next[0]!.at - refused.at} ms, chunk ${again.contentRange} sent again`);
          if (status === 429) assert.ok(next[0]!.at - refused.at >= 980, `Retry-After honoured: ${next[0]!.at - refused.at} ms`);
          else assert.ok(next[0]!.at - refused.at >= 190, 'backoff');
        }
        note('push, 5xx/429', r);
        const manifestPuts = p.log.filter((e) => e.method === 'PUT' && e.url.includes('/manifests/'));
        assert.equal(manifestPuts.filter((e) => e.status === 500).length, 2);
        const hashed = new Set<string>();
        for (const [ref, digest] of Object.entries(want)) {
          const [repo, tag] = ref.split(':') as [string, string];
          assert.equal(pushed.images.find((i) => i.name === `${p.host}/statuses/${ref}`)?.digest, digest);
          await checkImage(dst.host, `statuses/${repo}`, tag, digest, hashed);
        }
      });
    });

    it('a PATCH and a manifest PUT left unanswered past FERRY_REGISTRY_TIMEOUT are given up and retried; the push completes', async () => {
      await withProxy(dst.host, async (p) => {
        p.stall({ match: (m, _u, h) => m === 'PATCH' && String(h['content-range']).startsWith(`${MiB}-`), phase: 'headers' });
        p.stall({ match: is('PUT', /\/manifests\//), phase: 'headers' });
        const r = await run(['push', bundle, '--to', `${p.host}/stalls`, '--json'], { FERRY_REGISTRY_TIMEOUT: '2', FERRY_REGISTRY_CHUNK_SIZE: String(MiB) });
        assert.equal(r.code, 0, r.stderr);
        const stalled = p.log.filter((e) => e.fault === 'stall headers');
        assert.equal(stalled.length, 2);
        for (const s of stalled) {
          const next = p.log.find((e) => e !== s && e.at >= s.at && (s.method === 'PATCH' ? sessionOf(e.url) === sessionOf(s.url) : e.url === s.url))!;
          assert.ok(next.at - s.at >= 1950 && next.at - s.at < 6000, `${s.method} retried after ${next.at - s.at} ms`);
          note(`push, ${s.method} unanswered (FERRY_REGISTRY_TIMEOUT=2)`, undefined, `next request of it (${next.method}) after ${next.at - s.at} ms`);
        }
        const hashed = new Set<string>();
        for (const [ref, digest] of Object.entries(want)) {
          const [repo, tag] = ref.split(':') as [string, string];
          assert.equal(json<Pushed>(r).images.find((i) => i.name === `${p.host}/stalls/${ref}`)?.digest, digest);
          await checkImage(dst.host, `stalls/${repo}`, tag, digest, hashed);
        }
      });
    });
  });

  describe('failures with credentials (Basic auth): the password is never printed', { skip: htpasswd ? undefined : missing(['htpasswd']) }, () => {
    let secured: Registry;
    let dir: string;
    let credsFile: string;
    const basic = Buffer.from(`ferry:${PASSWORD}`).toString('base64');
    const assertNoSecret = async (r: FerryRun, what: string, files: string[] = []): Promise<void> => {
      for (const [name, text] of [['stdout', r.stdout], ['stderr', r.stderr], ...(await Promise.all(files.map(async (f) => [f, await readFile(f, 'utf8').catch(() => '')])))] as [string, string][]) {
        assert.ok(!text.includes(PASSWORD), `${what}: the password is in ${name}:\n${text}`);
        assert.ok(!text.includes(basic), `${what}: the Basic credentials are in ${name}:\n${text}`);
      }
    };

    before(async () => {
      dir = await mkdtemp(join(work, 'auth-'));
      await writeFile(join(dir, 'htpasswd'), `${htpasswd}\n`);
      secured = await startRegistry(`auth:\n  htpasswd:\n    realm: ferry-test\n    path: ${join(dir, 'htpasswd')}\n`);
      credsFile = join(dir, 'creds');
      await writeFile(credsFile, `ferry:${PASSWORD}\n`);
    });
    after(async () => secured?.stop());

    it('persistent 500s, a silent registry, a tampered manifest and a refused password, each with its exit code and no secret in any output', async () => {
      await withProxy(secured.host, async (p) => {
        const env = { DOCKER_CONFIG: dir, FERRY_DEBUG: '1' };
        // Works through the proxy first: the credentials are right.
        const ok = await run(['push', bundle, '--to', `${p.host}/auth`, '--creds-file', credsFile, '--json'], env);
        assert.equal(ok.code, 0, ok.stderr);
        await assertNoSecret(ok, 'a good push');

        p.reset();
        p.fail(1000, 500, { match: (m, u) => u !== '/v2/', code: 'UNKNOWN', message: 'storage backend down' });
        const receipt = join(dir, 'receipt.json');
        const down = await run(['push', bundle, '--to', `${p.host}/auth2`, '--creds', `ferry:${PASSWORD}`, '--json', '--receipt', receipt], env);
        assert.equal(down.code, 1, down.stderr);
        assert.ok(down.ms < 12_000, `took ${down.ms} ms`);
        const e = json<{ error: { code: string; message: string; exitCode: number } }>(down).error;
        assert.deepEqual([e.code, e.exitCode], ['REGISTRY_ERROR', 1]);
        assert.match(e.message, /HTTP 500.*\(5 attempts\)/);
        await assertNoSecret(down, 'persistent 500 (push, --json, FERRY_DEBUG)', [receipt]);
        note('push with Basic auth, every attempt 500', down, e.message);

        p.reset();
        p.stall({ match: (m, u) => u !== '/v2/', phase: 'headers', times: 1000 });
        const silent = await run(['push', bundle, '--to', `${p.host}/auth3`, '--creds-file', credsFile], { ...env, FERRY_REGISTRY_TIMEOUT: '1' }, 40_000);
        // FERRY_DEBUG adds the cause's stack: the message is still the first line.
        assert.equal(silent.code, 5, silent.stderr);
        assert.match(silent.stderr, new RegExp(`^ferry: registry ${p.host} did not answer for 1 s`, 'm'));
        await assertNoSecret(silent, 'a silent registry (push, FERRY_DEBUG)');
        note('push with Basic auth, silent registry (FERRY_REGISTRY_TIMEOUT=1)', silent);

        p.reset();
        p.tamper({ match: manifestGet('auth/faults/big'), rewrite: tamperDigest });
        const out = await fresh();
        const tampered = await run(['pack', `docker://${p.host}/auth/faults/big:1`, '-o', join(out, 'b.ferry.tar'), '--creds', `ferry:${PASSWORD}`, '--json'], env);
        assert.equal(tampered.code, 1, tampered.stderr);
        assert.match(json<{ error: { message: string } }>(tampered).error.message, new RegExp(`manifest ${p.host}/auth/faults/big:1 digest`));
        await assertNoSecret(tampered, 'a tampered manifest (pack, --json, FERRY_DEBUG)');
        await assertEmpty(out, 'tampered manifest with credentials');

        p.reset();
        await writeFile(join(dir, 'wrong'), `ferry:${PASSWORD}-wrong\n`);
        const refused = await run(['pack', `docker://${p.host}/auth/faults/big:1`, '-o', join(out, 'b.ferry.tar'), '--creds-file', join(dir, 'wrong')], env);
        assert.equal(refused.code, 5, refused.stderr);
        assert.match(refused.stderr, new RegExp(`^ferry: registry ${p.host} refused the credentials`, 'm'));
        await assertNoSecret(refused, 'a refused password (pack, FERRY_DEBUG)');
        note('pack with a wrong password', refused);
        await assertEmpty(out, 'refused password');
      });
    });
  });

  describe('load: 50 images in one push', () => {
    it('builds 50 images (some sharing layers), packs and pushes them to a fresh registry, and every manifest and blob there checks out', { timeout: 240_000 }, async () => {
      const t0 = Date.now();
      const groups = 5;
      for (let g = 0; g < groups; g++) {
        // Shared layers: each group's middle layer is used by 10 images.
        await build(d, `load/group-${g}:1`, `FROM faults/base:1\nCOPY shared.txt /srv/shared-${g}.txt\n`, { 'shared.txt': `shared by group ${g}\n${'x'.repeat(1000 * (g + 1))}\n` });
      }
      const names = Array.from({ length: 50 }, (_, i) => `load/app-${String(i).padStart(2, '0')}:v${i % 3}`);
      let next = 0;
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          while (next < names.length) {
            const i = next++;
            const files: Record<string, string | Buffer> = { 'own.bin': pseudoRandom(`own-${i}`, 2048 + i * 97) };
            // Every fifth image also carries a layer identical to another group's: same content, same layer.
            const extra = i % 5 === 0 ? `COPY common.txt /srv/common.txt\n` : '';
            if (extra) files['common.txt'] = 'one layer many images share\n';
            await build(d, names[i]!, `FROM load/group-${i % groups}:1\n${extra}COPY own.bin /srv/own-${i}.bin\n`, files);
          }
        }),
      );
      const built = Date.now() - t0;

      const out = join(work, 'load.ferry.tar');
      const packed = await run(['pack', ...names, '-o', out, '--json'], {}, 120_000, d.host);
      assert.equal(packed.code, 0, packed.stderr);
      assert.equal(json<Packed>(packed).images.length, 50);

      const fresh = await startRegistry();
      try {
        const pushed = await withProxy(fresh.host, async (p) => {
          const r = await run(['push', out, '--to', `${p.host}/fleet`, '--json'], {}, 120_000);
          assert.equal(r.code, 0, r.stderr);
          // Parallel uploads inside ferry: requests overlap in time.
          const events = p.log.flatMap((e) => [[e.at, 1], [e.done ?? e.at, -1]] as [number, number][]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          let inFlight = 0;
          let most = 0;
          for (const [, delta] of events) most = Math.max(most, (inFlight += delta));
          assert.ok(most >= 2, `at most ${most} request(s) at once`);
          return { result: json<Pushed>(r), ms: r.ms, requests: p.log.length, most };
        });
        const res = pushed.result;
        assert.equal(res.images.length, 50);
        const hashed = new Set<string>();
        let blobsChecked = 0;
        for (const img of res.images) {
          const m = /^[^/]+\/(fleet\/load\/app-\d\d):(v\d)$/.exec(img.name);
          assert.ok(m, img.name);
          await checkImage(fresh.host, m[1]!, m[2]!, img.digest, hashed, { skopeo: img.name.endsWith('app-00:v0') || img.name.endsWith('app-49:v1') });
          blobsChecked++;
        }
        // The layers shared by a group went up once and were mounted into the other repositories.
        assert.ok(res.blobs.mounted >= 40, JSON.stringify(res.blobs));
        process.stderr.write(
          `# load: built 55 images in ${(built / 1000).toFixed(1)} s, packed in ${(packed.ms / 1000).toFixed(1)} s, pushed in ${(pushed.ms / 1000).toFixed(1)} s ` +
            `(${pushed.requests} requests, up to ${pushed.most} at once; ${res.blobs.uploaded} uploaded, ${res.blobs.mounted} mounted, ${res.blobs.present} present); ${blobsChecked} manifests and ${hashed.size} distinct blobs checked\n`,
        );
      } finally {
        await fresh.stop();
      }
    });
  });
});
