// Which source an image name belongs to, as skopeo spells transports; a bare name is the local Docker daemon.
// This is the one module that knows every source; each source knows only itself.
import { DockerEngineClient } from '../engine/client.js';
import type { EngineEndpoint } from '../engine/endpoint.js';
import type { RegistryOptions } from '../registry/client.js';
import { bundleSource } from './bundle.js';
import { DockerArchiveSource } from './docker-archive.js';
import { DockerDaemonSource } from './docker-daemon.js';
import { ociArchiveSource } from './oci-archive.js';
import { ociLayoutSource } from './oci-layout.js';
import { registrySource } from './registry.js';
import type { ImageSource, Resolved, ResolveOptions } from './source.js';

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

export interface OpenOptions {
  /** docker save streams to ask the daemon for at once. */
  concurrentSaves?: number;
  /** Credentials, TLS and timeouts per registry host. */
  registry: (host: string) => RegistryOptions;
  /** warn is told of what a source skips (an OCI layout's unreadable entries). */
  warn?: (message: string) => void;
  /** The Docker daemon (-H, a context, TLS); default: docker's choice without flags. */
  daemon?: () => EngineEndpoint;
}

/** openSource opens the source of one transport; the daemon's is pinged first, so an unreachable one fails here. */
export async function openSource(t: Transport, opts: OpenOptions): Promise<ImageSource> {
  const warn = opts.warn ?? (() => undefined);
  switch (t) {
    case 'docker-daemon': {
      const engine = new DockerEngineClient(opts.daemon?.());
      await engine.ping();
      return new DockerDaemonSource(engine, opts.concurrentSaves !== undefined ? { concurrentSaves: opts.concurrentSaves } : {});
    }
    case 'docker':
      return registrySource(opts.registry);
    case 'docker-archive':
      return new DockerArchiveSource();
    case 'oci':
      return ociLayoutSource({ warn });
    case 'oci-archive':
      return ociArchiveSource({ warn });
    case 'bundle':
      return bundleSource();
  }
}

/** A source opened and the images it resolved: what pack writes from. */
export interface ResolvedSource {
  source: ImageSource;
  resolved: Resolved;
}

/**
 * resolveAll opens the source of each transport among names (blob-keeping ones first, see groupByTransport) and
 * resolves its names, layers unread. On failure every source opened is closed; on success the caller closes them.
 */
export async function resolveAll(names: readonly string[], opts: OpenOptions & ResolveOptions): Promise<ResolvedSource[]> {
  const parts: ResolvedSource[] = [];
  try {
    for (const [t, group] of groupByTransport(names)) {
      const source = await openSource(t, opts);
      parts.push({ source, resolved: { images: [], indexes: [] } });
      parts[parts.length - 1]!.resolved = await source.resolve(group, opts);
    }
    return parts;
  } catch (err) {
    await Promise.allSettled(parts.map((p) => p.source.close()));
    throw err;
  }
}

/** describeSources names where images come from, for progress: "the Docker daemon, docker". */
export function describeSources(names: readonly string[]): string {
  return [...groupByTransport(names).keys()].map((t) => (t === 'docker-daemon' ? 'the Docker daemon' : t)).join(', ');
}
