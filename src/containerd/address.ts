// Where containerd's socket is: the flag, else CONTAINERD_ADDRESS, else the default path (as ctr and nerdctl do).

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

/** containerdAddress returns a socket path; a `unix://` prefix (as in CONTAINERD_ADDRESS=unix:///…) is accepted. */
export function containerdAddress(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = flag || env.CONTAINERD_ADDRESS || DEFAULT_CONTAINERD_ADDRESS;
  return given.startsWith('unix://') ? given.slice('unix://'.length) : given;
}
