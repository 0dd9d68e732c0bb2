// Leases: while one holds its id, containerd's GC keeps what was written or created under it.
import { randomBytes } from 'node:crypto';
import type { Rpc } from './rpc.js';
import type { Labels } from './types.js';

const LEASES = 'containerd.services.leases.v1.Leases';
/** containerd's own clients give their leases a day; past it GC may reclaim what a crashed import left. */
export const DEFAULT_LEASE_TTL_MS = 24 * 3600_000;

export interface Lease {
  id: string;
  labels: Labels;
}

/** rfc3339 drops the milliseconds: the form containerd writes for gc.expire itself. */
const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export class LeaseService {
  constructor(private readonly rpc: Rpc) {}

  /** create makes a lease that expires after ttlMs (containerd.io/gc.expire) unless deleted first. */
  async create(labels: Labels = {}, opts: { ttlMs?: number; signal?: AbortSignal } = {}): Promise<Lease> {
    const id = `ferry-${Date.now()}-${randomBytes(6).toString('base64url')}`;
    const all = { 'containerd.io/gc.expire': rfc3339(Date.now() + (opts.ttlMs ?? DEFAULT_LEASE_TTL_MS)), ...labels };
    const res = await this.rpc.unary<{ lease: Lease | null }>(LEASES, 'Create', { id, labels: all }, `lease create ${id}`, opts.signal);
    return { id: res.lease?.id ?? id, labels: { ...(res.lease?.labels ?? all) } };
  }

  /** delete ends a lease; with sync, containerd collects what only it kept before answering. */
  async delete(id: string, opts: { sync?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    await this.rpc.unary<object>(LEASES, 'Delete', { id, sync: opts.sync ?? false }, `lease delete ${id}`, opts.signal);
  }
}
