// RegistryTransport: one registry's HTTP conversation — endpoint discovery, auth on 401, retries, redirects — over undici.
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'undici/types/header.js';
import { FerryError, escapeControls } from '../ui/errors.js';
import { VERSION } from '../version.js';
import { Authenticator } from './auth.js';
import { pickChallenge, scopeKey } from './challenge.js';
import { findCredentials, type Credentials } from './credentials.js';
import { candidates, type Endpoint } from './endpoint.js';
import { RegistryError, authError, isNetworkError, parseRegistryErrors, unreachable } from './errors.js';
import { backoffDelay, isRetryableNetworkError, isRetryableStatus, retryAfterMs, sleep } from './retry.js';
import { certsDirRoot, loadCertsDir } from './tls.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body is bytes, or a factory that opens a fresh stream each time the request has to be sent again. */
export type Body = Buffer | (() => AsyncIterable<Buffer>);

export interface Request {
  method: Method;
  /** a path on the registry ('/v2/…') or an absolute URL it gave us (Location, Link) */
  url: string;
  /** token scopes this request needs; [] for none */
  scopes: readonly string[];
  headers?: Record<string, string>;
  body?: Body;
  /** safe to send again after a dropped connection, a 5xx or a 429 */
  idempotent: boolean;
  /** follow 3xx (blob downloads are often sent to storage elsewhere) */
  redirects?: boolean;
  /** a request to a token realm: never answered with our own Authorization */
  noAuth?: boolean;
  /** the registry does real work before it answers (the PUT that closes an upload hashes or moves the whole blob): wait SLOW_ANSWER times the timeout for headers */
  slowAnswer?: boolean;
  signal?: AbortSignal | undefined;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** the URL that answered, after redirects; relative Location and Link headers resolve against it */
  url: URL;
  body: Dispatcher.ResponseData['body'];
  /** the idle timeout the body is read under, for messages about a registry that went silent */
  timeoutMs?: number;
  /** how many times the request was sent before this answer (a 5xx or 429 returned after the last retry says so) */
  attempts?: number;
}

export interface TransportOptions {
  creds?: Credentials | undefined;
  insecure?: boolean | undefined;
  dockerConfig?: string | undefined;
  certsDir?: string | undefined;
  retries?: number | undefined;
  backoffMs?: number | undefined;
  /** how long a registry may stay silent (no headers, no body bytes, no room to send) before the attempt is given up; default FERRY_REGISTRY_TIMEOUT or 60 s */
  timeoutMs?: number | undefined;
}

/** A registry silent this long (connected, but no answer, no bytes, or not reading ours) is given up on, and the request retried. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** how many timeouts a slowAnswer request may wait for its headers (an S3-backed registry copies a big blob on commit) */
const SLOW_ANSWER = 5;

/** registryTimeoutMs reads FERRY_REGISTRY_TIMEOUT (seconds, fractions allowed), else the default. */
export function registryTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.FERRY_REGISTRY_TIMEOUT?.trim();
  if (v === undefined || v === '') return DEFAULT_TIMEOUT_MS;
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0) throw new FerryError('USAGE', `FERRY_REGISTRY_TIMEOUT must be a number of seconds above 0, not "${escapeControls(v).slice(0, 50)}"`);
  return Math.max(1, Math.round(s * 1000));
}

interface Resolved {
  ep: Endpoint;
  agent: Agent;
}

const MAX_REDIRECTS = 5;
const USER_AGENT = `ferry/${VERSION}`;

export class RegistryTransport {
  readonly auth: Authenticator;
  private resolved: Promise<Resolved> | undefined;
  private readonly agents: Agent[] = [];
  /** for origins other than the registry's (redirect targets, token realms): system CAs, always verified */
  private readonly elsewhere: Agent;
  /** attempts in all for a retryable failure, and the base of the exponential backoff between them */
  readonly attempts: number;
  readonly backoffMs: number;
  /** idle timeout of each attempt (headers, body, a send the registry does not read) */
  readonly timeoutMs: number;

  constructor(
    readonly registry: string,
    private readonly opts: TransportOptions = {},
  ) {
    this.attempts = Math.max(1, opts.retries ?? 5);
    this.backoffMs = opts.backoffMs ?? 200;
    this.timeoutMs = opts.timeoutMs ?? registryTimeoutMs();
    this.elsewhere = this.newAgent({ origin: 'https://elsewhere', verify: true });
    this.auth = new Authenticator(
      registry,
      async () => opts.creds ?? findCredentials(registry, opts.dockerConfig),
      async (url, headers, signal) => {
        const res = await this.request({ method: 'GET', url: url.href, scopes: [], headers, idempotent: true, noAuth: true, signal });
        return { status: res.status, text: await readText(res, 1 << 20) };
      },
    );
  }

  /** endpoint finds, once, the first candidate that answers GET /v2/ at all, and learns its auth challenge from that answer. */
  endpoint(signal?: AbortSignal): Promise<Resolved> {
    this.resolved ??= this.discover(signal).catch((err: unknown) => {
      this.resolved = undefined;
      throw err;
    });
    return this.resolved;
  }

  private async discover(signal?: AbortSignal): Promise<Resolved> {
    const tls = await loadCertsDir(certsDirRoot(this.opts.certsDir), this.registry);
    const list = candidates(this.registry, { insecure: this.opts.insecure ?? false, tls });
    let lastErr: unknown;
    for (const [i, ep] of list.entries()) {
      const agent = this.newAgent(ep);
      // Only the last candidate earns retries: an earlier one that fails is simply the wrong scheme.
      const attempts = i === list.length - 1 ? this.attempts : 1;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          const res = await agent.request({ origin: ep.origin, path: '/v2/', method: 'GET', headers: { 'user-agent': USER_AGENT }, signal });
          const ch = res.statusCode === 401 ? pickChallenge(res.headers['www-authenticate']) : undefined;
          await res.body.dump();
          if (ch) this.auth.learn(ch);
          return { ep, agent };
        } catch (err) {
          lastErr = err;
          if (signal?.aborted) throw err;
          if (attempt < attempts && isRetryableNetworkError(err)) await sleep(backoffDelay(attempt, this.backoffMs), signal);
          else break;
        }
      }
    }
    throw unreachable(this.registry, lastErr, this.timeoutMs);
  }

  /**
   * request sends req with authorization, answering a 401 once with fresh credentials, and retrying idempotent requests on
   * dropped connections, 5xx and 429. A 401 or 403 that survives auth is a REGISTRY_AUTH error; a connection that cannot be
   * made is REGISTRY_UNREACHABLE; any other status is the caller's to judge (a 5xx only after the retries).
   */
  async request(req: Request): Promise<Response> {
    const { ep, agent } = await this.endpoint(req.signal);
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.once(req, ep, agent);
        if (req.idempotent && isRetryableStatus(res.status) && attempt < this.attempts) {
          const wait = retryAfterMs(res.headers['retry-after']) ?? backoffDelay(attempt, this.backoffMs);
          await res.body.dump();
          await sleep(wait, req.signal);
          continue;
        }
        res.attempts = attempt;
        return res;
      } catch (err) {
        if (req.idempotent && attempt < this.attempts && isRetryableNetworkError(err) && !req.signal?.aborted) {
          await sleep(backoffDelay(attempt, this.backoffMs), req.signal);
          continue;
        }
        throw isNetworkError(err) ? unreachable(this.registry, err, req.slowAnswer ? this.timeoutMs * SLOW_ANSWER : this.timeoutMs) : err;
      }
    }
  }

  private async once(req: Request, ep: Endpoint, agent: Agent): Promise<Response> {
    let res = await this.follow(req, ep, agent);
    if (req.noAuth || (res.status !== 401 && res.status !== 403)) return res;
    if (res.status === 401) {
      const ch = pickChallenge(res.headers['www-authenticate']);
      await res.body.dump();
      if (ch) {
        this.auth.learn(ch);
        this.auth.invalidate(req.scopes);
        // A registry that names the scope it wants (insufficient_scope) gets asked for exactly that too.
        const scopes = ch.params.scope ? [...req.scopes, ...ch.params.scope.split(' ').filter(Boolean)] : req.scopes;
        if (scopeKey(scopes) !== scopeKey(req.scopes)) this.auth.invalidate(scopes);
        res = await this.follow({ ...req, scopes }, ep, agent);
      }
      if (res.status === 401) {
        const { summary } = parseRegistryErrors(await readText(res, 65536));
        throw authError(this.registry, (await this.auth.credentials()) !== undefined, summary || undefined);
      }
    }
    if (res.status === 403) {
      const { summary, codes } = parseRegistryErrors(await readText(res, 65536));
      throw new RegistryError('REGISTRY_AUTH', `registry ${this.registry} denied ${req.method} ${shortPath(req.url)}${summary ? `: ${summary}` : ''}`, 403, codes, {
        hint: `check that these credentials may ${req.method === 'GET' || req.method === 'HEAD' ? 'pull from' : 'push to'} this repository (--creds, or \`docker login ${this.registry}\`)`,
      });
    }
    return res;
  }

  /** follow sends one request and, if asked, its redirects; Authorization goes only to the registry's own origin. */
  private async follow(req: Request, ep: Endpoint, agent: Agent): Promise<Response> {
    let url = new URL(req.url, ep.origin);
    for (let hop = 0; ; hop++) {
      const own = url.origin === ep.origin;
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...req.headers };
      if (own && !req.noAuth) {
        const authz = await this.auth.authorization(req.scopes, req.signal);
        if (authz) headers.authorization = authz;
      }
      const body = req.body === undefined || Buffer.isBuffer(req.body) ? req.body : Readable.from(req.body(), { objectMode: false });
      const r = await (own ? agent : this.elsewhere).request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        body: body ?? null,
        signal: req.signal,
        ...(req.slowAnswer ? { headersTimeout: this.timeoutMs * SLOW_ANSWER } : {}),
      });
      const location = r.headers.location;
      if (req.redirects && [301, 302, 303, 307, 308].includes(r.statusCode) && typeof location === 'string' && hop < MAX_REDIRECTS) {
        await r.body.dump();
        url = new URL(location, url);
        continue;
      }
      return { status: r.statusCode, headers: r.headers, url, body: r.body, timeoutMs: this.timeoutMs };
    }
  }

  /** httpError turns a response ferry cannot use into a REGISTRY_ERROR quoting the registry's own error codes and messages. */
  async httpError(res: Response, what: string, attempts = res.attempts ?? 1): Promise<RegistryError> {
    const { summary, codes } = parseRegistryErrors(await readText(res, 65536).catch(() => ''));
    const gaveUp = attempts > 1 && isRetryableStatus(res.status);
    return new RegistryError('REGISTRY_ERROR', `registry ${this.registry}: ${what}: HTTP ${res.status}${summary ? ` ${summary}` : ''}${gaveUp ? ` (${attempts} attempts)` : ''}`, res.status, codes, {
      ...(gaveUp ? { hint: 'the registry kept failing this request; check its health and logs (or the proxy before it), then run ferry again' } : {}),
    });
  }

  private newAgent(ep: Endpoint): Agent {
    // headersTimeout also covers a request body the registry stops reading (undici gives up on a socket that stays
    // unwritable that long); bodyTimeout is the longest gap between body chunks, and does not run while ferry itself
    // holds the body back.
    const a = new Agent({
      connect: {
        rejectUnauthorized: ep.verify,
        timeout: Math.min(this.timeoutMs, 10_000),
        ...(ep.tls?.ca ? { ca: ep.tls.ca } : {}),
        ...(ep.tls?.cert ? { cert: ep.tls.cert, key: ep.tls.key } : {}),
      },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    this.agents.push(a);
    return a;
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.close().catch(() => undefined)));
  }
}

/** discard drops a body we will not read; undici reports a body destroyed unread as an error event, which must not go unheard. */
export function discard(res: Response): void {
  if (res.body.destroyed) return;
  res.body.on('error', () => undefined);
  res.body.destroy();
}

/** readText reads a small body as text, refusing to hold more than limit bytes. */
export async function readText(res: Response, limit: number): Promise<string> {
  return (await readLimited(res, limit, 'answer')).toString('utf8');
}

/** readLimited reads a body into memory only if it is at most limit bytes (manifests, error documents, token answers). */
export async function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    discard(res);
    throw new FerryError('REGISTRY_ERROR', `${what} from ${res.url.host} is ${declared} bytes, more than the ${limit} ferry accepts`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) {
        discard(res);
        throw new FerryError('REGISTRY_ERROR', `${what} from ${res.url.host} is more than the ${limit} bytes ferry accepts`);
      }
      parts.push(chunk);
    }
  } catch (err) {
    // A connection that drops or goes silent mid-answer is the registry's failing, said as such (callers may retry it).
    throw isNetworkError(err) ? unreachable(res.url.host, err, res.timeoutMs) : err;
  }
  return Buffer.concat(parts);
}

export function header(res: Response, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function shortPath(url: string): string {
  const p = url.startsWith('http') ? new URL(url).pathname : url.split('?')[0]!;
  return escapeControls(p);
}
