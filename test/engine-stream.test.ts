// A daemon's save stream read through one reused buffer: the HTTP framing, the GET itself against real servers
// (tcp, unix socket, tcp with TLS), and that every reader downstream survives chunks overwritten once the next is asked for;
// and the check that runs beside a layer sent as stored (inflateChecked).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpFramingError, HttpResponseFramer } from '../src/engine/http-response-framer.js';
import { recycledGet, type SocketTarget } from '../src/engine/recycled-get.js';
import { hashOnly, readSaveStream } from '../src/engine/save-stream.js';
import { LayerCompressor } from '../src/stream/compress.js';
import { decompress } from '../src/stream/decompress.js';
import { inflateChecked } from '../src/stream/inflate-check.js';
import { compress as zstdCompress } from 'zstd-napi';
import type { Compression } from '../src/image/media-types.js';
import { paxRecords, tarBytes, type RawEntry } from './helpers/crafted-tar.js';
import { ferry } from './helpers/ferry.js';
import { selfSigned } from './helpers/certs.js';
import { seededRandom } from './helpers/seeded.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function noise(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

/** Feeds bytes split at the given points; returns what the framer made of them. */
function frame(bytes: Buffer, cuts: number[]): { head: HttpResponseFramer['head']; body: Buffer; done: boolean } {
  const f = new HttpResponseFramer();
  const body: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    f.feed(bytes.subarray(at, c), (v) => body.push(Buffer.from(v)));
    at = c;
  }
  return { head: f.head, body: Buffer.concat(body), done: f.done };
}

function chunked(body: Buffer, sizes: number[], trailer = ''): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const s of sizes) {
    const piece = body.subarray(at, at + s);
    at += piece.length;
    parts.push(Buffer.from(`${piece.length.toString(16)}${s % 3 === 0 ? ';ext=1' : ''}\r\n`), piece, Buffer.from('\r\n'));
  }
  if (at < body.length) parts.push(Buffer.from(`${(body.length - at).toString(16)}\r\n`), body.subarray(at), Buffer.from('\r\n'));
  parts.push(Buffer.from(`0\r\n${trailer}\r\n`));
  return Buffer.concat(parts);
}

describe('HTTP response framing', () => {
  const body = noise(3000, 1);
  const head = 'HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nX-Twice: a\r\nx-twice: b\r\n';
  const forms: [string, Buffer][] = [
    ['chunked', Buffer.concat([Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n`), chunked(body, [1, 700, 2, 1200], 'X-Trailer: t\r\n')])],
    ['content-length', Buffer.concat([Buffer.from(`${head}Content-Length: ${body.length}\r\n\r\n`), body])],
    ['100 Continue first', Buffer.concat([Buffer.from(`HTTP/1.1 100 Continue\r\n\r\n${head}Content-Length: ${body.length}\r\n\r\n`), body])],
  ];
  for (const [name, bytes] of forms) {
    it(`${name}: the same head and body however the bytes are split (every single cut, and 300 random splits)`, () => {
      const whole = frame(bytes, []);
      assert.equal(whole.head?.statusCode, 200);
      assert.equal(whole.head?.headers.get('x-twice'), 'a, b');
      assert.ok(whole.body.equals(body));
      assert.ok(whole.done);
      for (let cut = 1; cut < bytes.length; cut++) {
        const got = frame(bytes, [cut]);
        assert.ok(got.body.equals(body) && got.done, `cut at ${cut}`);
      }
      const r = seededRandom(7);
      for (let i = 0; i < 300; i++) {
        const cuts = Array.from({ length: 1 + ((r() * 40) | 0) }, () => (r() * bytes.length) | 0).sort((a, b) => a - b);
        const got = frame(bytes, cuts);
        assert.ok(got.body.equals(body) && got.done, `cuts ${cuts.join(',')}`);
      }
    });
  }

  it('a body that runs to the connection end ends there; a framed body cut short is an error', () => {
    const f = new HttpResponseFramer();
    const got: Buffer[] = [];
    f.feed(Buffer.from('HTTP/1.0 200 OK\r\n\r\nabc'), (v) => got.push(Buffer.from(v)));
    f.feed(Buffer.from('def'), (v) => got.push(Buffer.from(v)));
    assert.equal(f.done, false);
    f.end();
    assert.equal(f.done, true);
    assert.equal(Buffer.concat(got).toString(), 'abcdef');

    const short = new HttpResponseFramer();
    short.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), () => undefined);
    assert.throws(() => short.end(), /closed in the middle of the response body/);
    const chunkShort = new HttpResponseFramer();
    chunkShort.feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc'), () => undefined);
    assert.throws(() => chunkShort.end(), HttpFramingError);
    assert.throws(() => new HttpResponseFramer().end(), /before a complete response head/);
  });

  const bad: [string, string, RegExp][] = [
    ['a chunk size that is not hex', 'Transfer-Encoding: chunked\r\n\r\nzz\r\n', /is not a chunk size/],
    ['a chunk size too big to be true', 'Transfer-Encoding: chunked\r\n\r\nffffffffffffff\r\n', /is not a chunk size/],
    ['chunk data not followed by CRLF', 'Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n', /does not end in CRLF/],
    ['a size line ending in a bare LF', 'Transfer-Encoding: chunked\r\n\r\n3\nabc', /does not end in CRLF/],
    ['a transfer coding other than chunked', 'Transfer-Encoding: gzip, chunked\r\n\r\n', /is not supported/],
    ['a content-length that is not a number', 'Content-Length: 12, 13\r\n\r\n', /is not a length/],
    ['a header line without a colon', 'Broken header\r\n\r\n', /is not a header line/],
  ];
  for (const [what, rest, message] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => new HttpResponseFramer().feed(Buffer.from(`HTTP/1.1 200 OK\r\n${rest}`), () => undefined), message);
    });
  }
  it('refuses a status line that is not HTTP/1.x, and a head or a chunk line without end', () => {
    assert.throws(() => new HttpResponseFramer().feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'), () => undefined), /is not an HTTP\/1.1 status line/);
    const f = new HttpResponseFramer();
    assert.throws(() => {
      for (let i = 0; i < 100; i++) f.feed(Buffer.alloc(1024, 0x41), () => undefined);
    }, /response head is larger than/);
    const g = new HttpResponseFramer();
    g.feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), () => undefined);
    assert.throws(() => g.feed(Buffer.alloc(8192, 0x31), () => undefined), /too long/);
  });
});

describe('recycledGet against real HTTP servers', () => {
  let work: string;
  let server: Server;
  const targets: [string, SocketTarget][] = [];
  const payload = noise(24 << 20, 3);
  const sockets = new Set<Socket>();
  let closedConnections = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-recycled-'));
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/error') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ message: 'No such image: nope:1' }));
        return;
      }
      const n = Number(url.searchParams.get('n') ?? payload.length);
      const cut = Number(url.searchParams.get('cut') ?? n);
      if (url.searchParams.has('length')) res.setHeader('Content-Length', n);
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      // Writes of uneven sizes, respecting backpressure, as a daemon streaming a save does.
      const r = seededRandom(n);
      let at = 0;
      const more = (): void => {
        while (at < cut) {
          const k = Math.min(cut - at, 1 + ((r() * 300_000) | 0));
          const ok = res.write(payload.subarray(at, at + k));
          at += k;
          if (!ok) return void res.once('drain', more);
        }
        if (cut < n) res.destroy();
        else res.end();
      };
      more();
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => {
        sockets.delete(s);
        closedConnections++;
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    targets.push(['tcp 127.0.0.1', { host: '127.0.0.1', port: (server.address() as AddressInfo).port }]);
    const unixServer = createServer((req, res) => server.emit('request', req, res));
    const path = join(work, 'api.sock');
    await new Promise<void>((r) => unixServer.listen(path, r));
    targets.push(['unix socket', { path }]);
    server.on('close', () => unixServer.close());
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    await rm(work, { recursive: true, force: true });
  });

  for (const [i, mode] of ['chunked', 'length'].entries()) {
    it(`reads a 24 MiB ${mode} body whole, through one reused buffer, with a slow reader (tcp and unix socket)`, async () => {
      for (const [name, target] of targets) {
        const res = await recycledGet(target, `/images/get?${mode === 'length' ? 'length=1&' : ''}x=${i}`);
        assert.equal(res.statusCode, 200, name);
        assert.equal(res.headers.get('content-type'), 'application/x-tar');
        const h = createHash('sha256');
        const memories = new Set<ArrayBufferLike>();
        let k = 0;
        for await (const c of res.body) {
          h.update(c);
          memories.add(c.buffer);
          if (++k % 7 === 0) await new Promise((r) => setTimeout(r, 1));
        }
        assert.equal(`sha256:${h.digest('hex')}`, sha(payload), name);
        assert.ok(k > 20, `${name}: ${k} chunks`);
        assert.equal(memories.size, 1, `${name}: every chunk is a view of the one buffer`);
      }
    });
  }

  it('reads a 24 MiB body whole over TLS with a slow reader (TLS decrypts past a declined read: no shared buffer there)', async () => {
    const cert = selfSigned(work, 'tls-server');
    const tlsServer = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => server.emit('request', req, res));
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    try {
      for (const mode of ['chunked', 'length']) {
        const target = { host: '127.0.0.1', port: (tlsServer.address() as AddressInfo).port, tls: { ca: cert.cert } };
        const res = await recycledGet(target, `/images/get?${mode === 'length' ? 'length=1&' : ''}x=tls`);
        assert.equal(res.statusCode, 200);
        const h = createHash('sha256');
        let k = 0;
        for await (const c of res.body) {
          h.update(c);
          if (++k % 7 === 0) await new Promise((r) => setTimeout(r, 1));
        }
        assert.equal(`sha256:${h.digest('hex')}`, sha(payload), mode);
      }
      // A server whose certificate the client was not told to trust: the handshake's error, as the socket gives it.
      await assert.rejects(recycledGet({ host: '127.0.0.1', port: (tlsServer.address() as AddressInfo).port, tls: {} }, '/_ping'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      tlsServer.closeAllConnections();
      await new Promise((r) => tlsServer.close(r));
    }
  });

  it("a chunked body whose end arrives in a read of its own still ends (the reader is told, not left waiting)", { timeout: 10_000 }, async () => {
    const raw = createNetServer((sock) => {
      sock.once('data', () => {
        sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        setTimeout(() => sock.end('0\r\n\r\n'), 100);
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    try {
      const res = await recycledGet({ host: '127.0.0.1', port: (raw.address() as AddressInfo).port }, '/x');
      assert.equal(await res.body.text(), 'hello');
    } finally {
      await new Promise((r) => raw.close(r));
    }
  });

  it("an error answer's message reads with text()", async () => {
    const res = await recycledGet(targets[0]![1], '/error');
    assert.equal(res.statusCode, 404);
    assert.match(await res.body.text(), /No such image: nope:1/);
  });

  it('a connection cut mid-body fails the read instead of ending it', async () => {
    for (const mode of ['length=1&', '']) {
      const res = await recycledGet(targets[0]![1], `/x?${mode}n=5000000&cut=2000000`);
      await assert.rejects(async () => {
        for await (const _ of res.body);
      }, (err: Error) => err instanceof HttpFramingError || /ECONNRESET/.test(String((err as NodeJS.ErrnoException).code)));
    }
  });

  it('nothing listening: the connect error, as the socket gives it', async () => {
    await assert.rejects(recycledGet({ path: join(work, 'nobody.sock') }, '/_ping'), { code: 'ENOENT' });
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    await assert.rejects(recycledGet({ host: '127.0.0.1', port }, '/_ping'), { code: 'ECONNREFUSED' });
  });

  it('an abort mid-body ends the read with the abort, and a body left unread is closed', async () => {
    const ctl = new AbortController();
    const res = await recycledGet(targets[0]![1], '/images/get?abort', { signal: ctl.signal });
    let n = 0;
    await assert.rejects(async () => {
      for await (const c of res.body) {
        n += c.length;
        if (n > 1 << 20) ctl.abort(new DOMException('stopped', 'AbortError'));
      }
    }, { name: 'AbortError' });
    const before = closedConnections;
    const left = await recycledGet(targets[1]![1], '/images/get?left');
    for await (const _ of left.body) break;
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(closedConnections > before, 'the server saw the connection close');
  });
});

/**
 * recycling yields src's bytes in chunks of random sizes, all copied into one buffer, and scribbles over that
 * buffer when the next chunk is asked for: as a socket read into a reused buffer does.
 */
async function* recycling(src: Buffer, seed: number, max = 5000): AsyncGenerator<Buffer> {
  const shared = Buffer.alloc(max);
  const r = seededRandom(seed);
  let at = 0;
  while (at < src.length) {
    const n = Math.min(1 + ((r() * max) | 0), src.length - at);
    src.copy(shared, 0, at, at + n);
    at += n;
    yield shared.subarray(0, n);
    shared.fill(0xee);
  }
}

describe('readers downstream of a reused buffer copy what they keep', () => {
  const layers = [noise(70_000, 11), noise(3_333, 12), noise(150_001, 13)];
  const diffIds = layers.map(sha);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, pad: 'p'.repeat(9000) }));
  const configName = `${sha(config).slice(7)}.json`;
  const dirs = diffIds.map((d) => d.slice(7, 71));
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['app:1'], Layers: [...dirs.map((d) => `${d}/layer.tar`), `${dirs[0]}/layer.tar`] }]));
  const longName = `${dirs[2]}/layer.tar`;
  const entries: RawEntry[] = [
    { name: `${dirs[0]}/layer.tar`, data: layers[0] },
    { name: `${dirs[1]}/layer.tar`, data: layers[1] },
    { name: 'PaxHeaders/x', type: 'x', data: paxRecords({ path: longName }) },
    { name: 'placeholder', data: layers[2] },
    { name: configName, data: config },
    { name: 'manifest.json', data: manifest },
  ];
  const save = tarBytes(entries);

  it('readSaveStream: configs, manifest and every layer come out right over 40 random splits', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const got = await readSaveStream(recycling(save, seed), { isLayerBlob: () => false, layer: (_key, _size, body) => hashOnly(body) });
      assert.deepEqual(got.entries[0]!.Layers.map((l) => got.layerAt(l)), [...diffIds, diffIds[0]], `seed ${seed}`);
      assert.ok(got.configs.get(configName)!.equals(config), `seed ${seed}`);
    }
  });

  for (const compression of ['zstd', 'gzip', 'none'] as Compression[]) {
    it(`LayerCompressor (${compression}): the blob decompresses to the layer, and both digests are right`, async () => {
      const layer = noise(600_000, 21);
      const compressor = new LayerCompressor({ compression });
      for (let seed = 1; seed <= 3; seed++) {
        const out: Buffer[] = [];
        const c = await compressor.compress(recycling(layer, seed, 70_000), async (b) => void out.push(Buffer.from(b)));
        const blob = Buffer.concat(out);
        assert.equal(c.diffId, sha(layer));
        assert.equal(c.digest, sha(blob));
        const back: Buffer[] = [];
        for await (const b of decompress((async function* () { yield blob; })(), compression, layer.length + 1)) back.push(Buffer.from(b));
        assert.ok(Buffer.concat(back).equals(layer), `seed ${seed}`);
      }
    });
  }
});

describe('a daemon whose save answer is not HTTP as it should be', () => {
  it('ferry pack says which daemon sent a malformed response and what was wrong, exits 1, and leaves no file', async () => {
    const work = await mkdtemp(join(tmpdir(), 'ferry-bad-daemon-'));
    const layer = sha(Buffer.from('layer'));
    // Enough of the Engine API for pack to resolve an image, then a save whose chunked framing is broken.
    const server = createNetServer((s) => {
      s.once('data', (req) => {
        const path = req.toString('latin1').split(' ')[1] ?? '';
        const reply = (status: string, body: string): void =>
          void s.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        if (path.startsWith('/images/get')) s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-a-size\r\n');
        else if (path.includes('/json')) reply('200 OK', JSON.stringify({ Id: sha(Buffer.from('config')), RepoTags: ['app:1'], RepoDigests: [], Os: 'linux', Architecture: 'amd64', Size: 5, RootFS: { Type: 'layers', Layers: [layer] } }));
        else reply('200 OK', 'OK');
      });
    });
    const sock = join(work, 'docker.sock');
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const out = join(work, 'out');
      await mkdir(out);
      const run = await ferry(['pack', 'app:1', '-o', join(out, 'b.ferry.tar')], { dockerHost: `unix://${sock}` });
      assert.equal(run.code, 1, run.stderr);
      // Which message depends on whether the bad bytes came with the response head or after it.
      assert.match(run.stderr, /(answered GET \/images\/get with a malformed response|unexpected docker save output from)/);
      assert.ok(run.stderr.includes(`unix://${sock}`), run.stderr);
      assert.match(run.stderr, /"not-a-size" is not a chunk size/);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
      assert.deepEqual(await readdir(out), []);
    } finally {
      server.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('inflateChecked: a stored layer passed on while its uncompressed form is checked', () => {
  const tar = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 << 10, i)));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const zst = zstdCompress(tar);
  const chunks = async function* (b: Buffer, size = 7_000): AsyncGenerator<Buffer> {
    for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
  };
  const drain = async (src: AsyncIterable<Buffer>): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const c of src) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };

  it('yields the stored bytes unchanged, and from an offset only the rest, when the layer is what it claims', async () => {
    assert.deepEqual(await drain(inflateChecked(chunks(zst), 'zstd', { digest: diffId, size: tar.length, what: 'L' })), zst);
    assert.deepEqual(await drain(inflateChecked(chunks(zst), 'zstd', { digest: diffId, size: tar.length, what: 'L' }, 10_001)), zst.subarray(10_001));
  });

  it('throws before its end on another diffID, a smaller or a larger declared size', async () => {
    await assert.rejects(drain(inflateChecked(chunks(zst), 'zstd', { digest: `sha256:${'0'.repeat(64)}`, size: tar.length, what: 'L' })), /L digest/);
    await assert.rejects(drain(inflateChecked(chunks(zst), 'zstd', { digest: diffId, size: tar.length - 1, what: 'L' })), /more than|larger/);
    await assert.rejects(drain(inflateChecked(chunks(zst), 'zstd', { digest: diffId, size: tar.length + 1, what: 'L' })), /shorter/);
  });

  it('a consumer that stops early ends the check too (nothing left running)', async () => {
    for await (const c of inflateChecked(chunks(zst), 'zstd', { digest: diffId, size: tar.length, what: 'L' })) {
      assert.ok(c.length > 0);
      break;
    }
  });
});
