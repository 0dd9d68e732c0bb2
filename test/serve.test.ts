// `ferry serve` with real clients: skopeo and a Docker daemon pull from it, curl resumes a blob by range; the API's
// answers (manifests by tag and digest, tags and catalog pages, refused writes, hostile paths), TLS with a reloaded
// certificate, Basic auth, a damaged or altered bundle not served as good, and a short soak of 32 clients.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { selfSigned } from './helpers/certs.js';
import { containerdMissing, startContainerd } from './helpers/containerd.js';
import { build, buildTestImages, startDockerd, type Dockerd, type TestImages } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { serve, type Served } from './helpers/serve.js';
import { htpasswdLine } from './helpers/htpasswd.js';
import { readTarEntry } from './helpers/tar.js';
import { missing } from './helpers/tools.js';
import bcrypt from 'bcryptjs';
import { exec } from '../bench/exec.js';

const skip = missing(['dockerd', 'docker', 'busybox', 'skopeo', 'curl', 'openssl'], { root: true });
const SOAK_SECONDS = Number(process.env.FERRY_SERVE_SOAK_SECONDS ?? 3);

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** raw sends a request with the path exactly as given (no URL normalisation), for hostile paths. */
function raw(host: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const [hostname, port] = host.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port: Number(port), method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ferry serve: bundles as a read-only registry', { skip }, () => {
  let src: Dockerd;
  let imgs: TestImages;
  let work: string;
  let bundle: string;
  let served: Served;
  let index: { images: { refs: string[]; imageId: string; manifest: { digest: string; mediaType: string }; layers: { digest: string }[] }[]; blobs: { digest: string; size: number }[] };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-serve-'));
    src = await startDockerd('serve-src');
    imgs = await buildTestImages(src);
    bundle = join(work, 'week.ferry.tar');
    // gzip: Docker 20.10 pulls no zstd layers.
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/app:latest', 'ferry-test/tool:2', '-o', bundle, '--compression', 'gzip'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    index = JSON.parse((await readTarEntry(bundle, 'ferry.json')).toString());
    served = await serve([bundle]);
  });

  after(async () => {
    await served?.stop();
    await src?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const app = (): (typeof index.images)[number] => index.images.find((i) => i.refs.includes('docker.io/ferry-test/app:1'))!;

  it('answers /v2/, the catalog and tags lists, with pages', async () => {
    let r = await fetch(`${served.url}/v2/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
    r = await fetch(`${served.url}/v2/_catalog`);
    assert.deepEqual(await r.json(), { repositories: ['ferry-test/app', 'ferry-test/tool'] });
    r = await fetch(`${served.url}/v2/_catalog?n=1`);
    assert.deepEqual(await r.json(), { repositories: ['ferry-test/app'] });
    assert.match(r.headers.get('link')!, /last=ferry-test%2Fapp&n=1>; rel="next"/);
    r = await fetch(`${served.url}/v2/ferry-test/app/tags/list`);
    assert.deepEqual(await r.json(), { name: 'ferry-test/app', tags: ['1', 'latest'] });
    r = await fetch(`${served.url}/v2/ferry-test/app/tags/list?n=1&last=1`);
    assert.deepEqual(await r.json(), { name: 'ferry-test/app', tags: ['latest'] });
    r = await fetch(`${served.url}/v2/ferry-test/nothing/tags/list`);
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NAME_UNKNOWN');
  });

  it('serves manifests by tag and digest (HEAD and GET) with their digest and stored media type, as a docker.io mirror too', async () => {
    const m = app().manifest;
    for (const ref of ['1', m.digest]) {
      const head = await fetch(`${served.url}/v2/ferry-test/app/manifests/${ref}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('docker-content-digest'), m.digest);
      const get = await fetch(`${served.url}/v2/ferry-test/app/manifests/${ref}?ns=docker.io`, { headers: { accept: m.mediaType } });
      assert.equal(get.headers.get('content-type'), m.mediaType);
      assert.equal(sha(Buffer.from(await get.arrayBuffer())), m.digest);
    }
    const refused = await fetch(`${served.url}/v2/ferry-test/app/manifests/1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v1+json' } });
    assert.equal(refused.status, 404, 'a media type the client does not accept is not sent');
    assert.equal((await fetch(`${served.url}/v2/ferry-test/app/manifests/1?ns=quay.io`)).status, 404, 'a mirror request for another registry');
  });

  it('serves blobs whole and by range; curl resumes a cut download to the right digest; a bad range is 416', async () => {
    const layer = index.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    const url = `${served.url}/v2/ferry-test/app/blobs/${layer.digest}`;
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.equal(sha(whole), layer.digest);
    const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${layer.size}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), whole.subarray(100, 200));
    const file = join(work, 'resumed.blob');
    await exec('curl', ['-sf', '-r', '0-999', '-o', file, url]);
    await exec('curl', ['-sf', '-C', '-', '-o', file, url]);
    assert.equal(sha(await readFile(file)), layer.digest, 'a resumed download is the blob');
    const bad = await fetch(url, { headers: { range: `bytes=${layer.size}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${layer.size}`);
    assert.equal((await fetch(url, { headers: { range: 'bytes=oops' } })).status, 200, 'a malformed range: the whole blob');
    const logged = [...served.log().matchAll(new RegExp(`"GET /v2/ferry-test/app/blobs/${layer.digest}" (\\d+) (\\d+) `, 'g'))].map((m) => [Number(m[1]), Number(m[2])]);
    assert.ok(logged.some(([status, bytes]) => status === 200 && bytes! > layer.size), `the log counts the bytes sent: ${JSON.stringify(logged)}`);
    assert.ok(logged.some(([status, bytes]) => status === 206 && bytes! > 100 && bytes! < 1000), 'and of a range, only those');
  });

  it('refuses writes with UNSUPPORTED (405) and hostile names or digests with the API errors, never reading outside', async () => {
    for (const [method, path] of [['POST', '/v2/ferry-test/app/blobs/uploads/'], ['PUT', '/v2/ferry-test/app/manifests/1'], ['DELETE', `/v2/ferry-test/app/manifests/${app().manifest.digest}`], ['PATCH', '/v2/ferry-test/app/blobs/uploads/x']]) {
      const r = await raw(served.host, method!, path!);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal((JSON.parse(r.body) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
    }
    const cases: [string, number][] = [
      ['/v2/../../../../etc/passwd/manifests/latest', 404],
      ['/v2/ferry-test/app/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd', 400],
      ['/v2/ferry-test/app/blobs/../../../../etc/passwd', 404],
      ['/v2/ferry-test/app/manifests/..%2F..%2Fferry.json', 400],
      [`/v2/ferry-test/app/blobs/sha256:${'0'.repeat(64)}`, 404],
      ['/v2/FERRY/app/tags/list', 400],
      ['/etc/passwd', 404],
    ];
    for (const [path, status] of cases) {
      const r = await raw(served.host, 'GET', path);
      assert.equal(r.status, status, `${path}: ${r.body}`);
      assert.doesNotMatch(r.body, /root:|"mediaType"/);
    }
  });

  it('skopeo copies an image from it; a Docker daemon pulls it with the source image ID, by its address and as its registry-mirror', async () => {
    const dir = join(work, 'skopeo-copy');
    await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${served.host}/ferry-test/app:1`, `dir:${dir}`]);
    assert.equal(sha(await readFile(join(dir, 'manifest.json'))), app().manifest.digest, 'the manifest byte for byte');
    // As daemon.json's "registry-mirrors" would set it: docker.io names pulled from ferry, no retagging.
    const dst = await startDockerd('serve-pull', { extraArgs: [`--registry-mirror=${served.url}`] });
    try {
      await dst.docker(['pull', `${served.host}/ferry-test/app:1`]);
      assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', `${served.host}/ferry-test/app:1`])).trim(), imgs.app);
      await dst.docker(['pull', 'ferry-test/tool:2']);
      assert.equal((await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-test/tool:2'])).trim(), imgs.tool);
    } finally {
      await dst.stop();
    }
    assert.match(served.log(), /"GET \/v2\/ferry-test\/app\/manifests\/1" 200 /, 'one access-log line a request');
    assert.match(served.log(), /"HEAD \/v2\/ferry-test\/tool\/manifests\/2" 200 /, 'the docker.io name was pulled through the mirror');
  });

  it('containerd pulls docker.io/ferry-test/app:1 through a hosts.toml mirror, no name changed', { skip: containerdMissing() }, async () => {
    const ctd = await startContainerd('serve-mirror');
    try {
      const hosts = join(work, 'certs.d', 'docker.io');
      await mkdir(hosts, { recursive: true });
      await writeFile(join(hosts, 'hosts.toml'), `server = "https://registry-1.docker.io"\n\n[host."${served.url}"]\n  capabilities = ["pull", "resolve"]\n`);
      await ctd.ctr(['-n', 'mirror', 'images', 'pull', '--hosts-dir', join(work, 'certs.d'), 'docker.io/ferry-test/app:1']);
      const listed = await ctd.ctr(['-n', 'mirror', 'images', 'ls']);
      assert.match(listed, new RegExp(`docker.io/ferry-test/app:1\\s+\\S+\\s+${app().manifest.digest}`));
      assert.match(served.log(), /manifests\/1\?ns=docker.io" 200/, 'asked as a mirror of docker.io');
    } finally {
      await ctd.stop();
    }
  });

  it('serves every volume of a set together, under names rewritten by --retag', async () => {
    const dir = await mkdtemp(join(work, 'volumes-'));
    const run = await ferry(['pack', 'ferry-test/app:1', 'ferry-test/tool:2', '-o', join(dir, 'set.ferry.tar'), '--compression', 'gzip', '--max-volume-size', '1MB', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const volumes = (JSON.parse(run.stdout) as { volumes: { path: string }[] }).volumes.map((v) => v.path);
    assert.ok(volumes.length >= 2, `a set of ${volumes.length}`);
    const set = await serve([...volumes, '--retag', 'docker.io/ferry-test/=site/']);
    try {
      assert.deepEqual(await (await fetch(`${set.url}/v2/_catalog`)).json(), { repositories: ['site/app', 'site/tool'] });
      const dest = join(dir, 'copied');
      await exec('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${set.host}/site/app:1`, `dir:${dest}`]);
      assert.equal(sha(await readFile(join(dest, 'manifest.json'))), app().manifest.digest);
    } finally {
      await set.stop();
    }
  });

  it('a damaged blob is never served, and a bundle altered while served stops being served as good', async () => {
    const copy = join(work, 'damaged.ferry.tar');
    await copyFile(bundle, copy);
    const layer = index.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    const entries = await exec('tar', ['-tvf', copy]);
    assert.ok(entries.stdout.includes(layer.digest.slice(7)));
    // Flip a byte in the middle of the biggest blob: find it by its bytes.
    const good = Buffer.from(await (await fetch(`${served.url}/v2/ferry-test/app/blobs/${layer.digest}`)).arrayBuffer());
    const all = await readFile(copy);
    const at = all.indexOf(good.subarray(0, 4096)) + Math.floor(good.length / 2);
    const fh = await open(copy, 'r+');
    await fh.write(Buffer.from([all[at]! ^ 0xff]), 0, 1, at);
    await fh.close();
    const refused = async (url: string, headers: Record<string, string> = {}): Promise<void> => {
      const r = await fetch(url, { headers });
      assert.equal(r.status, 500, JSON.stringify(headers));
      assert.match(((await r.json()) as { errors: { message: string }[] }).errors[0]!.message, /not the blob its index names/);
    };
    // Checked ahead (the default): the damage is reported at once, and the blob is never sent.
    const ahead = await serve([copy]);
    try {
      for (let waited = 0; !/not the blob its index names/.test(ahead.errors()) && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      assert.match(ahead.errors(), new RegExp(`warning: .*${layer.digest.slice(7)}.* is not the blob its index names`));
      await refused(`${ahead.url}/v2/ferry-test/app/blobs/${layer.digest}`);
    } finally {
      await ahead.stop();
    }
    // A range first: the blob is checked whole before any byte is sent.
    const ranged = await serve([copy, '--no-check-ahead']);
    try {
      await refused(`${ranged.url}/v2/ferry-test/app/blobs/${layer.digest}`, { range: 'bytes=0-99' });
      await refused(`${ranged.url}/v2/ferry-test/app/blobs/${layer.digest}`);
    } finally {
      await ranged.stop();
    }
    // The whole blob first: checked as it is sent, its last bytes held back, so the client never has it whole.
    const bad = await serve([copy, '--no-check-ahead']);
    try {
      const blobUrl = `${bad.url}/v2/ferry-test/app/blobs/${layer.digest}`;
      const first = await fetch(blobUrl);
      assert.equal(first.status, 200);
      await assert.rejects(first.arrayBuffer(), 'the connection drops short of the content-length');
      await refused(blobUrl);
      await refused(blobUrl, { range: 'bytes=0-99' });
      assert.match(bad.log(), new RegExp(`GET /v2/ferry-test/app/blobs/${layer.digest}" 200 \\d+ \\(cut short\\)`));
      assert.equal((await fetch(`${bad.url}/v2/ferry-test/app/manifests/1`)).status, 200, 'what is intact is served');
      // Altered while served: after the next look at the file, nothing of it is served.
      await writeFile(copy, Buffer.alloc(10), { flag: 'a' });
      await new Promise((r) => setTimeout(r, 1200));
      const r = await fetch(`${bad.url}/v2/ferry-test/app/manifests/1`);
      assert.equal(r.status, 500);
      assert.match(await r.text(), /changed on disk while it was served/);
    } finally {
      await bad.stop();
    }
  });

  it('TLS with a certificate reloaded when its files change; Basic auth from an htpasswd file; plain HTTP off loopback refused', async () => {
    const dir = await mkdtemp(join(work, 'tls-'));
    const first = selfSigned(dir, 'one', 'serve-one');
    const certFile = join(dir, 'serve.crt');
    const keyFile = join(dir, 'serve.key');
    await copyFile(first.certFile, certFile);
    await copyFile(first.keyFile, keyFile);
    // As `htpasswd -B` writes it ($2y$): apache2-utils' own where it is installed.
    const line = htpasswdLine('site', 's3cret') ?? `site:${bcrypt.hashSync('s3cret', 4).replace(/^\$2b\$/, '$2y$')}`;
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, `# site users\n${line}\n`);
    const secure = await serve(['--tls-cert', certFile, '--tls-key', keyFile, '--htpasswd', htpasswd, bundle]);
    try {
      const certDir = join(dir, 'certs');
      await mkdir(certDir);
      await copyFile(first.certFile, join(certDir, 'ca.crt'));
      await exec('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir, '--src-creds', 'site:s3cret', `docker://${secure.host}/ferry-test/tool:2`, `dir:${join(dir, 'copied')}`]);
      const agent = new Agent({ connect: { ca: first.cert } });
      const none = await undiciFetch(`${secure.url}/v2/`, { dispatcher: agent });
      assert.equal(none.status, 401);
      assert.match(none.headers.get('www-authenticate')!, /^Basic /);
      const wrong = await undiciFetch(`${secure.url}/v2/`, { dispatcher: agent, headers: { authorization: `Basic ${Buffer.from('site:nope').toString('base64')}` } });
      assert.equal(wrong.status, 401);
      const right = await undiciFetch(`${secure.url}/v2/ferry-test/tool/tags/list`, { dispatcher: agent, headers: { authorization: `Basic ${Buffer.from('site:s3cret').toString('base64')}` } });
      assert.equal(right.status, 200);
      await agent.close();
      // A renewed certificate is served without a restart.
      const second = selfSigned(dir, 'two', 'serve-two');
      await copyFile(second.keyFile, keyFile);
      await copyFile(second.certFile, certFile);
      const peerCn = (): Promise<string> =>
        new Promise((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: Number(secure.host.split(':')[1]), rejectUnauthorized: false }, () => {
            resolve(String(s.getPeerCertificate().subject.CN));
            s.end();
          });
          s.on('error', reject);
        });
      let cn = await peerCn();
      for (let t = Date.now(); cn !== 'serve-two' && Date.now() - t < 10_000; cn = await peerCn()) await new Promise((r) => setTimeout(r, 250));
      assert.equal(cn, 'serve-two');
    } finally {
      await secure.stop();
    }
    const plain = await ferry(['serve', bundle, '--listen', '0.0.0.0:0']);
    assert.equal(plain.code, 2, plain.stderr);
    assert.match(plain.stderr, /--tls-cert/);
  });

  type Big = { bundle: string; layer: { digest: string; size: number } };
  let big: Promise<Big> | undefined;
  /** bigImage builds (once) an image with a 24 MB incompressible layer, and packs it. */
  const bigImage = (): Promise<Big> =>
    (big ??= (async () => {
      await build(src, 'ferry-test/big:1', 'FROM ferry-test/base:1\nCOPY big.bin /big.bin\n', { 'big.bin': randomBytes(24 << 20) });
      const out = join(work, 'big.ferry.tar');
      const packed = await ferry(['pack', 'ferry-test/big:1', '-o', out], { dockerHost: src.host });
      assert.equal(packed.code, 0, packed.stderr);
      const bigIndex: typeof index = JSON.parse((await readTarEntry(out, 'ferry.json')).toString());
      const layer = bigIndex.blobs.reduce((a, b) => (b.size > a.size ? b : a));
      assert.ok(layer.size > 20 << 20, `a blob of ${layer.size} bytes`);
      return { bundle: out, layer };
    })());

  it('a blob spanning volumes is served whole, and by a range across a volume boundary', async () => {
    const { layer } = await bigImage();
    const dir = await mkdtemp(join(work, 'spanning-'));
    const run = await ferry(['pack', 'ferry-test/big:1', '-o', join(dir, 'big.ferry.tar'), '--max-volume-size', '10MB', '--json'], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    const volumes = (JSON.parse(run.stdout) as { volumes: { path: string }[] }).volumes.map((v) => v.path);
    const parts = (
      await Promise.all(volumes.map(async (v) => (JSON.parse((await readTarEntry(v, 'ferry.json')).toString()) as { parts?: { digest: string; offset: number }[] }).parts ?? []))
    ).flat();
    const boundary = parts.filter((p) => p.digest === layer.digest && p.offset > 0).map((p) => p.offset)[0];
    assert.ok(boundary, 'the layer spans volumes');
    const set = await serve([...volumes].reverse());
    try {
      const url = `${set.url}/v2/ferry-test/big/blobs/${layer.digest}`;
      const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
      assert.equal(sha(whole), layer.digest);
      const r = await fetch(url, { headers: { range: `bytes=${boundary - 1000}-${boundary + 999}` } });
      assert.equal(r.status, 206);
      assert.deepEqual(Buffer.from(await r.arrayBuffer()), whole.subarray(boundary - 1000, boundary + 1000));
    } finally {
      await set.stop();
    }
  });

  it('survives bad clients: up to 2000 idle connections, readers that stop reading, clients that leave mid-blob', async () => {
    // A blob larger than the kernel's socket buffers (several MB on loopback), or a client leaving mid-blob
    // would find it already sent whole.
    const { bundle: bigBundle, layer } = await bigImage();
    const big = await serve([bigBundle]);
    const [hostname, port] = big.host.split(':') as [string, string];
    // As many idle sockets as this process (and the server, which inherits the limit) may open, at most 2000.
    const nofile = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 1024);
    const idle = Math.max(200, Math.min(2000, nofile - 200));
    const get = `GET /v2/ferry-test/big/blobs/${layer.digest} HTTP/1.1\r\nHost: ${big.host}\r\n\r\n`;
    const sockets: Socket[] = [];
    const opened = (s: Socket): Promise<void> => new Promise((r, j) => s.once('connect', r).once('error', j));
    try {
      for (let i = 0; i < idle; i++) {
        const s = createConnection({ host: hostname, port: Number(port) });
        s.on('error', () => undefined);
        sockets.push(s);
        if (i % 100 === 99) await opened(s);
      }
      // Readers that ask for the biggest blob and never read; others that leave after the first bytes.
      for (let i = 0; i < 10; i++) {
        const slow = createConnection({ host: hostname, port: Number(port) }, () => slow.write(get));
        slow.on('error', () => undefined);
        slow.pause();
        sockets.push(slow);
        const gone = createConnection({ host: hostname, port: Number(port) }, () => gone.write(get));
        gone.on('error', () => undefined);
        gone.once('data', () => gone.destroy());
      }
      await new Promise((r) => setTimeout(r, 500));
      const r = await fetch(`${big.url}/v2/ferry-test/big/blobs/${layer.digest}`);
      assert.equal(sha(Buffer.from(await r.arrayBuffer())), layer.digest, 'others are served meanwhile');
      for (const s of sockets) s.destroy();
      assert.equal(big.child.exitCode, null, 'still running');
      assert.equal((await fetch(`${big.url}/v2/`)).status, 200);
      // The server logs a request when its socket closes, which it learns a moment after the client has gone.
      const cut = (): number => (big.log().match(/\(cut short\)/g) ?? []).length;
      for (let waited = 0; cut() < 20 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      assert.equal(cut(), 20, `every client that left is logged as cut short:\n${big.log()}`);
    } finally {
      for (const s of sockets) s.destroy();
      await big.stop();
    }
  });

  it(`${SOAK_SECONDS} s soak: 32 clients pull every image again and again, every digest right, memory flat`, async () => {
    const blobs = index.blobs.map((b) => b.digest);
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${served.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const samples: number[] = [rss()];
    const sampler = setInterval(() => samples.push(rss()), 200);
    const until = Date.now() + SOAK_SECONDS * 1000;
    let pulls = 0;
    const client = async (k: number): Promise<void> => {
      while (Date.now() < until) {
        const d = blobs[(k + pulls) % blobs.length]!;
        const r = await fetch(`${served.url}/v2/ferry-test/app/blobs/${d}`);
        assert.equal(sha(Buffer.from(await r.arrayBuffer())), d);
        pulls++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 32 }, (_, k) => client(k)));
    } finally {
      clearInterval(sampler);
    }
    assert.ok(pulls >= 32, `${pulls} pulls`);
    const settled = samples.slice(Math.floor(samples.length / 2));
    assert.ok(Math.max(...settled) - Math.min(...settled) < 40, `RSS stays flat in the second half: ${settled.map((s) => s.toFixed(0)).join(' ')} MB`);
    assert.ok(Math.max(...samples) < 200, `peak RSS ${Math.max(...samples).toFixed(0)} MB`);
  });
});
