// Which plugins containerd loaded, and so which snapshotters can be used here (overlayfs fails on overlay roots).
import type { Rpc } from './rpc.js';

const INTROSPECTION = 'containerd.services.introspection.v1.Introspection';
const SNAPSHOTTER_TYPE = 'io.containerd.snapshotter.v1';

export interface PluginInfo {
  type: string;
  id: string;
  /** Why the plugin did not load; undefined when it is OK. */
  error: string | undefined;
}

interface WirePlugin {
  type: string;
  id: string;
  initErr: { code: number; message: string } | null;
}

export class IntrospectionService {
  constructor(private readonly rpc: Rpc) {}

  async plugins(filters: readonly string[] = [], signal?: AbortSignal): Promise<PluginInfo[]> {
    const res = await this.rpc.unary<{ plugins: WirePlugin[] }>(INTROSPECTION, 'Plugins', { filters }, 'plugins', signal);
    return res.plugins.map((p) => ({ type: p.type, id: p.id, error: p.initErr && (p.initErr.code !== 0 || p.initErr.message) ? p.initErr.message || `code ${p.initErr.code}` : undefined }));
  }

  /** uuid is the containerd server's own ID, stable while its root lives (containerd 1.5 and later). */
  async uuid(signal?: AbortSignal): Promise<string> {
    return (await this.rpc.unary<{ uuid: string }>(INTROSPECTION, 'Server', {}, 'server', signal)).uuid;
  }

  async snapshotters(signal?: AbortSignal): Promise<PluginInfo[]> {
    return (await this.plugins([], signal)).filter((p) => p.type === SNAPSHOTTER_TYPE);
  }

  /**
   * usableSnapshotter picks the first of the preferred snapshotters that loaded: overlayfs, else native, which
   * works on any filesystem (containerd refuses overlayfs on an overlay root, e.g. inside a container).
   */
  async usableSnapshotter(preferred: readonly string[] = ['overlayfs', 'native'], signal?: AbortSignal): Promise<string | undefined> {
    const ok = new Set((await this.snapshotters(signal)).filter((p) => !p.error).map((p) => p.id));
    return preferred.find((id) => ok.has(id));
  }
}
