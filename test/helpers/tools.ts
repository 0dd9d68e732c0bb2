// Finding the real binaries the tests use; outside CI a missing one skips its suite with the reason, in CI it fails.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin'];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** dockerCli prefers Debian's client (same version as its dockerd) over any other on PATH. */
export function dockerCli(): string | undefined {
  try {
    accessSync('/usr/bin/docker', constants.X_OK);
    return '/usr/bin/docker';
  } catch {
    return which('docker');
  }
}

/**
 * missing returns undefined when every tool is present, else a reason to skip. In CI nothing may be skipped,
 * so there it throws instead.
 */
export function missing(tools: readonly string[], extra: { root?: boolean } = {}): string | undefined {
  const absent = tools.filter((t) => (t === 'docker' ? !dockerCli() : !which(t)));
  const reasons: string[] = [];
  if (absent.length) reasons.push(`not installed: ${absent.join(', ')} (install with: bash scripts/setup.sh)`);
  if (extra.root && process.getuid?.() !== 0) reasons.push('dockerd needs root');
  if (!reasons.length) return undefined;
  const reason = `skipped: ${reasons.join('; ')}`;
  if (process.env.CI) throw new Error(`CI must run every suite, but ${reason}`);
  process.stderr.write(`# ${reason}\n`);
  return reason;
}
