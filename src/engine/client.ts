// DockerEngineClient: the Docker Engine API at an endpoint (unix socket, tcp, tcp with TLS), through undici; a save
// stream through recycledGet.
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';
import { FerryError } from '../ui/errors.js';
import { resolveEndpoint, type EngineEndpoint, type EngineTls } from './endpoint.js';
import { HttpFramingError } from './http-response-framer.js';
import { reachError } from './reach-errors.js';
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

export class DockerEngineClient {
  /** The daemon's address, for messages: unix:///var/run/docker.sock, tcp://host:2376. */
  readonly host: string;
  readonly endpoint: EngineEndpoint;
  // A pool, not one connection: long requests (loads split into several) must run side by side.
  private readonly client: Pool;
  private readonly target: SocketTarget;

  /** The endpoint defaults to docker's choice without flags (DOCKER_HOST, DOCKER_CONTEXT, `docker context use`). */
  constructor(endpoint: EngineEndpoint = resolveEndpoint()) {
    this.endpoint = endpoint;
    this.host = endpoint.host;
    const pool = { headersTimeout: 0, bodyTimeout: 0, connections: 8 };
    if (endpoint.host.startsWith('unix://')) {
      this.target = { path: endpoint.host.slice('unix://'.length) };
      this.client = new Pool('http://docker', { ...pool, socketPath: this.target.path });
      return;
    }
    // resolveEndpoint gives tcp://host:port only, the port always written out.
    const at = endpoint.host.lastIndexOf(':');
    const name = endpoint.host.slice('tcp://'.length, at);
    const port = Number(endpoint.host.slice(at + 1));
    const hostname = name.replace(/^\[(.*)\]$/, '$1');
    const tls = endpoint.tls ? tlsOptions(endpoint.tls, hostname) : undefined;
    this.target = { host: hostname, port, ...(tls ? { tls } : {}) };
    this.client = new Pool(`${tls ? 'https' : 'http'}://${name}:${port}`, tls ? { ...pool, connect: tls } : pool);
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

  /** ping checks that the daemon answers; it says which address it tried when it does not. */
  async ping(): Promise<void> {
    const res = await this.request({ method: 'GET', path: '/_ping' });
    const text = await res.body.text();
    if (res.statusCode === 200) return;
    // Go's answer to plain HTTP on a TLS port.
    if (res.statusCode === 400 && text.includes('HTTPS server')) {
      throw new FerryError('DAEMON_UNREACHABLE', `the Docker daemon at ${this.host} speaks TLS, and ferry spoke plain HTTP to it`, {
        hint: 'set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH (a directory with ca.pem, cert.pem, key.pem), or pass --tlsverify and --tlscacert/--tlscert/--tlskey, or use a Docker context that has them',
      });
    }
    throw new FerryError('DAEMON_UNREACHABLE', `Docker daemon at ${this.host} answered ${res.statusCode} to a ping`);
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

  /** unreachable turns a failure to connect (or to agree on TLS) into an error that says what to check. */
  unreachable(err: unknown): Error {
    return reachError(err, this.endpoint);
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

/** tlsOptions are node's options for the endpoint's TLS; a name (not an IP) is also the server name to verify. */
function tlsOptions(tls: EngineTls, hostname: string): ConnectionOptions {
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
    rejectUnauthorized: tls.verify,
    ...(isIP(hostname) ? {} : { servername: hostname }),
  };
}
