// Registry failures as FerryErrors: the registry's own error JSON quoted and escaped, one subclass callers may branch on.
import { FerryError, escapeControls, type ErrorCode } from '../ui/errors.js';

/** RegistryError is an HTTP answer the registry gave and ferry could not use; status and the registry's error codes let callers branch. */
export class RegistryError extends FerryError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
    readonly registryCodes: readonly string[],
    opts: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, message, opts);
    this.name = 'RegistryError';
  }
}

interface ErrorJson {
  errors?: { code?: unknown; message?: unknown; detail?: unknown }[];
}

/** parseRegistryErrors reads distribution's `{"errors":[{code,message}]}`; anything else yields the text itself, cut short. */
export function parseRegistryErrors(text: string): { codes: string[]; summary: string } {
  let parsed: ErrorJson | undefined;
  try {
    parsed = JSON.parse(text) as ErrorJson;
  } catch {
    /* not JSON: quote the text */
  }
  if (parsed && Array.isArray(parsed.errors)) {
    const codes: string[] = [];
    const parts: string[] = [];
    for (const e of parsed.errors.slice(0, 5)) {
      const code = typeof e?.code === 'string' ? e.code : '';
      const message = typeof e?.message === 'string' ? e.message : '';
      if (code) codes.push(code);
      parts.push([code, message].filter(Boolean).join(': '));
    }
    return { codes, summary: clip(escapeControls(parts.filter(Boolean).join('; '))) };
  }
  return { codes: [], summary: clip(escapeControls(text.trim())) };
}

function clip(s: string): string {
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

const UNREACHABLE_HINT = 'check the registry name and port, that the registry is running and that this machine can reach it';
const TLS_HINT =
  'if the registry uses a private CA, put its certificate in /etc/docker/certs.d/HOST/ca.crt (as docker does); for a registry without valid TLS use --tls-verify=false';

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

/** errorCode finds the system or undici code of a network error, which fetch-style wrappers hide in `cause`. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export function isTlsError(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
}

const NETWORK_CODE = /^(E(CONN[A-Z]+|PIPE|TIMEDOUT|NOTFOUND|AI_[A-Z]+|(NET|HOST)UNREACH|PROTO)|UND_ERR_(SOCKET|CLOSED|CONNECT_TIMEOUT|HEADERS_TIMEOUT|BODY_TIMEOUT))$/;

/** isNetworkError: the failure lies in reaching the registry (socket, DNS, TLS), not in what ferry sent or read. */
export function isNetworkError(err: unknown): boolean {
  if (err instanceof FerryError) return false;
  const code = errorCode(err);
  return (code !== undefined && NETWORK_CODE.test(code)) || isTlsError(err) || /other side closed|socket hang up/i.test(String((err as Error)?.message ?? ''));
}

const TIMEOUT_HINT =
  'check that the registry (and any proxy before it) is healthy and this network path is not stalling; FERRY_REGISTRY_TIMEOUT sets how many seconds ferry waits on a silent registry (default 60)';

/** unreachable says which registry could not be reached and why, in one line; FerryErrors and aborts pass through. */
export function unreachable(registry: string, err: unknown, timeoutMs?: number): Error {
  if (err instanceof FerryError) return err;
  if ((err as Error)?.name === 'AbortError') return err as Error;
  const code = errorCode(err);
  const after = timeoutMs !== undefined ? ` for ${formatSeconds(timeoutMs)}` : '';
  const silent =
    code === 'UND_ERR_HEADERS_TIMEOUT'
      ? `registry ${registry} did not answer${after} (${code})`
      : code === 'UND_ERR_BODY_TIMEOUT'
        ? `registry ${registry} stopped sending mid-answer${after} (${code})`
        : code === 'UND_ERR_CONNECT_TIMEOUT'
          ? `cannot reach registry ${registry}: no connection${timeoutMs !== undefined ? ` within ${formatSeconds(Math.min(timeoutMs, 10_000))}` : ''} (${code})`
          : undefined;
  if (silent) return new FerryError('REGISTRY_UNREACHABLE', silent, { hint: TIMEOUT_HINT, cause: err });
  const what = escapeControls(String((err as Error)?.message ?? err));
  const detail = code && !what.includes(code) ? `${code} ${what}` : what;
  return new FerryError('REGISTRY_UNREACHABLE', `cannot reach registry ${registry}: ${detail}`, {
    hint: isTlsError(err) ? TLS_HINT : UNREACHABLE_HINT,
    cause: err,
  });
}

function formatSeconds(ms: number): string {
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)} s`;
}

/** authError is a registry that refused us after we offered what credentials we have. */
export function authError(registry: string, hasCreds: boolean, detail?: string): FerryError {
  const why = hasCreds ? `registry ${registry} refused the credentials` : `registry ${registry} requires credentials`;
  return new FerryError('REGISTRY_AUTH', detail ? `${why}: ${detail}` : why, {
    hint: `pass --creds USER:PASSWORD (or --creds-file), or run \`docker login ${registry}\``,
  });
}
