// compareContainerd: `ctr -n k8s.io images import` of a plain `docker save` tar vs `ferry load --containerd` of the
// bundle, each into a fresh, empty private containerd (both unpack into overlayfs); image IDs checked after each run.
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { startContainerd, type Containerd } from '../test/helpers/containerd.js';
import { which } from '../test/helpers/tools.js';
import { defer } from './cleanup.js';
import { alternate, measure, vmHwmMb } from './measure.js';
import { FERRY } from './pack.js';

export interface ContainerdRun {
  seconds: number;
  cpuSeconds: number;
  /** The loading client's peak RSS (ctr or ferry). */
  peakRssMb: number;
  /** The target containerd's peak RSS over its (short) life. */
  containerdPeakRssMb: number;
}

export interface ContainerdFigures {
  baseline: ContainerdRun[];
  ferry: ContainerdRun[];
  plainTarBytes: number;
}

const NAMESPACE = 'k8s.io';

/** The config digest (image ID) of each image, as containerd's records and content store say. */
async function imageIds(ctd: Containerd, images: readonly string[]): Promise<string[]> {
  const listed = await ctd.ctr(['-n', NAMESPACE, 'images', 'ls']);
  const out: string[] = [];
  for (const name of images) {
    const full = name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
    const line = listed.split('\n').find((l) => l.startsWith(`${full} `));
    const manifest = line?.split(/\s+/)[2];
    if (!manifest) throw new Error(`containerd has no image ${full}:\n${listed}`);
    out.push((JSON.parse(await ctd.ctr(['-n', NAMESPACE, 'content', 'get', manifest])) as { config: { digest: string } }).config.digest);
  }
  return out;
}

export async function compareContainerd(src: Dockerd, images: readonly string[], bundle: string, work: string, runs: number): Promise<ContainerdFigures> {
  const plain = join(work, 'plain-ctr.tar');
  await src.docker(['save', '-o', plain, ...images]);
  const want = (await src.docker(['image', 'inspect', '--format', '{{.Id}}', ...images])).trim().split('\n');
  const out: ContainerdFigures = { baseline: [], ferry: [], plainTarBytes: (await stat(plain)).size };
  const stops: (() => Promise<void>)[] = [];

  const loadInto = async (name: string, input: string, cmd: string, args: (c: Containerd) => string[]): Promise<ContainerdRun> => {
    const ctd = await startContainerd(name);
    stops.push(defer(`containerd ${name} (pid ${ctd.pid})`, () => ctd.stop()));
    const m = await measure(cmd, args(ctd), { inputs: [input] });
    const containerdPeakRssMb = await vmHwmMb(ctd.pid);
    const got = await imageIds(ctd, images);
    if (got.join() !== want.join()) throw new Error(`${name}: after the load the images are ${got.join(', ')}, expected ${want.join(', ')}`);
    return { seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssMb: m.peakRssMb, containerdPeakRssMb };
  };

  try {
    await alternate(
      runs,
      async (i) => {
        const b = await loadInto(`bench-ctr-${i}`, plain, which('ctr')!, (c) => ['--address', c.address, '-n', NAMESPACE, 'images', 'import', plain]);
        out.baseline.push(b);
        process.stderr.write(`bench: containerd run ${i}: ctr images import  ${b.seconds.toFixed(2)} s\n`);
      },
      async (i) => {
        const f = await loadInto(`bench-ferry-ctd-${i}`, bundle, process.execPath, (c) => [FERRY, 'load', bundle, '--containerd', c.address, '--quiet']);
        out.ferry.push(f);
        process.stderr.write(`bench: containerd run ${i}: ferry load --containerd  ${f.seconds.toFixed(2)} s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n`);
      },
    );
  } finally {
    for (const stop of stops) await stop();
    await rm(plain, { force: true });
  }
  return out;
}
