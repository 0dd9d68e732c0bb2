// comparePack: `docker save | zstd -3 -T2` against `ferry pack` from the same daemon, alternating, each run kept.
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { FERRY_BIN } from '../test/helpers/ferry.js';
import { dockerCli } from '../test/helpers/tools.js';
import { exec } from './exec.js';
import { alternate, measure, type Measured } from './measure.js';

export interface PackRun {
  seconds: number;
  cpuSeconds: number;
  bytes: number;
  peakRssMb: number;
}

export interface PackFigures {
  baseline: PackRun[];
  ferry: PackRun[];
  /** The last ferry bundle, kept for the load and verify comparisons. */
  bundle: string;
  /** One plain `docker save` to nowhere before the runs (also a warm-up): when its first byte came, when it ended. */
  saveAlone: { firstByteSeconds: number; seconds: number };
  /** What ferry said it packed (from --json). */
  packed: { images: number; layers: number; bytes: number; uncompressedBytes: number };
}

/** The ferry launcher the bench runs: bin/ferry, or BENCH_FERRY_BIN (another build, to compare two with the same corpus). */
export const FERRY = process.env.BENCH_FERRY_BIN || FERRY_BIN;

/** The bench's layer cache (what ferry keeps of the layers it shipped), removed when the bench ends. */
export const BENCH_CACHE = join(tmpdir(), `ferry-bench-cache-${process.pid}`);

export function ferryEnv(dockerHost?: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  env.FERRY_CACHE_DIR ??= BENCH_CACHE;
  delete env.FORCE_COLOR;
  if (dockerHost) env.DOCKER_HOST = dockerHost;
  return env;
}

/**
 * siteEnv is ferry's environment at a site: its own layer cache (what a load into a Docker daemon keeps), so a load
 * pays for filling it and never finds the packing side's cache.
 */
export function siteEnv(dockerHost: string, cacheDir: string): NodeJS.ProcessEnv {
  return { ...ferryEnv(dockerHost), FERRY_CACHE_DIR: cacheDir };
}

const run = async (m: Measured, file: string): Promise<PackRun> => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, bytes: (await stat(file)).size, peakRssMb: m.peakRssMb });

/** saveAlone times `docker save` into nothing: the daemon prepares the whole export before its first byte. */
async function saveAlone(host: string, images: readonly string[]): Promise<PackFigures['saveAlone']> {
  await exec('sync', []);
  const t0 = process.hrtime.bigint();
  const since = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  const p = spawn(dockerCli()!, ['-H', host, 'save', ...images], { stdio: ['ignore', 'pipe', 'inherit'] });
  let firstByteSeconds: number | undefined;
  p.stdout.on('data', () => (firstByteSeconds ??= since()));
  const code = await new Promise<number | null>((resolve, reject) => p.on('error', reject).on('close', resolve));
  if (code !== 0 || firstByteSeconds === undefined) throw new Error(`docker save exited ${code}`);
  return { firstByteSeconds, seconds: since() };
}

export async function comparePack(src: Dockerd, images: readonly string[], work: string, runs: number): Promise<PackFigures> {
  const zst = join(work, 'save.tar.zst');
  const bundle = join(work, 'bench.ferry.tar');
  const alone = await saveAlone(src.host, images);
  process.stderr.write(`bench: docker save alone: first byte after ${alone.firstByteSeconds.toFixed(2)} s, done after ${alone.seconds.toFixed(2)} s\n`);
  const out: PackFigures = { baseline: [], ferry: [], bundle, saveAlone: alone, packed: { images: 0, layers: 0, bytes: 0, uncompressedBytes: 0 } };
  await alternate(
    runs,
    async (i) => {
      await rm(zst, { force: true });
      const b = await measure('bash', ['-c', 'set -o pipefail; "$1" -H "$2" save "${@:4}" | zstd -3 -T2 -q -f -o "$3"', 'bash', dockerCli()!, src.host, zst, ...images]);
      out.baseline.push(await run(b, zst));
      process.stderr.write(`bench: pack run ${i}: docker save | zstd -3 -T2  ${b.seconds.toFixed(2)} s\n`);
    },
    async (i) => {
      await rm(bundle, { force: true });
      const f = await measure(process.execPath, [FERRY, 'pack', ...images, '-o', bundle, '--json'], { env: ferryEnv(src.host) });
      out.ferry.push(await run(f, bundle));
      const j = JSON.parse(f.stdout) as { images: unknown[]; layers: number; bytes: number; uncompressedBytes: number };
      out.packed = { images: j.images.length, layers: j.layers, bytes: j.bytes, uncompressedBytes: j.uncompressedBytes };
      process.stderr.write(`bench: pack run ${i}: ferry pack                  ${f.seconds.toFixed(2)} s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n`);
    },
  );
  await rm(zst, { force: true });
  return out;
}
