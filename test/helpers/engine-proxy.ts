// An HTTP proxy on a unix socket in front of a dockerd socket that records the load requests passing through:
// when each began and ended, so a test can see how a load was split and what ran side by side.
import { createServer, request } from 'node:http';
import { join } from 'node:path';

export interface LoadRequestSeen {
  start: number;
  /** When the last byte of the upload came through. */
  uploaded?: number;
  end?: number;
  status?: number;
}

export interface EngineProxy {
  /** DOCKER_HOST for clients of the proxy. */
  host: string;
  loads: LoadRequestSeen[];
  close(): Promise<void>;
}

export async function startEngineProxy(upstreamHost: string, dir: string): Promise<EngineProxy> {
  const upstream = upstreamHost.replace(/^unix:\/\//, '');
  const socket = join(dir, 'engine-proxy.sock');
  const loads: LoadRequestSeen[] = [];
  const server = createServer((req, res) => {
    const seen: LoadRequestSeen | undefined = req.method === 'POST' && /^(\/v[\d.]+)?\/images\/load\b/.test(req.url ?? '') ? { start: performance.now() } : undefined;
    if (seen) loads.push(seen);
    const up = request({ socketPath: upstream, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on('end', () => {
        if (seen) Object.assign(seen, { end: performance.now(), status: answer.statusCode });
      });
    });
    up.on('error', (err) => res.destroy(err));
    req.on('error', (err) => up.destroy(err));
    req.on('end', () => {
      if (seen) seen.uploaded = performance.now();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
  return {
    host: `unix://${socket}`,
    loads,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
