// Where and how to reach a registry: Docker Hub's API host, and the ordered https/http candidates docker would try.
import { isIPv4 } from 'node:net';
import type { TlsMaterial } from './tls.js';

export interface Endpoint {
  /** scheme://host[:port], no trailing slash */
  origin: string;
  /** verify the server's certificate (https only) */
  verify: boolean;
  tls?: TlsMaterial;
}

/** apiHost is the host that serves the v2 API for a reference's domain: Docker Hub's is not docker.io itself. */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/** hostname strips the port (and IPv6 brackets) from host[:port]. */
export function hostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  return registry.split(':')[0] ?? registry;
}

export function isLoopback(registry: string): boolean {
  const h = hostname(registry).toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || (isIPv4(h) && h.startsWith('127.'));
}

/**
 * candidates lists the endpoints to try, in order. A host with certs.d material speaks verified TLS with it, loopback
 * included (as docker does); otherwise loopback is plain HTTP; `insecure` tries TLS without verification, then HTTP.
 */
export function candidates(registry: string, opts: { insecure: boolean; tls: TlsMaterial | undefined }): Endpoint[] {
  const host = apiHost(registry);
  const https: Endpoint = { origin: `https://${host}`, verify: !opts.insecure, ...(opts.tls ? { tls: opts.tls } : {}) };
  const http: Endpoint = { origin: `http://${host}`, verify: false };
  if (opts.insecure) return [https, http];
  if (opts.tls) return [https];
  if (isLoopback(host)) return [http];
  return [https];
}
