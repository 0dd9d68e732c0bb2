// Where `ferry load` puts images: a Docker daemon (-H, DOCKER_HOST, a Docker context), or containerd (--containerd
// [ADDRESS]), each as a target for the copy loop with how receipts describe it.
import { stat } from 'node:fs/promises';
import { containerdAddress } from '../containerd/address.js';
import { DockerEngineClient } from '../engine/client.js';
import { describeDaemon } from '../sync/daemon-inventory.js';
import type { TargetInfo } from '../sync/documents.js';
import { DockerDaemonTarget } from '../targets/docker-daemon.js';
import type { ImageTarget } from '../targets/target.js';
import { daemonEndpoint, type DaemonArgs } from './daemon-options.js';

export interface PlaceArgs extends DaemonArgs {
  containerd?: string;
  namespace: string;
  snapshotter?: string;
}

export interface LoadPlace {
  target: ImageTarget;
  /** "the Docker daemon at unix:///run/docker.sock", for the progress title. */
  title: string;
  /** The first call: fails with the documented exit code when nothing answers. */
  reach(signal?: AbortSignal): Promise<void>;
  describe(signal?: AbortSignal): Promise<TargetInfo>;
  close(): Promise<void>;
}

/**
 * containerdFlag reads `--containerd [ADDRESS]`: undefined when not given. A value that names a regular file is the
 * first bundle, not a socket (`ferry load --containerd week47.ferry.tar`), so it goes back to the arguments.
 */
export async function containerdFlag(value: string | undefined, args: string[]): Promise<string | undefined> {
  if (value === undefined) return undefined;
  if (value !== '' && (await stat(value).catch(() => undefined))?.isFile()) {
    args.unshift(value);
    return containerdAddress();
  }
  return containerdAddress(value || undefined);
}

/** openLoadPlace opens the target; containerd's gRPC stack is loaded only for containerd (a tenth of a second per run). */
export async function openLoadPlace(address: string | undefined, args: PlaceArgs): Promise<LoadPlace> {
  if (address !== undefined) {
    const [{ ContainerdClient }, { ContainerdTarget }, { describeContainerd }] = await Promise.all([import('../containerd/index.js'), import('../targets/containerd.js'), import('../sync/containerd-inventory.js')]);
    const client = new ContainerdClient({ address, namespace: args.namespace });
    const target = new ContainerdTarget(client, args.snapshotter ? { snapshotter: args.snapshotter } : {});
    return {
      target,
      title: target.description,
      reach: async (signal) => void (await client.version(signal)),
      describe: (signal) => describeContainerd(client, signal),
      close: async () => target.close(),
    };
  }
  const engine = new DockerEngineClient(daemonEndpoint(args));
  const target = new DockerDaemonTarget(engine);
  return {
    target,
    title: target.description,
    reach: () => engine.ping(),
    describe: (signal) => describeDaemon(engine, signal),
    close: () => engine.close(),
  };
}
