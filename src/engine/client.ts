// DockerEngineClient: the Docker Engine API over DOCKER_HOST (unix socket or tcp), through undici; a save stream
// through recycledGet.
import { Pool } from 'undici';
import type { Readable } from 'node:stream';
import { FerryError } from '../ui/errors.js';
import { HttpFramingError } from './http-response-framer.js';
import { recycledGet, type RecycledResponse, type SocketTarget } from './recycled-get.js';

export interface EngineResponse {
  statusCode: number;
  body: Readable & { json(): Promise<unknown>; text(): Promise<string> };
}

export interface EngineRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'HEAD';
  path: string;
  query?: Record<string, string | string[] | undefined>;
  body?: Readable | string;
  headers?: Record<string, string>;
  /** Long transfers (save, load) wait as long as the daemon needs. */
  long?: boolean;
  signal?: AbortSignal;
}

/** resolveDockerHost reads DOCKER_HOST as docker does; default is the system socket. */
export function resolveDockerHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_HOST && env.DOCKER_HOST.trim() !== '' ? env.DOCKER_HOST.trim() : 'unix:///var/run/docker.sock';
}

export class DockerEngineClient {
  readonly host: string;
  // A pool, not one connection: long requests (loads split into several) must run side by side.
  private readonly client: Pool;
  private readonly target: SocketTarget;

  constructor(host: string = resolveDockerHost()) {
    this.host = host;
    if (host.startsWith('unix://')) {
      this.target = { path: host.slice('unix://'.length) };
      this.client = new Pool('http://docker', { socketPath: this.target.path, headersTimeout: 0, bodyTimeout: 0, connections: 8 });
    } else if (host.startsWith('tcp://') || host.startsWith('http://')) {
      const url = parseUrl(`http://${host.replace(/^(tcp|http):\/\//, '')}`);
      if (!url) throw new FerryError('USAGE', `DOCKER_HOST "${host}" is not a host and port`, { hint: 'use unix:///path/to/docker.sock or tcp://host:port' });
      // Docker's port for plain tcp when none is given.
      if (!url.port) url.port = '2375';
      this.target = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
      this.client = new Pool(url.origin, { headersTimeout: 0, bodyTimeout: 0, connections: 8 });
    } else {
      throw new FerryError('USAGE', `unsupported DOCKER_HOST "${host}"`, { hint: 'use unix:///path/to/docker.sock or tcp://host:port' });
    }
  }

  async request(req: EngineRequest): Promise<EngineResponse> {
    const path = withQuery(req);
    try {
      const res = await this.client.request({
        method: req.method,
        path,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
        ...(req.long ? {} : { headersTimeout: 120_000, bodyTimeout: 120_000 }),
      });
      return { statusCode: res.statusCode, body: res.body as unknown as EngineResponse['body'] };
    } catch (err) {
      throw this.unreachable(err);
    }
  }

  /**
   * streamGet is a long GET (a `docker save`) on a connection of its own, read through one reused buffer: its body's
   * chunks are overwritten as the next is asked for (see recycledGet).
   */
  async streamGet(req: Pick<EngineRequest, 'path' | 'query' | 'signal'>): Promise<RecycledResponse> {
    try {
      return await recycledGet(this.target, withQuery(req), req.signal ? { signal: req.signal } : {});
    } catch (err) {
      if (err instanceof HttpFramingError) throw new FerryError('DAEMON_ERROR', `Docker daemon at ${this.host} answered GET ${req.path} with a malformed response: ${err.message}`);
      throw this.unreachable(err);
    }
  }

  /** json performs a request and parses a 2xx JSON answer; other statuses become errors carrying the daemon's message. */
  async json<T>(req: EngineRequest): Promise<T> {
    const res = await this.request(req);
    if (res.statusCode >= 300) throw await this.httpError(res, req);
    return (await res.body.json()) as T;
  }

  /** ping checks that the daemon answers; it says which DOCKER_HOST it tried when it does not. */
  async ping(): Promise<void> {
    const res = await this.request({ method: 'GET', path: '/_ping' });
    await res.body.text();
    if (res.statusCode !== 200) throw new FerryError('DAEMON_UNREACHABLE', `Docker daemon at ${this.host} answered ${res.statusCode} to a ping`);
  }

  async httpError(res: { statusCode: number; body: { text(): Promise<string> } }, req: Pick<EngineRequest, 'method' | 'path'>): Promise<FerryError> {
    let message = '';
    try {
      const text = await res.body.text();
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {
      /* the status alone has to do */
    }
    const what = `${req.method} ${req.path}: ${res.statusCode}${message ? ` ${message.trim()}` : ''}`;
    return new FerryError('DAEMON_ERROR', `Docker daemon at ${this.host}: ${what}`);
  }

  unreachable(err: unknown): Error {
    if (err instanceof FerryError) return err;
    const e = err as NodeJS.ErrnoException;
    if (e?.name === 'AbortError') return e;
    const codes = ['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'];
    if (codes.includes(String(e?.code))) {
      return new FerryError('DAEMON_UNREACHABLE', `cannot reach the Docker daemon at ${this.host} (${e.code})`, {
        hint: 'is dockerd running? set DOCKER_HOST to its socket (unix:///path/docker.sock or tcp://host:2375) and check you may use it',
        cause: err,
      });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function withQuery(req: Pick<EngineRequest, 'path' | 'query'>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) qs.append(k, one);
  }
  return qs.size > 0 ? `${req.path}?${qs}` : req.path;
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}
