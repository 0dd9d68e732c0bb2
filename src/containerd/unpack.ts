// Unpacking an image's layers into snapshots the way containerd's own unpacker does (prepare on the parent
// chain, apply, check the diffID, commit as the chain ID), so containerd and its CRI find them as their own.
import { randomBytes } from 'node:crypto';
import { asDiffId, chainIds } from '../image/digest.js';
import { LayerDiffIdError } from '../ui/errors.js';
import type { ContainerdClient } from './client.js';
import { SNAPSHOT_REF_LABEL, UNCOMPRESSED_LABEL, snapshotGcLabel } from './gc-labels.js';
import { isAlreadyExists } from './rpc.js';
import type { Descriptor, Labels, Mount } from './types.js';

export interface UnpackLayer {
  /** The layer blob, already in containerd's content store (tar, tar+gzip or tar+zstd). */
  descriptor: Descriptor;
  /** Its diffID, from the image config's rootfs.diff_ids. */
  diffId: string;
}

export interface UnpackOptions {
  /** The image config's digest: it gets the gc.ref.snapshot label that keeps the unpacked chain. */
  config?: string;
}

export interface UnpackResult {
  /** The chain ID of the top layer: the image's rootfs snapshot. */
  chainId: string;
  /** Per layer: applied now, or found already unpacked. */
  layers: ('applied' | 'present')[];
}

/** Annotations a layer passes on to its snapshot, as containerd's snapshots.FilterInheritedLabels keeps them. */
const INHERITED = 'containerd.io/snapshot/';

/** The key format of containerd's snapshots.UnpackKeyFormat, so `ctr snapshots ls` shows ours alike. */
const unpackKey = (chainId: string): string => `extract-${process.hrtime.bigint() % 1_000_000_000n}-${randomBytes(3).toString('base64url')} ${chainId}`;

/**
 * unpackLayers makes the snapshot chain for the layers, bottom first, skipping what is already committed.
 * Without a lease on the client it holds a temporary one while it works, as containerd's Unpack does.
 */
export async function unpackLayers(client: ContainerdClient, snapshotter: string, layers: readonly UnpackLayer[], signal?: AbortSignal, opts: UnpackOptions = {}): Promise<UnpackResult> {
  if (!layers.length) throw new TypeError('an image needs at least one layer to unpack');
  const chain = chainIds(layers.map((l) => asDiffId(l.diffId)));
  const lease = client.lease ? undefined : await client.leases.create({}, signal ? { signal } : {});
  const c = lease ? client.withLease(lease.id) : client;
  try {
    const done: ('applied' | 'present')[] = [];
    for (const [i, layer] of layers.entries()) {
      const parent = i > 0 ? chain[i - 1]! : '';
      done.push(await unpackOne(c, snapshotter, layer, chain[i]!, parent, signal));
    }
    const top = chain[chain.length - 1]!;
    if (opts.config) await c.content.updateLabels(opts.config, { [snapshotGcLabel(snapshotter)]: top }, signal);
    return { chainId: top, layers: done };
  } finally {
    if (lease) await client.leases.delete(lease.id).catch(() => undefined);
  }
}

async function unpackOne(c: ContainerdClient, snapshotter: string, layer: UnpackLayer, chainId: string, parent: string, signal?: AbortSignal): Promise<'applied' | 'present'> {
  if (await c.snapshots.stat(snapshotter, chainId, signal)) return 'present';
  const labels: Labels = { [SNAPSHOT_REF_LABEL]: chainId };
  for (const [k, v] of Object.entries(layer.descriptor.annotations ?? {})) if (k.startsWith(INHERITED)) labels[k] = v;

  const prepared = await prepareFresh(c, snapshotter, chainId, parent, labels, signal);
  if (!prepared) return 'present';
  const { key, mounts } = prepared;
  try {
    const applied = await c.diff.apply(layer.descriptor, mounts, signal);
    if (applied.digest !== layer.diffId) {
      throw new LayerDiffIdError(layer.diffId, applied.digest, `layer ${layer.descriptor.digest} unpacks to diffID ${applied.digest}, not the ${layer.diffId} its image config names`, {
        hint: 'the image is damaged or was altered; fetch it again from its source',
      });
    }
    await c.snapshots.commit(snapshotter, chainId, key, labels, signal);
  } catch (err) {
    // The key is unique to this attempt: drop it whatever happened (without the signal, which may have fired).
    await c.snapshots.remove(snapshotter, key).catch(() => undefined);
    if (isAlreadyExists(err)) return 'present'; // someone else committed the same chain meanwhile
    throw err;
  }
  // Only now is the diffID proven by an apply, which is when containerd records it on the blob.
  await c.content.updateLabels(layer.descriptor.digest, { [UNCOMPRESSED_LABEL]: layer.diffId }, signal);
  return 'applied';
}

/**
 * prepareFresh prepares a new active snapshot for the chain ID, or returns undefined when the chain turns out
 * to be committed already: with the snapshot.ref label containerd answers AlreadyExists for an existing target.
 */
async function prepareFresh(c: ContainerdClient, snapshotter: string, chainId: string, parent: string, labels: Labels, signal?: AbortSignal): Promise<{ key: string; mounts: Mount[] } | undefined> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const key = unpackKey(chainId);
    try {
      return { key, mounts: await c.snapshots.prepare(snapshotter, key, parent, labels, signal) };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      if (await c.snapshots.stat(snapshotter, chainId, signal)) return undefined;
      last = err; // a key clash, rare: try another key
    }
  }
  throw last;
}
