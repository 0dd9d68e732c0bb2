// The containerd client's public face: import from here, not from the files behind it.
export { containerdAddress, DEFAULT_CONTAINERD_ADDRESS } from './address.js';
export { ContainerdClient, type ContainerdClientOptions, type ContainerdVersion } from './client.js';
export type { WriteResult, WriteTarget, OpenFrom } from './content-write.js';
export { WRITE_CHUNK } from './content-write.js';
export type { WriteStatus } from './content.js';
export type { NewImage } from './images.js';
export { DEFAULT_LEASE_TTL_MS, type Lease } from './leases.js';
export type { PluginInfo } from './introspection.js';
export { childGcLabels, isLayerType, snapshotGcLabel, SNAPSHOT_REF_LABEL, UNCOMPRESSED_LABEL } from './gc-labels.js';
export { grpcCode, isAlreadyExists, isNotFound } from './rpc.js';
export { unpackLayers, type UnpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';
export type { ContentInfo, Descriptor, ImageRecord, Labels, Mount, SnapshotInfo, SnapshotKind } from './types.js';
