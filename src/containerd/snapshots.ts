// Snapshots of one named snapshotter (overlayfs, native, …): the filesystem layers images unpack into.
import { isNotFound, type Rpc } from './rpc.js';
import type { Labels, Mount, SnapshotInfo, SnapshotKind } from './types.js';

const SNAPSHOTS = 'containerd.services.snapshots.v1.Snapshots';

interface WireInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Labels;
}

const toInfo = (i: WireInfo): SnapshotInfo => ({ name: i.name, parent: i.parent, kind: i.kind, labels: { ...i.labels } });

export class SnapshotService {
  constructor(private readonly rpc: Rpc) {}

  async stat(snapshotter: string, key: string, signal?: AbortSignal): Promise<SnapshotInfo | undefined> {
    try {
      const res = await this.rpc.unary<{ info: WireInfo }>(SNAPSHOTS, 'Stat', { snapshotter, key }, `snapshot stat ${snapshotter}/${key}`, signal);
      return toInfo(res.info);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** prepare makes an active snapshot on parent ('' for none) and returns the mounts to fill it through. */
  async prepare(snapshotter: string, key: string, parent: string, labels: Labels = {}, signal?: AbortSignal): Promise<Mount[]> {
    const res = await this.rpc.unary<{ mounts: Mount[] }>(SNAPSHOTS, 'Prepare', { snapshotter, key, parent, labels }, `snapshot prepare ${snapshotter}/${key}`, signal);
    return res.mounts.map((m) => ({ type: m.type, source: m.source, target: m.target, options: [...m.options] }));
  }

  /** commit turns the active snapshot key into the committed snapshot name. */
  async commit(snapshotter: string, name: string, key: string, labels: Labels = {}, signal?: AbortSignal): Promise<void> {
    await this.rpc.unary<object>(SNAPSHOTS, 'Commit', { snapshotter, name, key, labels }, `snapshot commit ${snapshotter}/${name}`, signal);
  }

  async remove(snapshotter: string, key: string, signal?: AbortSignal): Promise<void> {
    await this.rpc.unary<object>(SNAPSHOTS, 'Remove', { snapshotter, key }, `snapshot remove ${snapshotter}/${key}`, signal);
  }

  async list(snapshotter: string, filters: readonly string[] = [], signal?: AbortSignal): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for await (const page of this.rpc.serverStream<{ info: WireInfo[] }>(SNAPSHOTS, 'List', { snapshotter, filters }, `snapshot list ${snapshotter}`, signal)) {
      for (const i of page.info) out.push(toInfo(i));
    }
    return out;
  }
}
