// FerryError: a stable code, a message that says what and where, a hint that says what to do; one table maps codes to exit codes.

export const EXIT = {
  ok: 0,
  runtime: 1,
  usage: 2,
  invalidBundle: 3,
  missingLayers: 4,
  unreachable: 5,
} as const;

export type ErrorCode =
  | 'USAGE'
  | 'RUNTIME'
  | 'IMAGE_NOT_FOUND'
  | 'OUTPUT'
  | 'DISK_FULL'
  | 'BUNDLE_INVALID'
  | 'BUNDLE_VERSION'
  | 'MISSING_LAYERS'
  | 'DAEMON_UNREACHABLE'
  | 'DAEMON_ERROR'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_ERROR'
  | 'LOAD_FAILED'
  | 'CONTAINERD_UNREACHABLE'
  | 'CONTAINERD_ERROR'
  | 'INTERRUPTED';

const EXIT_BY_CODE: Record<ErrorCode, number> = {
  USAGE: EXIT.usage,
  RUNTIME: EXIT.runtime,
  IMAGE_NOT_FOUND: EXIT.runtime,
  OUTPUT: EXIT.runtime,
  DISK_FULL: EXIT.runtime,
  BUNDLE_INVALID: EXIT.invalidBundle,
  BUNDLE_VERSION: EXIT.invalidBundle,
  MISSING_LAYERS: EXIT.missingLayers,
  DAEMON_UNREACHABLE: EXIT.unreachable,
  DAEMON_ERROR: EXIT.runtime,
  REGISTRY_UNREACHABLE: EXIT.unreachable,
  REGISTRY_AUTH: EXIT.unreachable,
  REGISTRY_ERROR: EXIT.runtime,
  LOAD_FAILED: EXIT.runtime,
  CONTAINERD_UNREACHABLE: EXIT.unreachable,
  CONTAINERD_ERROR: EXIT.runtime,
  INTERRUPTED: 130,
};

/**
 * What to do when the code that raised an error had nothing more precise to say: every error prints a `hint:` line,
 * as the README promises. Raise with a hint of its own wherever the user can act on something specific.
 */
const DEFAULT_HINT: Record<ErrorCode, string> = {
  USAGE: 'see `ferry --help` or `ferry <command> --help`',
  RUNTIME: 'run it again with FERRY_DEBUG=1 to see the underlying cause',
  IMAGE_NOT_FOUND: '`docker images`, `ferry inspect BUNDLE` or the registry lists what there is',
  OUTPUT: 'choose a location you can write to',
  DISK_FULL: 'free some space or write to another disk',
  BUNDLE_INVALID: 'the bundle is damaged or was altered; copy it again from the source and run `ferry verify` on it',
  BUNDLE_VERSION: 'use a newer ferry to read this bundle',
  MISSING_LAYERS: 'apply the bundles that carried those layers first, or pack a bundle against what this target holds',
  DAEMON_UNREACHABLE: 'check that dockerd runs and that DOCKER_HOST names it',
  DAEMON_ERROR: "the Docker daemon's log says more (e.g. journalctl -u docker)",
  REGISTRY_UNREACHABLE: 'check the address, the network and the TLS settings (--insecure-registry, /etc/docker/certs.d)',
  REGISTRY_AUTH: 'check the credentials: --creds, --creds-file, or `docker login`',
  REGISTRY_ERROR: "the registry's log says more; running the same push again skips what arrived",
  LOAD_FAILED: "nothing was tagged; the daemon's log says more (e.g. journalctl -u docker)",
  CONTAINERD_UNREACHABLE: 'check that containerd runs and that --containerd or CONTAINERD_ADDRESS names its socket',
  CONTAINERD_ERROR: "containerd's log says more (e.g. journalctl -u containerd)",
  INTERRUPTED: 'run the same command again to finish the job',
};

export class FerryError extends Error {
  readonly code: ErrorCode;
  /** What to do; a default for the code when the raiser gave none. */
  readonly hint: string;
  /** Individual faults behind this error (verify reports every one it finds). */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; details?: readonly string[] } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = opts.hint ?? DEFAULT_HINT[code];
    this.details = opts.details ?? [];
  }

  get exitCode(): number {
    return EXIT_BY_CODE[this.code];
  }
}

/**
 * LayerDiffIdError: a target unpacked a layer to another diffID than its image config names. Whether the bundle lies
 * is for the copy loop to say (see transfer/bundle-faults.ts), so the fact travels as fields, not only as text.
 */
export class LayerDiffIdError extends FerryError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    message: string,
    opts: { hint?: string } = {},
  ) {
    super('LOAD_FAILED', message, opts);
  }
}

/** BundleError is a bundle that is malformed, tampered with or hostile; entry names the tar entry at fault. */
export function bundleError(file: string, entry: string | undefined, what: string, details?: readonly string[]): FerryError {
  return new FerryError('BUNDLE_INVALID', `${file}${entry ? `: ${printable(entry)}` : ''}: ${what}`, {
    hint: 'the bundle is damaged or was altered; copy it again from the source and run `ferry verify` on it',
    ...(details ? { details } : {}),
  });
}

/** escapeControls writes control characters as \xNN, so text quoted from a bundle cannot rewrite the terminal. */
export function escapeControls(s: string, keep: RegExp = /$^/): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (keep.test(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** printable shows a name taken from a bundle: escaped and cut to a sane length. */
function printable(name: string): string {
  const shown = escapeControls(name);
  return shown.length > 300 ? `${shown.slice(0, 300)}…` : shown;
}

/** toFerryError turns system errors into user-facing ones; anything unrecognised stays a runtime error with its message. */
export function toFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  // Content that is not what its digest says (from a registry, an archive, a killed run's leftovers) is never kept.
  if (err instanceof Error && err.name === 'DigestMismatchError') {
    return new FerryError('RUNTIME', err.message, { hint: 'the source served content that does not match its digest, and none of it was kept; try again, and if it persists the source is damaged or tampered with', cause: err });
  }
  const e = err as NodeJS.ErrnoException;
  const where = e?.path ? ` (${e.path})` : '';
  switch (e?.code) {
    case 'ENOSPC':
      return new FerryError('DISK_FULL', `no space left on device${where}`, { hint: 'free some space or write to another disk; nothing partial was kept', cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FerryError('OUTPUT', `permission denied${where}`, { hint: 'choose a location you can write to', cause: err });
    case 'ENOENT':
      return new FerryError('RUNTIME', `no such file or directory${where}`, { hint: 'check the path', cause: err });
  }
  return new FerryError('RUNTIME', e?.message ?? String(err), { cause: err });
}
