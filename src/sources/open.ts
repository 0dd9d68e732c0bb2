// Which source an image name belongs to, as skopeo spells transports; a bare name is the local Docker daemon.
// This is the one module that knows every source; each source knows only itself.
import type { ImageSource } from './source.js';

export type Transport = 'docker-daemon' | 'docker' | 'docker-archive' | 'oci' | 'oci-archive' | 'bundle';

const PREFIXES: readonly [string, Transport][] = [
  ['docker://', 'docker'],
  ['docker-daemon:', 'docker-daemon'],
  ['docker-archive:', 'docker-archive'],
  ['oci-archive:', 'oci-archive'],
  ['oci:', 'oci'],
  ['bundle:', 'bundle'],
];

export function transportOf(name: string): Transport {
  for (const [prefix, t] of PREFIXES) if (name.startsWith(prefix)) return t;
  return 'docker-daemon';
}

/** Transports whose blobs travel byte for byte; the others hand over layer tars that ferry compresses. */
const KEEPS_BLOBS: ReadonlySet<Transport> = new Set(['docker', 'oci', 'oci-archive', 'bundle']);

/**
 * groupByTransport keeps the order names were given in within a transport, and puts transports that keep
 * blobs first: a layer they store is then reused by daemon and archive images instead of stored twice.
 */
export function groupByTransport(names: readonly string[]): Map<Transport, string[]> {
  const out = new Map<Transport, string[]>();
  const sorted = [...names.filter((n) => KEEPS_BLOBS.has(transportOf(n))), ...names.filter((n) => !KEEPS_BLOBS.has(transportOf(n)))];
  for (const n of sorted) {
    const t = transportOf(n);
    out.set(t, [...(out.get(t) ?? []), n]);
  }
  return out;
}

export type SourceFactory = (t: Transport) => Promise<ImageSource>;
