// An HTTP(S) proxy on 127.0.0.1 in front of a registry that injects faults (5xx, 429, dropped uploads and downloads) and logs what passed.
import { createServer as createHttp, request as upstreamRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface ProxyLogEntry {
  method: string;
  url: string;
  range: string | undefined;
  status?: number;
}

export interface ProxyTls {
  cert: Buffer;
  key: Buffer;
  /** ask for a client certificate signed by this CA, and refuse clients without one */
  clientCa?: Buffer;
}

type Match = (method: string, url: string) => boolean;

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
   * sees nothing of the cut request; unbuffered: the registry gets the bytes before the cut.
   */
  dropUpload(opts: { nth: number; after: number; buffered: boolean }): void;
  /** dropDownload cuts the next matching response body after `after` bytes */
  dropDownload(opts: { after: number; match: Match }): void;
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
  let uploadDrop: { nth: number; after: number; buffered: boolean } | undefined;
  let downloadDrop: { after: number; match: Match } | undefined;

  // Behind TLS termination the registry must know its public scheme, or its Location URLs say http://.
  const forwardedHeaders = (req: IncomingMessage): IncomingMessage['headers'] => (opts.tls ? { ...req.headers, 'x-forwarded-proto': 'https' } : req.headers);

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, body?: Buffer): void => {
    const up = upstreamRequest({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: forwardedHeaders(req) });
    up.on('response', (ur) => {
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const drop = downloadDrop && downloadDrop.match(req.method ?? '', req.url ?? '') && (ur.statusCode === 200 || ur.statusCode === 206) ? downloadDrop : undefined;
      if (!drop) {
        ur.pipe(res);
        return;
      }
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
    const entry: ProxyLogEntry = { method, url, range: req.headers.range };
    proxy.log.push(entry);
    req.on('data', (c: Buffer) => (proxy.bytesIn += c.length));

    const f = statusFaults.find((s) => s.left > 0 && s.match(method, url));
    if (f) {
      f.left--;
      entry.status = f.status;
      req.resume();
      req.on('end', () => {
        res.writeHead(f.status, { 'content-type': 'application/json', ...(f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {}) });
        res.end(JSON.stringify({ errors: [{ code: f.code, message: f.message }] }));
      });
      return;
    }

    if (method === 'PATCH' && uploadDrop && --uploadDrop.nth === 0) {
      const drop = uploadDrop;
      uploadDrop = undefined;
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
    reset() {
      statusFaults = [];
      uploadDrop = undefined;
      downloadDrop = undefined;
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
