// The listening side of `ferry serve`: HTTP, or HTTPS whose certificate is reloaded when its files change; Basic
// auth when an htpasswd file is given; one access-log line per request; bounded waits for slow or idle clients.
import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { FerryError } from '../ui/errors.js';
import type { Htpasswd } from './access.js';
import { sendError, type DistributionApi } from './distribution-api.js';

export interface AccessEntry {
  time: string;
  remote: string;
  method: string;
  path: string;
  status: number;
  /** Bytes written to the connection for this response, headers included (nginx's $bytes_sent). */
  bytes: number;
  ms: number;
  /** False when the client went away before the response was whole. */
  complete: boolean;
  userAgent: string;
}

export interface ServerOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  htpasswd?: Htpasswd;
  log: (entry: AccessEntry) => void;
  warn: (message: string) => void;
}

export interface Serving {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function startServer(api: DistributionApi, o: ServerOptions): Promise<Serving> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const t0 = performance.now();
    // Counted on the socket: headers given to writeHead are not readable back, and a client that leaves mid-blob
    // has not received the content-length it was promised.
    const sentBefore = req.socket.bytesWritten;
    res.on('close', () => {
      o.log({
        time: new Date().toISOString(),
        remote: req.socket.remoteAddress ?? '',
        method: req.method ?? '',
        path: (req.url ?? '').slice(0, 2048),
        status: res.statusCode,
        bytes: req.socket.bytesWritten - sentBefore,
        ms: Math.round(performance.now() - t0),
        complete: res.writableFinished,
        userAgent: String(req.headers['user-agent'] ?? '').slice(0, 256),
      });
    });
    void (async () => {
      if (o.htpasswd && !(await o.htpasswd.allows(req.headers.authorization))) {
        res.setHeader('www-authenticate', 'Basic realm="ferry serve"');
        return sendError(res, 401, 'UNAUTHORIZED', 'authentication required', req.method === 'HEAD');
      }
      await api.handle(req, res);
    })().catch(() => res.destroy());
  };
  let server: Server;
  let stopWatching = (): void => undefined;
  if (o.tls) {
    const { cert, key } = o.tls;
    const https = createHttps(await readPair(cert, key), handler);
    // A renewed certificate is taken without a restart; a pair that cannot be read keeps the old one.
    const reload = (): void => {
      readPair(cert, key).then(
        (pair) => https.setSecureContext(pair),
        (err: unknown) => o.warn(`the certificate was not reloaded: ${(err as Error).message}`),
      );
    };
    watchFile(cert, { interval: 2000 }, reload);
    watchFile(key, { interval: 2000 }, reload);
    stopWatching = () => {
      unwatchFile(cert, reload);
      unwatchFile(key, reload);
    };
    server = https;
  } else server = createHttp(handler);
  // A client gets 30 s to send its headers and 2 minutes of silence on a connection before it is dropped.
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  server.setTimeout(120_000, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new FerryError('USAGE', `${o.host}:${o.port} is in use by another program`, { hint: 'give another --listen address, or stop what listens there' })
          : err.code === 'EACCES'
            ? new FerryError('USAGE', `not allowed to listen on ${o.host}:${o.port}`, { hint: 'ports under 1024 need privileges; give --listen with a higher port' })
            : err,
      );
    });
    server.listen(o.port, o.host, () => resolve());
  });
  server.on('error', (err) => o.warn(`server error: ${err.message}`));
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        stopWatching();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readPair(cert: string, key: string): Promise<{ cert: Buffer; key: Buffer }> {
  try {
    return { cert: await readFile(cert), key: await readFile(key) };
  } catch (err) {
    throw new FerryError('USAGE', `cannot read the TLS certificate or key: ${(err as Error).message}`, { hint: 'give --tls-cert and --tls-key files in PEM' });
  }
}
