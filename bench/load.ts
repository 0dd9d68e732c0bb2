// compareLoad: `docker load -i` of a plain save tar vs `ferry load`, each into an empty fresh dockerd, results checked.
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { dockerCli } from '../test/helpers/tools.js';
import { startTracked } from './daemon.js';
import { alternate, measure, vmHwmMb } from './measure.js';
import { FERRY, siteEnv } from './pack.js';

export interface LoadRun {
  seconds: number;
  /** The loading client's CPU time and peak RSS (docker CLI or ferry). */
  cpuSeconds: number;
  peakRssMb: number;
  /** The target dockerd's peak RSS over its (short) life. */
  dockerdPeakRssMb: number;
}

export interface LoadFigures {
  baseline: LoadRun[];
  ferry: LoadRun[];
  /** Size of the plain `docker save` tar that docker load reads. */
  plainTarBytes: number;
}

const imageIds = async (d: Dockerd, images: readonly string[]): Promise<string[]> =>
  (await d.docker(['image', 'inspect', '--format', '{{.Id}}', ...images])).trim().split('\n');

/** compareLoad keeps every target daemon until the last run, so deleting one's data never slows the next measurement. */
export async function compareLoad(src: Dockerd, images: readonly string[], bundle: string, work: string, runs: number): Promise<LoadFigures> {
  const plain = join(work, 'plain.tar');
  await src.docker(['save', '-o', plain, ...images]);
  const want = await imageIds(src, images);
  const out: LoadFigures = { baseline: [], ferry: [], plainTarBytes: (await stat(plain)).size };
  const stops: (() => Promise<void>)[] = [];

  const loadInto = async (name: string, input: string, cmd: string, args: (d: Dockerd) => string[], env?: (d: Dockerd) => NodeJS.ProcessEnv): Promise<LoadRun> => {
    const { d, stop } = await startTracked(name);
    stops.push(stop);
    const m = await measure(cmd, args(d), { inputs: [input], ...(env ? { env: env(d) } : {}) });
    const dockerdPeakRssMb = await vmHwmMb(d.pid);
    const got = await imageIds(d, images);
    if (got.join() !== want.join()) throw new Error(`${name}: after the load the images are ${got.join(', ')}, expected ${want.join(', ')}`);
    return { seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssMb: m.peakRssMb, dockerdPeakRssMb };
  };

  try {
    await alternate(
      runs,
      async (i) => {
        const b = await loadInto(`bench-docker-load-${i}`, plain, dockerCli()!, (d) => ['-H', d.host, 'load', '-q', '-i', plain]);
        out.baseline.push(b);
        process.stderr.write(`bench: load run ${i}: docker load -i  ${b.seconds.toFixed(2)} s\n`);
      },
      async (i) => {
        const f = await loadInto(`bench-ferry-load-${i}`, bundle, process.execPath, () => [FERRY, 'load', bundle], (d) => siteEnv(d.host, join(work, `site-cache-${i}`)));
        out.ferry.push(f);
        process.stderr.write(`bench: load run ${i}: ferry load      ${f.seconds.toFixed(2)} s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n`);
      },
    );
  } finally {
    for (const stop of stops) await stop();
    await rm(plain, { force: true });
    for (let i = 0; i < runs; i++) await rm(join(work, `site-cache-${i}`), { recursive: true, force: true });
  }
  return out;
}
