// An HTTP(S) proxy on 127.0.0.1 in front of a registry that injects faults (5xx, 429, dropped uploads and downloads, stalls,
// rewritten bytes) and logs what passed, with times and request-body sizes.
import { createServer as createHttp, request as upstreamRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface ProxyLogEntry {
  method: string;
  url: string;
  range: string | undefined;
  /** the request's Content-Range (upload PATCHes) */
  contentRange: string | undefined;
  status?: number;
  /** Date.now() when the request arrived, and when its answer was finished or its connection closed */
  at: number;
  done?: number;
  /** request-body bytes received from the client for this request */
  bodyBytes: number;
  /** the fault the proxy injected into this request, if any */
  fault?: string;
}

export interface ProxyTls {
  cert: Buffer;
  key: Buffer;
  /** ask for a client certificate signed by this CA, and refuse clients without one */
  clientCa?: Buffer;
}

/** which requests a fault applies to; headers are the client's request headers */
export type Match = (method: string, url: string, headers: IncomingMessage['headers']) => boolean;

export interface FaultProxy {
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  log: ProxyLogEntry[];
  /** request-body bytes received from clients */
  bytesIn: number;
  /** answer the next n matching requests with status (and Retry-After seconds) instead of forwarding them */
  fail(n: number, status: number, opts?: { retryAfter?: number; match?: Match; message?: string; code?: string }): void;
  /**
   * dropUpload cuts the nth next PATCH after `after` body bytes. buffered: like nginx's request buffering, the registry
   * sees nothing of the cut request; unbuffered: the registry gets the bytes before the cut. With match, only matching
   * PATCHes count.
   */
  dropUpload(opts: { nth: number; after: number; buffered: boolean; match?: Match }): void;
  /** dropDownload cuts the next matching response body after `after` bytes */
  dropDownload(opts: { after: number; match: Match }): void;
  /**
   * dropRequest drops the connection of the next `times` (default 1) matching requests: `before` the registry sees them
   * (body read, nothing forwarded), or `after` the registry answered (it acted; the client never hears how).
   */
  dropRequest(opts: { match: Match; when: 'before' | 'after'; times?: number }): void;
  /**
   * stall keeps the next `times` (default 1) matching requests open and silent: `request` stops reading the request body
   * (a client sending more than the socket buffers holds must notice it is stuck) and never answers; `headers` reads the
   * request and never answers; `body`
   * sends the registry's headers and the first `after` bytes of its body, then nothing more. The sockets stay open until
   * the client gives up (or the proxy closes).
   */
  stall(opts: { match: Match; phase: 'request' | 'headers' | 'body'; after?: number; times?: number }): void;
  /**
   * tamper rewrites the body of the next `times` (default: every) matching 2xx response, buffered whole; Content-Length
   * follows the new body, every other header (Docker-Content-Digest too, unless dropDigestHeader) stays as the registry sent it.
   */
  tamper(opts: { match: Match; rewrite: (body: Buffer) => Buffer; times?: number; dropDigestHeader?: boolean }): void;
  reset(): void;
  close(): Promise<void>;
}

/**
 * Options. paginateTags: Debian's distribution 2.8 ignores `n` on tags/list; the proxy then serves the registry's real list
 * in pages with Link rel="next", as distribution 3 and the OCI spec do, so a client's paging can be tested.
 */
export async function startFaultProxy(upstream: string, opts: { tls?: ProxyTls; paginateTags?: boolean } = {}): Promise<FaultProxy> {
  const [upHost, upPort] = upstream.split(':');
  let statusFaults: { left: number; status: number; retryAfter?: number; match: Match; message: string; code: string }[] = [];
  let uploadDrop: { nth: number; after: number; buffered: boolean; match?: Match } | undefined;
  let downloadDrop: { after: number; match: Match } | undefined;
  type Counted = { left: number; match: Match };
  let requestDrops: (Counted & { when: 'before' | 'after' })[] = [];
  let headerStalls: (Counted & { reading: boolean })[] = [];
  let bodyStalls: (Counted & { after?: number })[] = [];
  let tampers: (Counted & { rewrite: (body: Buffer) => Buffer; dropDigestHeader?: boolean })[] = [];
  /** take finds the first fault of a list that still applies to req and counts it used. */
  const take = <T extends Counted>(list: T[], req: IncomingMessage): T | undefined => {
    const f = list.find((x) => x.left > 0 && x.match(req.method ?? '', req.url ?? '', req.headers));
    if (f) f.left--;
    return f;
  };

  // Behind TLS termination the registry must know its public scheme, or its Location URLs say http://.
  const forwardedHeaders = (req: IncomingMessage): IncomingMessage['headers'] => (opts.tls ? { ...req.headers, 'x-forwarded-proto': 'https' } : req.headers);

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, body?: Buffer): void => {
    const up = upstreamRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: forwardedHeaders(req) });
    up.on('response', (ur) => {
      entry.status = ur.statusCode;
      const ok = ur.statusCode === 200 || ur.statusCode === 206;
      const t = ok ? take(tampers, req) : undefined;
      if (t) {
        entry.fault = 'tamper';
        const parts: Buffer[] = [];
        ur.on('data', (c: Buffer) => parts.push(c));
        ur.on('end', () => {
          const body = t.rewrite(Buffer.concat(parts));
          const headers: IncomingMessage['headers'] = { ...ur.headers, 'content-length': String(body.length) };
          if (t.dropDigestHeader) delete headers['docker-content-digest'];
          res.writeHead(ur.statusCode ?? 502, headers);
          res.end(req.method === 'HEAD' ? undefined : body);
        });
        return;
      }
      const s = ok ? take(bodyStalls, req) : undefined;
      if (s) {
        entry.fault = 'stall body';
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        let sent = 0;
        ur.on('data', (chunk: Buffer) => {
          if (sent < 0) return;
          const n = Math.min(chunk.length, (s.after ?? 0) - sent);
          if (n > 0) res.write(chunk.subarray(0, n));
          sent += n;
          if (sent >= (s.after ?? 0)) {
            // Stop reading from the registry and go silent, with the client's socket left open.
            sent = -1;
            ur.destroy();
          }
        });
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const drop = downloadDrop && downloadDrop.match(req.method ?? '', req.url ?? '', req.headers) && ok ? downloadDrop : undefined;
      if (!drop) {
        ur.pipe(res);
        return;
      }
      entry.fault = 'drop download';
      downloadDrop = undefined;
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (sent < 0) return;
        if (sent + chunk.length < drop.after) {
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        res.write(chunk.subarray(0, drop.after - sent), () => res.socket?.destroy());
        sent = -1;
        ur.destroy();
      });
      ur.on('end', () => sent >= 0 && res.end());
    });
    up.on('error', () => res.socket?.destroy());
    if (body) up.end(body);
    else req.pipe(up);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? '';
    const url = req.url ?? '';
    const contentRange = req.headers['content-range'];
    const entry: ProxyLogEntry = { method, url, range: req.headers.range, contentRange: Array.isArray(contentRange) ? contentRange[0] : contentRange, at: Date.now(), bodyBytes: 0 };
    proxy.log.push(entry);
    res.on('close', () => (entry.done = Date.now()));
    req.on('data', (c: Buffer) => {
      proxy.bytesIn += c.length;
      entry.bodyBytes += c.length;
    });

    const f = statusFaults.find((s) => s.left > 0 && s.match(method, url, req.headers));
    if (f) {
      f.left--;
      entry.status = f.status;
      entry.fault = `status ${f.status}`;
      req.resume();
      req.on('end', () => {
        res.writeHead(f.status, { 'content-type': 'application/json', ...(f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {}) });
        res.end(JSON.stringify({ errors: [{ code: f.code, message: f.message }] }));
      });
      return;
    }

    const headerStall = take(headerStalls, req);
    if (headerStall) {
      entry.fault = headerStall.reading ? 'stall headers' : 'stall request';
      // Read what the client sends (or stop reading it) and never answer.
      if (headerStall.reading) req.resume();
      else req.pause();
      return;
    }

    const dropped = take(requestDrops, req);
    if (dropped?.when === 'before') {
      entry.fault = 'drop before';
      req.resume();
      req.on('end', () => req.socket.destroy());
      return;
    }
    if (dropped?.when === 'after') {
      entry.fault = 'drop after';
      const up = upstreamRequest({ host: upHost, port: Number(upPort), method, path: url, headers: forwardedHeaders(req) });
      up.on('error', () => req.socket.destroy());
      up.on('response', (ur) => {
        entry.status = ur.statusCode;
        ur.resume();
        ur.on('end', () => req.socket.destroy());
      });
      req.pipe(up);
      return;
    }

    if (method === 'PATCH' && uploadDrop && (uploadDrop.match?.(method, url, req.headers) ?? true) && --uploadDrop.nth === 0) {
      const drop = uploadDrop;
      uploadDrop = undefined;
      entry.fault = `drop upload ${drop.buffered ? 'buffered' : 'unbuffered'}`;
      let seen = 0;
      if (drop.buffered) {
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen >= drop.after) req.socket.destroy();
        });
        return;
      }
      const up = upstreamRequest({ host: upHost, port: Number(upPort), method, path: url, headers: forwardedHeaders(req) });
      up.on('error', () => undefined);
      up.on('response', (ur) => ur.resume());
      req.on('data', (c: Buffer) => {
        if (seen < 0) return;
        if (seen + c.length < drop.after) {
          seen += c.length;
          up.write(c);
          return;
        }
        const cut = drop.after - seen;
        seen = -1;
        req.pause();
        up.write(c.subarray(0, cut), () => {
          // Give the registry a moment to read the bytes before the connection drops on both sides.
          setTimeout(() => {
            up.destroy();
            req.socket.destroy();
          }, 100);
        });
      });
      return;
    }
    const tagsPage = /^(\/v2\/.+\/tags\/list)\?(.*)$/.exec(url);
    if (opts.paginateTags && method === 'GET' && tagsPage) {
      const q = new URLSearchParams(tagsPage[2]);
      const n = Number(q.get('n'));
      if (n > 0) {
        paginate(req, res, entry, tagsPage[1]!, n, q.get('last') ?? '');
        return;
      }
    }
    forward(req, res, entry);
  };

  const paginate = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, path: string, n: number, last: string): void => {
    const up = upstreamRequest({ host: upHost, port: Number(upPort), method: 'GET', path, headers: forwardedHeaders(req) });
    up.on('error', () => res.socket?.destroy());
    up.on('response', (ur) => {
      const parts: Buffer[] = [];
      ur.on('data', (c: Buffer) => parts.push(c));
      ur.on('end', () => {
        entry.status = ur.statusCode;
        if (ur.statusCode !== 200) {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          res.end(Buffer.concat(parts));
          return;
        }
        const all = JSON.parse(Buffer.concat(parts).toString('utf8')) as { name: string; tags: string[] };
        const rest = [...all.tags].sort().filter((t) => t > last);
        const page = rest.slice(0, n);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (rest.length > n) headers.link = `<${path}?n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}>; rel="next"`;
        res.writeHead(200, headers);
        res.end(JSON.stringify({ name: all.name, tags: page }));
      });
    });
    up.end();
  };

  const server: Server = opts.tls
    ? createHttps({ cert: opts.tls.cert, key: opts.tls.key, ...(opts.tls.clientCa ? { ca: [opts.tls.clientCa], requestCert: true, rejectUnauthorized: true } : {}) }, handler)
    : createHttp(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const proxy: FaultProxy = {
    host: `127.0.0.1:${port}`,
    port,
    log: [],
    bytesIn: 0,
    fail(n, status, o = {}) {
      statusFaults.push({ left: n, status, ...(o.retryAfter !== undefined ? { retryAfter: o.retryAfter } : {}), match: o.match ?? (() => true), message: o.message ?? 'injected fault', code: o.code ?? 'UNAVAILABLE' });
    },
    dropUpload(o) {
      uploadDrop = { ...o };
    },
    dropDownload(o) {
      downloadDrop = o;
    },
    dropRequest(o) {
      requestDrops.push({ left: o.times ?? 1, match: o.match, when: o.when });
    },
    stall(o) {
      if (o.phase !== 'body') headerStalls.push({ left: o.times ?? 1, match: o.match, reading: o.phase === 'headers' });
      else bodyStalls.push({ left: o.times ?? 1, match: o.match, ...(o.after !== undefined ? { after: o.after } : {}) });
    },
    tamper(o) {
      tampers.push({ left: o.times ?? Infinity, match: o.match, rewrite: o.rewrite, ...(o.dropDigestHeader ? { dropDigestHeader: true } : {}) });
    },
    reset() {
      statusFaults = [];
      uploadDrop = undefined;
      downloadDrop = undefined;
      requestDrops = [];
      headerStalls = [];
      bodyStalls = [];
      tampers = [];
      proxy.log = [];
      proxy.bytesIn = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
