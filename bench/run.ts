// `npm run bench`: build the corpus, compare pack/load/verify with their baselines and the registry paths with skopeo copy,
// print and save the figures, clean up.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missing } from '../test/helpers/tools.js';
import { ensureBase } from './base.js';
import { defer, interrupted, onSignals, undoAll } from './cleanup.js';
import { buildCorpus, IMAGES, LAYERS } from './corpus.js';
import { startTracked } from './daemon.js';
import { compareContainerd } from './containerd.js';
import { compareIncremental } from './incremental.js';
import { compareLoad } from './load.js';
import { exec } from './exec.js';
import { cacheDropped } from './measure.js';
import { debianMirror } from './mirror.js';
import { ensurePackageLayers } from './packages.js';
import { BENCH_CACHE, comparePack, FERRY } from './pack.js';
import { compareRegistry } from './registry.js';
import { compareServe } from './serve.js';
import { containerdRows, deltaRows, serveRows, incrementalNote, incrementalRows, registryRows, rows, table } from './report.js';
import { compareVerify } from './verify.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH_DIR = join(ROOT, '.bench');
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));

async function main(): Promise<void> {
  const why = missing(['dockerd', 'docker', 'debootstrap', 'apt-get', 'dpkg-deb', 'zstd', 'sha256sum', 'time', 'skopeo', 'docker-registry', 'containerd', 'ctr'], { root: true });
  if (why) throw new Error(`bench ${why}`);
  onSignals();
  const t0 = Date.now();
  const loadBefore = loadavg()[0]!;
  const cache = join(BENCH_DIR, 'cache');
  await mkdir(cache, { recursive: true });
  const mirror = await debianMirror();
  const base = await ensureBase(cache, mirror);
  const layers = await ensurePackageLayers(cache, base, LAYERS);

  const work = await mkdtemp(join(tmpdir(), 'ferry-bench-'));
  defer(`temp dir ${work}`, () => rm(work, { recursive: true, force: true }));
  defer(`layer cache ${BENCH_CACHE}`, () => rm(BENCH_CACHE, { recursive: true, force: true }));
  const { d: src } = await startTracked('bench-src');
  const tCorpus = Date.now();
  const built = await buildCorpus(src, base, layers);
  const images = built.tags;
  process.stderr.write(`bench: corpus of ${images.length} images built in ${((Date.now() - tCorpus) / 1000).toFixed(0)} s: ${images.join(' ')}\n`);

  const pack = await comparePack(src, images, work, RUNS);
  const load = await compareLoad(src, images, pack.bundle, work, RUNS);
  const verify = await compareVerify(pack.bundle, work, RUNS);
  const containerd = await compareContainerd(src, images, pack.bundle, work, RUNS);
  const registry = await compareRegistry(src, images, work, RUNS);
  const serve = await compareServe(images, registry.bundle, work, RUNS);
  // Last, because it rebuilds images in the source daemon (week 2 moves a tag).
  const incremental = await compareIncremental(src, built, base, layers, cache, work, RUNS);
  await undoAll();
  const loadAfter = loadavg()[0]!;

  const rs = [...rows(pack, load, verify), ...containerdRows(containerd), ...registryRows(pack, registry), ...serveRows(serve), ...incrementalRows(incremental), ...deltaRows(incremental)];
  const corpus = {
    images: IMAGES.map((i) => i.tag),
    packageLayers: layers.map((l) => ({ name: l.name, parent: l.parent ?? 'base', packages: l.packages.length })),
    uniqueLayers: pack.packed.layers,
    uniqueLayerTarBytes: pack.packed.uncompressedBytes,
    plainDockerSaveBytes: load.plainTarBytes,
    mirror,
  };
  const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;
  process.stdout.write(
    `\nferry bench: ${corpus.images.length} images, ${corpus.uniqueLayers} unique layers, ${mb(corpus.uniqueLayerTarBytes)} of layer tars ` +
      `(docker save tar ${mb(corpus.plainDockerSaveBytes)}); median of ${RUNS} alternating runs per side (ferry's RSS limit: highest run)\n\n` +
      `${table(rs)}\n\n` +
      `docker save alone (once, before the runs): first byte after ${pack.saveAlone.firstByteSeconds.toFixed(2)} s, done after ${pack.saveAlone.seconds.toFixed(2)} s\n` +
      `skopeo baselines: one \`skopeo copy\` per image (${images.length}) in one bash loop, timed as a whole; ferry takes every image in one call. ` +
      `"pack (daemon) … vs skopeo" reuses the pack runs above (skopeo's ${RUNS} runs come after them, not alternated). ` +
      `Registry R1 seeded once by skopeo from the daemon (v2s2, gzip; ${registry.seedSeconds.toFixed(1)} s, untimed); every push run into a fresh empty R2, ` +
      `whose manifest digests were checked equal to R1's after each run of either side\n` +
      `containerd: each run into a fresh private containerd 1.6 (overlayfs); ctr imports the plain docker save tar (${mb(containerd.plainTarBytes)}), ` +
      `ferry loads the bundle; both unpack, and every image ID was checked after each run\n` +
      `${incrementalNote(incremental)}\n` +
      `${cacheDropped ? 'Each timed run started from a dropped page cache (sync; drop_caches) with its input files read back in' : 'The page cache could not be dropped between runs (not root): figures depend on what ran before'}\n` +
      `1-minute load average before the bench: ${loadBefore.toFixed(1)} on ${availableParallelism()} CPUs` +
      `${loadBefore >= 1 ? ' (other work was running: figures are noisy)' : ''}\n`,
  );
  // Which ferry was measured: the commit and any uncommitted changes to its sources.
  const git = async (args: string[]): Promise<string> => (await exec('git', ['-C', ROOT, ...args]).catch(() => ({ stdout: '' }))).stdout.trim();
  const ferry = { commit: await git(['rev-parse', 'HEAD']), uncommitted: (await git(['status', '--porcelain', '--', 'src'])).split('\n').filter(Boolean), bin: FERRY };
  const results = {
    ferry,
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), memoryBytes: totalmem(), kernel: release(), node: process.version, loadAverage: { before: loadBefore, after: loadAfter } },
    statistic: 'median of the runs; ferry peak RSS limits use the highest run',
    pageCacheDroppedBeforeRuns: cacheDropped,
    runsPerSide: RUNS,
    corpus,
    rows: rs,
    raw: { pack, load, verify, containerd, registry, serve, incremental },
    seconds: (Date.now() - t0) / 1000,
  };
  await writeFile(join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`results written to ${join(BENCH_DIR, 'results.json')}; bench took ${results.seconds.toFixed(0)} s\n`);
}

main().catch(async (err: unknown) => {
  if (interrupted()) return;
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  await undoAll();
  process.exitCode = 1;
});
