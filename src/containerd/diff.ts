// Applying a layer blob from the content store onto prepared snapshot mounts (containerd decompresses it).
import type { Rpc } from './rpc.js';
import type { Descriptor, Mount } from './types.js';

const DIFF = 'containerd.services.diff.v1.Diff';

export class DiffService {
  constructor(private readonly rpc: Rpc) {}

  /**
   * apply unpacks the layer (tar, tar+gzip, tar+zstd) onto the mounts and returns what was applied: its
   * digest is the layer's diffID, the sha256 of the uncompressed tar.
   */
  async apply(layer: Descriptor, mounts: readonly Mount[], signal?: AbortSignal): Promise<Descriptor> {
    const diff = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: layer.annotations ?? {} };
    const res = await this.rpc.unary<{ applied: Descriptor | null }>(DIFF, 'Apply', { diff, mounts, payloads: {} }, `apply layer ${layer.digest}`, signal);
    if (!res.applied) throw new Error(`containerd applied ${layer.digest} but named no result`);
    return { mediaType: res.applied.mediaType, digest: res.applied.digest, size: res.applied.size };
  }
}
