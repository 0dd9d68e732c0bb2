// The shapes containerd's API answers with, as ferry's code sees them (camelCase, sizes as numbers, dates as Date).

export type Labels = Record<string, string>;

/** Descriptor is an OCI descriptor as containerd stores it (an image's target, a layer to apply). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Labels;
}

/** Mount is what a snapshotter hands out for a prepared snapshot (type overlay/bind, source, options). */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface ContentInfo {
  digest: string;
  size: number;
  labels: Labels;
}

export interface ImageRecord {
  name: string;
  target: Descriptor;
  labels: Labels;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
}

export type SnapshotKind = 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Labels;
}

/** Timestamp is google.protobuf.Timestamp as proto-loader decodes it (longs as numbers). */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

export function toDate(t: Timestamp | null | undefined): Date | undefined {
  return t ? new Date(t.seconds * 1000 + Math.floor(t.nanos / 1e6)) : undefined;
}
