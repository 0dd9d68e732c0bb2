// ContainerdClient: containerd's own gRPC API over its unix socket, for one namespace (and optionally one lease).
import { ContentService } from './content.js';
import { DiffService } from './diff.js';
import { ImageService } from './images.js';
import { IntrospectionService } from './introspection.js';
import { LeaseService } from './leases.js';
import { Rpc } from './rpc.js';
import { SnapshotService } from './snapshots.js';

export interface ContainerdClientOptions {
  /** The socket path (a `unix://` prefix is accepted); see containerdAddress(). */
  address: string;
  /** containerd's namespace: `k8s.io` is the kubelet's, `default` ctr's. */
  namespace: string;
  /** Calls carry this lease, so containerd's GC keeps what they write or create. */
  lease?: string;
}

export interface ContainerdVersion {
  version: string;
  revision: string;
}

export class ContainerdClient {
  readonly address: string;
  readonly namespace: string;
  readonly lease: string | undefined;
  readonly content: ContentService;
  readonly images: ImageService;
  readonly leases: LeaseService;
  readonly snapshots: SnapshotService;
  readonly diff: DiffService;
  readonly introspection: IntrospectionService;
  private readonly rpc: Rpc;
  private readonly ownsChannel: boolean;

  constructor(opts: ContainerdClientOptions);
  constructor(opts: ContainerdClientOptions, shared: Rpc);
  constructor(opts: ContainerdClientOptions, shared?: Rpc) {
    const address = opts.address.startsWith('unix://') ? opts.address.slice('unix://'.length) : opts.address;
    this.rpc = shared ? shared.withLease(opts.lease) : new Rpc({ address, namespace: opts.namespace, ...(opts.lease ? { lease: opts.lease } : {}) });
    this.ownsChannel = !shared;
    this.address = this.rpc.address;
    this.namespace = this.rpc.namespace;
    this.lease = this.rpc.lease;
    this.content = new ContentService(this.rpc);
    this.images = new ImageService(this.rpc);
    this.leases = new LeaseService(this.rpc);
    this.snapshots = new SnapshotService(this.rpc);
    this.diff = new DiffService(this.rpc);
    this.introspection = new IntrospectionService(this.rpc);
  }

  /** withLease returns a client on the same connection whose calls carry the lease (undefined: none). */
  withLease(lease: string | undefined): ContainerdClient {
    return new ContainerdClient({ address: this.address, namespace: this.namespace, ...(lease ? { lease } : {}) }, this.rpc);
  }

  /** version is the first call worth making: it fails with CONTAINERD_UNREACHABLE when nothing answers. */
  async version(signal?: AbortSignal): Promise<ContainerdVersion> {
    const res = await this.rpc.unary<ContainerdVersion>('containerd.services.version.v1.Version', 'Version', {}, 'version', signal);
    return { version: res.version, revision: res.revision };
  }

  /** close ends the connection; clients made by withLease share it, so only the first one closes it. */
  close(): void {
    if (this.ownsChannel) this.rpc.close();
  }
}
