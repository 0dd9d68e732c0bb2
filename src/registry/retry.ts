// When a registry request may be tried again, and how long to wait first: 5xx, 429 (Retry-After) and dropped connections.
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { FerryError } from '../ui/errors.js';
import { errorCode } from './errors.js';

export interface RetryPolicy {
  /** attempts in all, the first included */
  attempts: number;
  backoffMs: number;
}

/** Retry-After beyond this is not worth waiting for inside one command. */
const MAX_RETRY_AFTER_MS = 60_000;

const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** isRetryableNetworkError: the connection failed or dropped; DNS names that do not exist and TLS failures are final. */
export function isRetryableNetworkError(err: unknown): boolean {
  if ((err as Error)?.name === 'AbortError' || err instanceof FerryError) return false;
  const code = errorCode(err);
  if (code !== undefined) return RETRYABLE_NETWORK.has(code);
  return /socket hang up|other side closed|premature close/i.test(String((err as Error)?.message ?? ''));
}

/** droppedConnection: err (or the REGISTRY_UNREACHABLE error wrapping it) is a connection that failed or dropped mid-way. */
export function droppedConnection(err: unknown): boolean {
  return isRetryableNetworkError(err instanceof FerryError && err.code === 'REGISTRY_UNREACHABLE' ? err.cause : err);
}

/** backoffDelay doubles from base for each failed attempt (1-based), with up to 25% jitter so parallel transfers spread out. */
export function backoffDelay(attempt: number, baseMs: number): number {
  const d = baseMs * 2 ** Math.max(0, attempt - 1);
  return Math.round(d + d * 0.25 * Math.random());
}

/** retryAfterMs reads Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  let ms: number;
  if (/^\d+$/.test(v.trim())) ms = Number(v.trim()) * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/** sleep waits, or rejects with the signal's reason as soon as it aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return;
  await sleepTimer(ms, undefined, signal ? { signal } : undefined);
}
