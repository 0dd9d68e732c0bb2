// ensurePackageLayers: real Debian package layers (apt-resolved, `apt-get download`, `dpkg-deb -x`), cached as tars.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rename, stat, writeFile, chmod } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Base } from './base.js';
import { removeTree } from './base.js';
import { bash, exec } from './exec.js';

export interface LayerSpec {
  name: string;
  /** The package layer this one sits on; none means straight on the base. */
  parent?: string;
  /** What a Dockerfile would `apt-get install --no-install-recommends`. */
  packages: string[];
}

export interface PackageLayer {
  name: string;
  parent?: string;
  /** A docker build context holding only rootfs.tar (the unpacked packages, for `ADD rootfs.tar /`). */
  context: string;
  /** name=version of every package in this layer. */
  packages: string[];
}

interface Pkg {
  name: string;
  version: string;
  arch: string;
}

const exists = (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

function chain(specs: readonly LayerSpec[], spec: LayerSpec): LayerSpec[] {
  const out: LayerSpec[] = [];
  for (let s: LayerSpec | undefined = spec; s; s = specs.find((x) => x.name === s!.parent)) out.unshift(s);
  return out;
}

/** resolve asks apt (simulating, against the base's dpkg status) which packages installing `wanted` brings in. */
async function resolve(status: string, wanted: readonly string[]): Promise<Pkg[]> {
  if (wanted.length === 0) return [];
  const { stdout } = await exec('apt-get', [
    '-s', '-q', '-o', `Dir::State::status=${status}`, '-o', 'APT::Install-Recommends=false', '-o', 'APT::Install-Suggests=false',
    '-o', 'Debug::NoLocking=1', 'install', ...wanted,
  ]);
  const pkgs: Pkg[] = [];
  for (const m of stdout.matchAll(/^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[(\S+)\]\)/gm)) pkgs.push({ name: m[1]!, version: m[2]!, arch: m[3]! });
  return pkgs;
}

const debName = (p: Pkg): string => `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;

/** download fetches the .debs not yet in debsDir, through apt's own sources. */
async function download(debsDir: string, pkgs: readonly Pkg[]): Promise<void> {
  const have = new Set(await readdir(debsDir));
  const need = pkgs.filter((p) => !have.has(debName(p)));
  if (need.length === 0) return;
  process.stderr.write(`bench: apt-get download ${need.length} package(s) into ${debsDir}\n`);
  await exec('apt-get', ['download', '-q', ...need.map((p) => `${p.name}=${p.version}`)], { cwd: debsDir });
  const now = new Set(await readdir(debsDir));
  const absent = need.filter((p) => !now.has(debName(p)));
  if (absent.length) throw new Error(`apt-get download did not produce ${absent.map(debName).join(', ')}`);
}

/**
 * unpack extracts the debs into one tree, folds /bin, /lib… into /usr (bookworm is merged-usr), and tars it;
 * `extra` may add files (dpkg's records of an upgrade) to the tree before it is tarred.
 */
export async function unpack(cacheDir: string, debs: readonly string[], tarPath: string, extra?: (tree: string) => Promise<void>): Promise<void> {
  const tree = await mkdtemp(join(cacheDir, 'unpack-'));
  try {
    await chmod(tree, 0o755);
    for (const deb of debs) await exec('dpkg-deb', ['-x', deb, tree]);
    await bash(
      'cd "$1"; for d in bin sbin lib lib32 lib64 libx32; do if [ -d "$d" ] && [ ! -L "$d" ]; then mkdir -p "usr/$d"; cp -a "$d/." "usr/$d/"; rm -rf "$d"; fi; done',
      [tree],
    );
    if (extra) await extra(tree);
    await exec('tar', ['--numeric-owner', '-C', tree, '-cf', `${tarPath}.partial`, '.']);
    await rename(`${tarPath}.partial`, tarPath);
  } finally {
    await removeTree(tree);
  }
}

export async function ensurePackageLayers(cacheDir: string, base: Base, specs: readonly LayerSpec[]): Promise<PackageLayer[]> {
  const debsDir = join(cacheDir, 'debs');
  const layersDir = join(cacheDir, 'layers');
  await mkdir(debsDir, { recursive: true });
  await mkdir(layersDir, { recursive: true });
  const baseKey = createHash('sha256').update(await readFile(base.status)).digest('hex');
  const out: PackageLayer[] = [];
  for (const spec of specs) {
    const specChain = chain(specs, spec);
    const key = createHash('sha256').update(JSON.stringify({ baseKey, specChain })).digest('hex').slice(0, 12);
    const context = join(layersDir, `${spec.name}-${key}`);
    const listFile = `${context}.packages`;
    if (!((await exists(join(context, 'rootfs.tar'))) && (await exists(listFile)))) {
      const below = await resolve(base.status, specChain.slice(0, -1).flatMap((s) => s.packages));
      const all = await resolve(base.status, specChain.flatMap((s) => s.packages));
      const lower = new Set(below.map((p) => `${p.name}=${p.version}`));
      const mine = all.filter((p) => !lower.has(`${p.name}=${p.version}`));
      await download(debsDir, mine);
      await mkdir(context, { recursive: true });
      process.stderr.write(`bench: unpacking ${mine.length} package(s) into layer ${spec.name}\n`);
      await unpack(cacheDir, mine.map((p) => join(debsDir, debName(p))), join(context, 'rootfs.tar'));
      await writeFile(listFile, mine.map((p) => `${p.name}=${p.version}\n`).join(''));
    }
    const packages = (await readFile(listFile, 'utf8')).split('\n').filter(Boolean);
    out.push({ name: spec.name, ...(spec.parent ? { parent: spec.parent } : {}), context, packages });
  }
  // Layers cached for an older corpus definition are dropped (their .debs stay).
  const current = new Set(out.flatMap((l) => [basename(l.context), `${basename(l.context)}.packages`]));
  for (const f of await readdir(layersDir)) if (!current.has(f)) await removeTree(join(layersDir, f));
  return out;
}
