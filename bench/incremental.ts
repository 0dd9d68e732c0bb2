// compareIncremental: the two-week sync (issue 5, point 7). A site gets week 1 in full; week 2 is packed thin against
// the site's inventory and sized against the ideal (its new layers, each `zstd -3` alone) and a full `docker save | zstd`.
import { spawn } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { build } from '../test/helpers/dockerd.js';
import { dockerCli } from '../test/helpers/tools.js';
import type { Base } from './base.js';
import { appDockerfile, appFiles, IMAGES, type Corpus, type ImageSpec } from './corpus.js';
import { startTracked } from './daemon.js';
import { compareDeltas, type DeltaFigures } from './deltas.js';
import { bash, exec } from './exec.js';
import { alternate, measure, median, type Measured } from './measure.js';
import { FERRY, ferryEnv, siteEnv, type PackRun } from './pack.js';
import { unpack, type PackageLayer } from './packages.js';
import { shapeOf, syntheticSite, type Inventory, type SiteShape } from './synthetic-site.js';

/** Week 1: the base, a runtime, an application on a deeper stack, and a JRE. */
const WEEK1 = ['bench/debian:bookworm', 'bench/python:3.11', 'bench/pyapp:1.0', 'bench/jre:17'];
/** Rebuilt in week 2 with an "apt-get upgrade" layer on top, under the same tag (as a weekly base refresh does). */
const UPGRADED = 'bench/python:3.11';
/** The python layer's packages that the upgrade layer replaces: an OpenSSL, Python, SQLite, Expat and Kerberos round. */
const UPGRADE_PACKAGES = [
  'libssl3', 'openssl', 'libpython3.11-minimal', 'python3.11-minimal', 'libpython3.11-stdlib', 'python3.11',
  'libsqlite3-0', 'libexpat1', 'libkrb5-3', 'libgssapi-krb5-2', 'libk5crypto3', 'libkrb5support0',
];
/** pyapp 1.0's application layer rebuilt with a few modules changed, on the same package layers. */
const APP_FROM = 'bench/pyapp:1.0';
const APP_TO = 'bench/pyapp:1.2';
const APP_CHANGED_MODULES = 8;
/** In the corpus but not in week 1: new to the site, on the same base. */
const NEW = 'bench/builder:12';
const WEEK2 = ['bench/debian:bookworm', UPGRADED, APP_TO, 'bench/jre:17', NEW];
/** The issue's planning target: a site of this many images. */
const SITE_IMAGES = 1000;

export interface LayerCost {
  diffId: string;
  image: string;
  tarBytes: number;
  zstdBytes: number;
}

export interface ThinTotals {
  images: number;
  layers: number;
  bytes: number;
  uncompressedBytes: number;
  reliesOn: number;
  /** Uncompressed bytes of the layers left out. */
  reliedBytes: number;
}

export interface IncrementalFigures {
  week1: { images: string[]; bundleBytes: number; loadSeconds: number };
  week2: { images: string[]; upgradedPackages: string[]; upgradeLayerTarBytes: number; changedAppModules: number };
  /** `ferry inventory` of the site after week 1. */
  inventory: { seconds: number; fileBytes: number } & SiteShape;
  /** ferry pack WEEK2 --have site.inventory.json, and `docker save WEEK2 | zstd -3 -T2`, alternating. */
  thin: PackRun[];
  full: PackRun[];
  /** The thin bundle's totals as `ferry inspect --json` gives them: layers held, and those relied on at the site. */
  thinTotals: ThinTotals;
  /** Layers held by the thin bundle (from its ferry.json) that the site already had: each one is waste. */
  thinHeld: { layers: number; alreadyAtSite: number; missingNew: number };
  /** Week-2 layers the site lacks, each compressed alone with `zstd -3`: the least a thin bundle can carry. */
  ideal: { bytes: number; tarBytes: number; layers: LayerCost[] };
  /** ferry load of the thin bundle into the site; image IDs checked equal to the source's. */
  thinLoad: { seconds: number; cpuSeconds: number; peakRssMb: number };
  planning: PlanningFigures;
  /** Week 2's rebuilt images packed with deltas and with whole layers (compareDeltas). */
  deltas: DeltaFigures;
}

export interface PlanningFigures {
  /** The synthetic site: the real site's inventory grown to SITE_IMAGES images. */
  site: SiteShape & { fileBytes: number };
  /** The plan step of `ferry pack --have … --dry-run` (reading and checking the inventory, planning), between its output lines. */
  planSeconds: { small: number[]; big: number[] };
  /** The whole dry run: start-up, resolving the images in the daemon, planning. */
  dryRunSeconds: { small: number[]; big: number[] };
  /** Layers the dry run said would travel (checked equal to the ideal's new layers, for both inventories). */
  travel: number;
}

const say = (s: string): boolean => process.stderr.write(`bench: incremental: ${s}\n`);
const ferryArgs = (args: readonly string[]): string[] => [FERRY, ...args];

async function ferryRun(args: readonly string[], host?: string): Promise<string> {
  return (await exec(process.execPath, ferryArgs(args), { env: ferryEnv(host) })).stdout;
}

function spec(tag: string): ImageSpec {
  const s = IMAGES.find((i) => i.tag === tag);
  if (!s) throw new Error(`${tag} is not in the bench corpus (bench/corpus.ts IMAGES)`);
  return s;
}

async function imageIds(d: Dockerd, images: readonly string[]): Promise<string[]> {
  return (await d.docker(['image', 'inspect', '--format', '{{.Id}}', ...images])).trim().split('\n');
}

async function diffIds(d: Dockerd, image: string): Promise<string[]> {
  return JSON.parse(await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', image])) as string[];
}

/** upgradeLayer builds the "apt-get upgrade" context: the packages re-extracted plus dpkg's records of installing them. */
async function upgradeLayer(work: string, cacheDir: string, base: Base, python: PackageLayer): Promise<{ context: string; packages: string[] }> {
  const debsDir = join(cacheDir, 'debs');
  const debs = await readdir(debsDir);
  const picked: { pkg: string; deb: string }[] = [];
  for (const name of UPGRADE_PACKAGES) {
    const pkg = python.packages.find((p) => p.startsWith(`${name}=`));
    if (!pkg) throw new Error(`upgrade package ${name} is not in the python layer`);
    const prefix = `${name}_${pkg.slice(name.length + 1).replace(/:/g, '%3a')}_`;
    const deb = debs.find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    if (!deb) throw new Error(`no cached .deb for ${pkg} in ${debsDir}`);
    picked.push({ pkg, deb: join(debsDir, deb) });
  }
  const context = join(work, 'upgrade-context');
  await mkdir(context, { recursive: true });
  // The bench mirror has no newer versions than the corpus was built from, so the "new" packages are the same
  // versions re-extracted: the files an upgrade rewrites, with their real sizes and compressibility.
  await unpack(work, picked.map((p) => p.deb), join(context, 'rootfs.tar'), async (tree) => {
    await mkdir(join(tree, 'var/lib/dpkg/info'), { recursive: true });
    await mkdir(join(tree, 'var/log/apt'), { recursive: true });
    const status = join(tree, 'var/lib/dpkg/status');
    await writeFile(status, await readFile(base.status));
    for (const { pkg, deb } of picked) {
      const name = pkg.split('=')[0]!;
      const control = (await exec('dpkg-deb', ['-f', deb])).stdout.replace(/^(Package: .*)$/m, '$1\nStatus: install ok installed');
      await appendFile(status, `\n${control.trimEnd()}\n`);
      await bash('dpkg-deb --ctrl-tarfile "$1" | tar -xO ./md5sums > "$2" || true', [deb, join(tree, 'var/lib/dpkg/info', `${name}.md5sums`)]);
      await bash('dpkg-deb -c "$1" | awk \'{ p = $6; sub(/^\\.\\/?/, "/", p); sub(/\\/$/, "", p); print (p == "" ? "/." : p) }\' > "$2"', [deb, join(tree, 'var/lib/dpkg/info', `${name}.list`)]);
    }
    const when = new Date().toISOString().slice(0, 19).replace('T', ' ');
    const arch = (deb: string): string => /_([^_]+)\.deb$/.exec(deb)![1]!;
    const log = picked.map(({ pkg, deb }) => `${when} upgrade ${pkg.replace('=', `:${arch(deb)} `)} ${pkg.split('=')[1]}`).join('\n');
    await writeFile(join(tree, 'var/log/dpkg.log'), `${log}\n`);
    await writeFile(join(tree, 'var/log/apt/history.log'), `\nStart-Date: ${when}\nCommandline: apt-get upgrade -y\nUpgrade: ${picked.map((p) => p.pkg).join(', ')}\nEnd-Date: ${when}\n`);
  });
  return { context, packages: picked.map((p) => p.pkg) };
}

/** changedApp is pyapp 1.0's source tree with a few modules edited and the version bumped. */
function changedApp(version: string): Record<string, string> {
  const files = appFiles(spec(APP_FROM).app!);
  const modules = Object.keys(files).filter((f) => f.endsWith('.py')).sort();
  const step = Math.floor(modules.length / APP_CHANGED_MODULES);
  for (let i = 0; i < APP_CHANGED_MODULES; i++) {
    const m = modules[i * step]!;
    files[m] = `${files[m]!}\ndef health_${i}(request):\n    """Added in ${version}."""\n    return {"ok": True, "version": "${version}"}\n`;
  }
  files['srv/app/VERSION'] = `${version}\n`;
  return files;
}

/** idealCost compresses each week-2 layer the site lacks alone, from a plain `docker save` (each <id>/layer.tar hashed to its diffID). */
async function idealCost(src: Dockerd, images: readonly string[], have: ReadonlySet<string>, work: string): Promise<IncrementalFigures['ideal']> {
  const dir = join(work, 'save');
  await mkdir(dir, { recursive: true });
  const plain = join(work, 'week2-plain.tar');
  try {
    await src.docker(['save', '-o', plain, ...images]);
    await exec('tar', ['-C', dir, '-xf', plain, 'manifest.json']);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
    const ids = await imageIds(src, images);
    const wanted = new Map<string, { entry: string; image: string }>();
    for (const [i, image] of images.entries()) {
      const m = manifest.find((e) => e.Config.replace(/\.json$/, '') === ids[i]!.replace(/^sha256:/, ''));
      if (!m) throw new Error(`docker save's manifest.json has no entry for ${image}`);
      const layers = await diffIds(src, image);
      if (layers.length !== m.Layers.length) throw new Error(`${image}: ${layers.length} diffIDs but ${m.Layers.length} layers in docker save`);
      for (const [j, d] of layers.entries()) if (!have.has(d) && !wanted.has(d)) wanted.set(d, { entry: m.Layers[j]!, image });
    }
    await exec('tar', ['-C', dir, '-xf', plain, ...[...wanted.values()].map((w) => w.entry)]);
    await rm(plain, { force: true });
    const layers: LayerCost[] = [];
    for (const [diffId, { entry, image }] of wanted) {
      const file = join(dir, entry);
      const sum = (await exec('sha256sum', [file])).stdout.split(/\s+/)[0];
      if (`sha256:${sum}` !== diffId) throw new Error(`${entry} hashes to sha256:${sum}, not ${diffId}`);
      const zstdBytes = Number((await bash('zstd -3 -q -c "$1" | wc -c', [file])).stdout.trim());
      layers.push({ diffId, image, tarBytes: (await stat(file)).size, zstdBytes });
      await rm(file, { force: true });
    }
    return { bytes: layers.reduce((n, l) => n + l.zstdBytes, 0), tarBytes: layers.reduce((n, l) => n + l.tarBytes, 0), layers };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(plain, { force: true });
  }
}

/** heldLayers reads which layers the thin bundle carries, from its ferry.json. */
async function heldLayers(bundle: string): Promise<string[]> {
  const index = JSON.parse((await exec('tar', ['-xOf', bundle, 'ferry.json'])).stdout) as { blobs: { diffId?: string }[] };
  return index.blobs.flatMap((b) => (b.diffId ? [b.diffId] : []));
}

const packRun = async (m: Measured, file: string): Promise<PackRun> => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, bytes: (await stat(file)).size, peakRssMb: m.peakRssMb });

interface Timed {
  seconds: number;
  /** When each output line appeared, in seconds from the start (Node writes pipes synchronously on Linux). */
  lines: { stream: 'stdout' | 'stderr'; text: string; at: number }[];
}

/** timedLines runs ferry with plain progress on a pipe and notes when each line of its output arrives. */
function timedLines(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const since = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
    const p = spawn(process.execPath, ferryArgs(args), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Timed['lines'] = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = '';
      p[stream].on('data', (d: Buffer) => {
        const at = since();
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop()!;
        for (const text of parts) lines.push({ stream, text, at });
      });
    }
    p.on('error', reject);
    p.on('close', (code) => {
      const seconds = since();
      if (code !== 0) reject(new Error(`ferry ${args.slice(0, 3).join(' ')} … exited ${code}: ${lines.map((l) => l.text).join('\n').slice(-2000)}`));
      else resolve({ seconds, lines });
    });
  });
}

/** planStep is the time from the plan step's title to the dry run's first answer line: reading the --have files and planning. */
function planStep(t: Timed): number {
  const start = t.lines.find((l) => l.stream === 'stderr' && l.text.startsWith('Plan against'));
  const answer = t.lines.find((l) => l.stream === 'stdout');
  if (!start || !answer) throw new Error(`no plan step in ferry pack --dry-run's output:\n${t.lines.map((l) => l.text).join('\n')}`);
  return answer.at - start.at;
}

/** planning times dry runs against the site's own inventory and against a 1,000-image site that holds it. */
async function planning(src: Dockerd, small: string, work: string, runs: number, newLayers: number): Promise<PlanningFigures> {
  const real = JSON.parse(await readFile(small, 'utf8')) as Inventory;
  const big = join(work, `site-${SITE_IMAGES}.inventory.json`);
  await writeFile(big, `${JSON.stringify(syntheticSite(real, SITE_IMAGES))}\n`);
  const site = { ...shapeOf(JSON.parse(await readFile(big, 'utf8')) as Inventory), fileBytes: (await stat(big)).size };
  const env = ferryEnv(src.host);
  const figures: PlanningFigures = { site, planSeconds: { small: [], big: [] }, dryRunSeconds: { small: [], big: [] }, travel: newLayers };
  const side = (which: 'small' | 'big', inv: string) => async (): Promise<void> => {
    const t = await timedLines(['pack', ...WEEK2, '--have', inv, '--dry-run'], env);
    const said = t.lines.map((l) => /^(\d+) layer\(s\) would travel/.exec(l.text)).find(Boolean);
    if (Number(said?.[1]) !== newLayers) throw new Error(`ferry pack --dry-run against ${inv} says ${said?.[1] ?? 'no number of'} layers would travel, not ${newLayers}`);
    figures.planSeconds[which].push(planStep(t));
    figures.dryRunSeconds[which].push(t.seconds);
  };
  // Dry runs are short and the figure is read against a fixed limit, so a few runs even when BENCH_RUNS=1.
  await alternate(Math.max(runs, 5), side('small', small), side('big', big));
  say(`plan step with the site inventory ${median(figures.planSeconds.small).toFixed(3)} s, with ${site.images} images/${site.layers} layers ${median(figures.planSeconds.big).toFixed(3)} s`);
  return figures;
}

export async function compareIncremental(src: Dockerd, corpus: Corpus, base: Base, layers: readonly PackageLayer[], cacheDir: string, work: string, runs: number): Promise<IncrementalFigures> {
  for (const t of [...WEEK1, ...WEEK2.filter((t) => t !== APP_TO)]) if (!corpus.tags.includes(t)) throw new Error(`${t} was not built by buildCorpus`);
  const dir = join(work, 'incremental');
  await mkdir(dir, { recursive: true });
  const { d: site, stop } = await startTracked('bench-site');
  try {
    // Week 1, in full, into an empty site.
    const week1 = join(dir, 'week1.ferry.tar');
    await ferryRun(['pack', ...WEEK1, '-o', week1, '--quiet'], src.host);
    const t0 = Date.now();
    await exec(process.execPath, ferryArgs(['load', week1, '--quiet']), { env: siteEnv(site.host, join(dir, 'site-cache')) });
    const loadSeconds = (Date.now() - t0) / 1000;
    const want1 = await imageIds(src, WEEK1);
    if ((await imageIds(site, WEEK1)).join() !== want1.join()) throw new Error('week 1 did not arrive at the site with the source image IDs');
    const inventoryFile = join(dir, 'site.inventory.json');
    const inv = await measure(process.execPath, ferryArgs(['inventory', '-o', inventoryFile, '--quiet']), { env: ferryEnv(site.host) });
    const inventory = { seconds: inv.seconds, fileBytes: (await stat(inventoryFile)).size, ...shapeOf(JSON.parse(await readFile(inventoryFile, 'utf8')) as Inventory) };
    say(`week 1 (${WEEK1.length} images, ${((await stat(week1)).size / 1e6).toFixed(0)} MB) loaded; site inventory: ${inventory.images} images, ${inventory.layers} layers`);
    const atSite = new Set((await Promise.all(WEEK1.map((i) => diffIds(src, i)))).flat());

    // Week 2 in the source daemon: an upgrade layer, an application rebuild, the rest as it was plus one new image.
    const python = layers.find((l) => l.name === spec(UPGRADED).top);
    if (!python) throw new Error(`no package layer ${spec(UPGRADED).top}`);
    const upgrade = await upgradeLayer(dir, cacheDir, base, python);
    const upgradeLayerTarBytes = (await stat(join(upgrade.context, 'rootfs.tar'))).size;
    await src.docker(['build', '-q', '-t', UPGRADED, '-f', '-', upgrade.context], { input: Buffer.from(`FROM ${UPGRADED}\nADD rootfs.tar /\n`) });
    await rm(upgrade.context, { recursive: true, force: true });
    const appSpec = spec(APP_FROM);
    await build(src, APP_TO, appDockerfile(corpus.layerImages.get(appSpec.top!)!, appSpec), changedApp(APP_TO.split(':')[1]!));
    say(`week 2 built: ${UPGRADED} + upgrade layer (${upgrade.packages.length} packages, ${(upgradeLayerTarBytes / 1e6).toFixed(0)} MB tar), ${APP_TO}, unchanged, new ${NEW}`);

    // Week 2 thin against the inventory, and in full as docker save | zstd.
    const thinFile = join(dir, 'week2.ferry.tar');
    const fullFile = join(dir, 'week2.tar.zst');
    const thin: PackRun[] = [];
    const full: PackRun[] = [];
    await alternate(
      runs,
      async (i) => {
        await rm(thinFile, { force: true });
        // Whole layers, as before deltas: the figure against the ideal keeps its meaning (deltas: compareDeltas).
        const m = await measure(process.execPath, ferryArgs(['pack', ...WEEK2, '--have', inventoryFile, '-o', thinFile, '--json', '--no-delta']), { env: ferryEnv(src.host) });
        thin.push(await packRun(m, thinFile));
        say(`run ${i}: ferry pack --have  ${m.seconds.toFixed(2)} s, ${(thin.at(-1)!.bytes / 1e6).toFixed(1)} MB`);
      },
      async (i) => {
        await rm(fullFile, { force: true });
        const m = await measure('bash', ['-c', 'set -o pipefail; "$1" -H "$2" save "${@:4}" | zstd -3 -T2 -q -f -o "$3"', 'bash', dockerCli()!, src.host, fullFile, ...WEEK2]);
        full.push(await packRun(m, fullFile));
        say(`run ${i}: docker save | zstd -3  ${m.seconds.toFixed(2)} s, ${(full.at(-1)!.bytes / 1e6).toFixed(1)} MB`);
      },
    );
    await rm(fullFile, { force: true });
    const thinTotals = (JSON.parse(await ferryRun(['inspect', thinFile, '--json'])) as { totals: ThinTotals }).totals;
    const held = await heldLayers(thinFile);
    const ideal = await idealCost(src, WEEK2, atSite, dir);
    const heldSet = new Set(held);
    const thinHeld = { layers: held.length, alreadyAtSite: held.filter((d) => atSite.has(d)).length, missingNew: ideal.layers.filter((l) => !heldSet.has(l.diffId)).length };
    if (thinHeld.missingNew) throw new Error(`the thin bundle lacks ${thinHeld.missingNew} layer(s) the site does not have`);

    // The thin bundle must bring the site to exactly the source's week 2.
    const load = await measure(process.execPath, ferryArgs(['load', thinFile, '--quiet']), { env: siteEnv(site.host, join(dir, 'site-cache')) });
    const want2 = await imageIds(src, WEEK2);
    const got2 = await imageIds(site, WEEK2);
    if (got2.join() !== want2.join()) throw new Error(`after the thin load the site has ${got2.join(', ')}, the source ${want2.join(', ')}`);
    say(`thin bundle loaded in ${load.seconds.toFixed(2)} s; image IDs at the site equal the source's`);

    const plan = await planning(src, inventoryFile, dir, runs, ideal.layers.length);
    const deltas = await compareDeltas(src, WEEK2.filter((t) => t !== NEW), week1, inventoryFile, dir, runs);
    return {
      week1: { images: WEEK1, bundleBytes: (await stat(week1)).size, loadSeconds },
      week2: { images: WEEK2, upgradedPackages: upgrade.packages, upgradeLayerTarBytes, changedAppModules: APP_CHANGED_MODULES },
      inventory,
      thin,
      full,
      thinTotals,
      thinHeld,
      ideal,
      thinLoad: { seconds: load.seconds, cpuSeconds: load.cpuSeconds, peakRssMb: load.peakRssMb },
      planning: plan,
      deltas,
    };
  } finally {
    await stop();
    await rm(dir, { recursive: true, force: true });
  }
}
