// Platforms as docker and skopeo spell them: os/arch[/variant]. Pure.

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const PART = /^[a-z0-9_.-]+$/;

export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new TypeError(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** hostPlatform is the platform `docker pull` would choose on this machine. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  const architecture = arch[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  if (architecture === 'arm64') return { os, architecture, variant: 'v8' };
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string }).arm_version;
    return { os, architecture, variant: `v${v ?? '7'}` };
  }
  return { os, architecture };
}

/** normalised spells a platform as containerd compares it: arm64 is arm64/v8, arm is arm/v7 unless said. */
function normalised(p: Platform): Platform {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === '8')) return { ...p, variant: 'v8' };
  if (p.architecture === 'arm' && p.variant === undefined) return { ...p, variant: 'v7' };
  return p;
}

/** platformMatches says an image built for `have` is what someone asking for `want` gets (variants compared as containerd does). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalised(want);
  const h = normalised(have);
  return w.os === h.os && w.architecture === h.architecture && (w.variant === undefined || w.variant === h.variant);
}
