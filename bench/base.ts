// ensureBase: the cached Debian base, a `debootstrap --variant=minbase bookworm` tree stored as a tar plus its dpkg status.
import { mkdir, mkdtemp, rename, rm, stat, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bash, exec } from './exec.js';

export interface Base {
  /** The root filesystem as a tar, for `docker import`. */
  rootfsTar: string;
  /** The tree's /var/lib/dpkg/status: what the base already has, for resolving the package layers above it. */
  status: string;
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

/** removeTree unmounts anything debootstrap may have left mounted inside dir, then deletes it. */
export async function removeTree(dir: string): Promise<void> {
  await bash(`grep -o " ${dir}/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true`);
  await rm(dir, { recursive: true, force: true });
}

export async function ensureBase(cacheDir: string, mirror: string, suite = 'bookworm'): Promise<Base> {
  const dir = join(cacheDir, `base-${suite}-minbase`);
  const base: Base = { rootfsTar: join(dir, 'rootfs.tar'), status: join(dir, 'status') };
  if ((await exists(base.rootfsTar)) && (await exists(base.status))) return base;

  await mkdir(dir, { recursive: true });
  const tree = await mkdtemp(join(cacheDir, 'debootstrap-'));
  try {
    process.stderr.write(`bench: debootstrap --variant=minbase ${suite} from ${mirror} (once; cached in ${dir})\n`);
    await exec('debootstrap', ['--variant=minbase', suite, tree, mirror], { showStderr: true });
    // As Debian's own images do: no package cache or lists; empty /dev, /proc, /sys, /run (docker provides them).
    await bash('rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/debootstrap; chmod 755 "$1"', [tree]);
    await copyFile(join(tree, 'var/lib/dpkg/status'), `${base.status}.partial`);
    await exec('tar', ['--numeric-owner', '--exclude=./dev/*', '--exclude=./proc/*', '--exclude=./sys/*', '--exclude=./run/*', '-C', tree, '-cf', `${base.rootfsTar}.partial`, '.']);
    await rename(`${base.status}.partial`, base.status);
    await rename(`${base.rootfsTar}.partial`, base.rootfsTar);
  } finally {
    await removeTree(tree);
  }
  return base;
}
