// A Bearer token server for distribution's `auth: token`: checks Basic credentials, signs ES256 JWTs (x5c) and counts what it is asked.
import { X509Certificate, createPrivateKey, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { selfSigned } from './certs.js';

export interface TokenRequest {
  scopes: string[];
  account: string | undefined;
  user: string | undefined;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  /** the certificate to name as the registry's rootcertbundle */
  rootCertFile: string;
  requests: TokenRequest[];
  /** expires_in of the tokens it issues */
  expiresIn: number;
  /** issue this many tokens already expired (beyond the registry's 60 s leeway) while claiming expires_in */
  staleNext: number;
  /** answer with `access_token` instead of `token` */
  field: 'token' | 'access_token';
  /** registryConfig is the `auth:` block for the registry's config.yml */
  registryConfig(): string;
  close(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export async function startTokenServer(dir: string, users: Record<string, string>): Promise<TokenServer> {
  const signer = selfSigned(dir, 'token-signer', 'ferry test token issuer');
  const key = createPrivateKey(signer.key);
  const x5c = new X509Certificate(signer.cert).raw.toString('base64');
  const service = 'ferry-test-registry';
  const issuer = 'ferry-test-issuer';

  const state = { requests: [] as TokenRequest[], expiresIn: 300, staleNext: 0, field: 'token' as 'token' | 'access_token' };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const auth = req.headers.authorization ?? '';
    let user: string | undefined;
    let ok = false;
    if (auth.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      user = u;
      ok = u !== undefined && users[u] !== undefined && users[u] === p.join(':');
    }
    state.requests.push({ scopes, account: url.searchParams.get('account') ?? undefined, user });
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service || !ok) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const stale = state.staleNext > 0;
    if (stale) state.staleNext--;
    const access = scopes.flatMap((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop() ?? '';
      return type === 'repository' ? [{ type, name: rest.join(':'), actions: actions.split(',') }] : [];
    });
    const exp = stale ? now - 600 : now + state.expiresIn;
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [x5c] }));
    const claims = b64url(JSON.stringify({ iss: issuer, sub: user, aud: service, exp, nbf: now - 700, iat: now - 700, jti: randomUUID(), access }));
    const sig = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${header}.${claims}.${b64url(sig)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ [state.field]: token, expires_in: state.expiresIn, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;

  return {
    realm,
    service,
    issuer,
    rootCertFile: signer.certFile,
    get requests() {
      return state.requests;
    },
    get expiresIn() {
      return state.expiresIn;
    },
    set expiresIn(v: number) {
      state.expiresIn = v;
    },
    get staleNext() {
      return state.staleNext;
    },
    set staleNext(v: number) {
      state.staleNext = v;
    },
    get field() {
      return state.field;
    },
    set field(v: 'token' | 'access_token') {
      state.field = v;
    },
    registryConfig: () => `auth:\n  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${signer.certFile}\n`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
