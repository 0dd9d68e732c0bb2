// The labels that tie content together for containerd's garbage collector, named as containerd 1.6 names them
// (images.ChildGCLabels + SetChildrenMappedLabels), so what ferry imports looks like what `ctr import` leaves.
import { DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST } from '../image/media-types.js';
import type { Labels } from './types.js';

const PREFIX = 'containerd.io/gc.ref.content.';
const KNOWN_CONFIGS = new Set([
  DOCKER_CONFIG,
  OCI_CONFIG,
  'application/vnd.containerd.container.criu.checkpoint.criu.tar',
  'application/vnd.containerd.container.checkpoint.config.v1+proto',
]);
const DOCKER_LAYERS = new Set([
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** isLayerType follows containerd: any OCI layer type, or a Docker one once `+…` suffixes are cut off. */
export function isLayerType(mediaType: string): boolean {
  return mediaType.startsWith('application/vnd.oci.image.layer.') || DOCKER_LAYERS.has(mediaType.split('+')[0] ?? '');
}

/** The label key a child of this type is filed under; a trailing dot means "numbered". */
function keyFor(mediaType: string): string {
  if (KNOWN_CONFIGS.has(mediaType)) return `${PREFIX}config`;
  if (mediaType === DOCKER_MANIFEST || mediaType === OCI_MANIFEST) return `${PREFIX}m.`;
  if (isLayerType(mediaType)) return `${PREFIX}l.`;
  return PREFIX;
}

/**
 * childGcLabels are the labels a manifest or index blob needs so GC keeps its children: for a manifest its
 * config (`…content.config`) and layers (`…content.l.<i>`), for an index its manifests (`…content.m.<i>`).
 * Pass the children in document order (a manifest's config first, then its layers).
 */
export function childGcLabels(children: readonly { mediaType: string; digest: string }[]): Labels {
  const labels: Labels = {};
  const counts = new Map<string, number>();
  for (const child of children) {
    const key = keyFor(child.mediaType);
    const i = counts.get(key) ?? 0;
    counts.set(key, i + 1);
    labels[i > 0 || key.endsWith('.') ? `${key}${i}` : key] = child.digest;
  }
  return labels;
}

/** snapshotGcLabel is the label on an image config that keeps its unpacked snapshot chain (value: the top chain ID). */
export const snapshotGcLabel = (snapshotter: string): string => `containerd.io/gc.ref.snapshot.${snapshotter}`;

/** UNCOMPRESSED_LABEL on a layer blob records its diffID, set once an apply has proven it. */
export const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed';

/** SNAPSHOT_REF_LABEL on an unpacked snapshot names its chain ID; containerd uses it to find it again. */
export const SNAPSHOT_REF_LABEL = 'containerd.io/snapshot.ref';
