// Authorization for registry requests: Basic credentials, or Bearer tokens fetched per scope set, cached until they expire.
import { FerryError, escapeControls } from '../ui/errors.js';
import { scopeKey, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import { authError, parseRegistryErrors } from './errors.js';

/** TokenFetch performs a GET against a token realm; the transport supplies it so this module stays free of sockets. */
export type TokenFetch = (url: URL, headers: Record<string, string>, signal?: AbortSignal) => Promise<{ status: number; text: string }>;

interface CachedToken {
  token: string;
  refreshAt: number;
}

/** Tokens without expires_in live 60 s (distribution's token spec). */
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private creds: Promise<Credentials | undefined> | undefined;

  constructor(
    private readonly registry: string,
    private readonly loadCreds: () => Promise<Credentials | undefined>,
    private readonly fetchToken: TokenFetch,
    private readonly now: () => number = Date.now,
  ) {}

  /** learn records the challenge a 401 carried; a new realm or scheme drops every cached token. */
  learn(ch: Challenge): void {
    const prev = this.challenge;
    if (!prev || prev.scheme !== ch.scheme || prev.params.realm !== ch.params.realm || prev.params.service !== ch.params.service) this.tokens.clear();
    this.challenge = ch;
  }

  get scheme(): Challenge['scheme'] | undefined {
    return this.challenge?.scheme;
  }

  credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.loadCreds();
    return this.creds;
  }

  /** authorization is the header value for a request needing these scopes; undefined while the registry has not asked for any. */
  async authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.credentials();
      return c ? basic(c) : undefined;
    }
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached) {
      const t = await cached.catch(() => undefined);
      if (t && this.now() < t.refreshAt) return `Bearer ${t.token}`;
      if (this.tokens.get(key) === cached) this.tokens.delete(key);
      else return this.authorization(scopes, signal);
    }
    const pending = this.newToken(ch, scopes, signal);
    this.tokens.set(key, pending);
    try {
      return `Bearer ${(await pending).token}`;
    } catch (err) {
      if (this.tokens.get(key) === pending) this.tokens.delete(key);
      throw err;
    }
  }

  /** invalidate forgets the token for these scopes, after the registry refused it. */
  invalidate(scopes: readonly string[]): void {
    this.tokens.delete(scopeKey(scopes));
  }

  private async newToken(ch: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<CachedToken> {
    const realm = ch.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new FerryError('REGISTRY_ERROR', `registry ${this.registry} asked for a token from an invalid realm "${escapeControls(String(realm)).slice(0, 200)}"`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of new Set(scopes)) url.searchParams.append('scope', s);
    const c = await this.credentials();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (c) {
      headers.authorization = basic(c);
      url.searchParams.set('account', c.username);
    }
    const started = this.now();
    const res = await this.fetchToken(url, headers, signal);
    if (res.status === 401 || res.status === 403) throw authError(this.registry, c !== undefined, parseRegistryErrors(res.text).summary || undefined);
    if (res.status !== 200) {
      throw new FerryError('REGISTRY_ERROR', `token server ${url.origin}${url.pathname} for ${this.registry} answered ${res.status}: ${parseRegistryErrors(res.text).summary}`);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.text) as typeof body;
    } catch {
      throw new FerryError('REGISTRY_ERROR', `token server ${url.origin}${url.pathname} for ${this.registry} did not answer JSON`);
    }
    const token = typeof body.token === 'string' && body.token !== '' ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (token === '') throw new FerryError('REGISTRY_ERROR', `token server ${url.origin}${url.pathname} for ${this.registry} gave no token`);
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    // Renew a little early, so a token does not expire between our check and the registry's.
    const margin = Math.min(10_000, lifetimeMs / 10);
    return { token, refreshAt: started + lifetimeMs - margin };
  }
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
