// compareDeltas: the week-2 update of the two-week sync (its rebuilt images, without the new one) packed thin against
// the site's inventory with delta layers and with whole layers, alternating; each loaded into a site at week 1; each
// delta against `zstd -19 --long=27 --patch-from=OLD NEW` of its layer (the per-layer anchor).
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeDelta } from '../src/delta/encode.js';
import type { DiffId } from '../src/image/digest.js';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { startTracked } from './daemon.js';
import { bash, exec } from './exec.js';
import { alternate, measure, type Measured } from './measure.js';
import { FERRY, ferryEnv, siteEnv, type PackRun } from './pack.js';

export interface DeltaLayerCost {
  diffId: string;
  tarBytes: number;
  /** The delta blob, and the layer zstd -3 whole (as the layer-level bundle carries it). */
  deltaBytes: number;
  wholeBytes: number;
  /** zstd -19 --long=27 --patch-from=OLD NEW, OLD the delta's first reference; its seconds. */
  anchorBytes: number;
  anchorSeconds: number;
  /** ferry's encoder alone on the same tars, against every reference the bundle's delta names: its seconds. */
  encodeSeconds: number;
  reference: string;
}

export interface DeltaFigures {
  images: string[];
  delta: PackRun[];
  whole: PackRun[];
  deltaLoad: Measured;
  wholeLoad: Measured;
  /** The delta bundle into a site without a layer cache (FERRY_CACHE=off): references saved from its daemon. */
  deltaLoadNoCache: Measured;
  layers: DeltaLayerCost[];
}

const say = (s: string): boolean => process.stderr.write(`bench: deltas: ${s}\n`);
const run = async (args: readonly string[], host?: string): Promise<string> => (await exec(process.execPath, [FERRY, ...args], { env: ferryEnv(host) })).stdout;
const packRun = async (m: Measured, file: string): Promise<PackRun> => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, bytes: (await stat(file)).size, peakRssMb: m.peakRssMb });

async function imageIds(d: Dockerd, images: readonly string[]): Promise<string> {
  return (await d.docker(['image', 'inspect', '--format', '{{.Id}}', ...images])).trim();
}

/** siteAtWeek1 starts a site daemon and loads week 1 into it (untimed), with the site's environment from then on. */
async function siteAtWeek1(name: string, week1: string, env: (host: string) => NodeJS.ProcessEnv): Promise<{ d: Dockerd; env: NodeJS.ProcessEnv; stop: () => Promise<void> }> {
  const site = await startTracked(name);
  await exec(process.execPath, [FERRY, 'load', week1, '--quiet'], { env: env(site.d.host) });
  return { ...site, env: env(site.d.host) };
}

export async function compareDeltas(src: Dockerd, images: readonly string[], week1: string, inventory: string, work: string, runs: number): Promise<DeltaFigures> {
  const dir = join(work, 'deltas');
  await mkdir(dir, { recursive: true });
  const deltaFile = join(dir, 'week2-delta.ferry.tar');
  const wholeFile = join(dir, 'week2-whole.ferry.tar');
  const delta: PackRun[] = [];
  const whole: PackRun[] = [];
  const pack = async (file: string, flag: string, into: PackRun[], i: number): Promise<void> => {
    await rm(file, { force: true });
    const m = await measure(process.execPath, [FERRY, 'pack', ...images, '--have', inventory, '-o', file, flag, '--quiet'], { env: ferryEnv(src.host) });
    into.push(await packRun(m, file));
    say(`run ${i}: ferry pack ${flag}  ${m.seconds.toFixed(2)} s, ${(into.at(-1)!.bytes / 1e6).toFixed(2)} MB, peak RSS ${m.peakRssMb.toFixed(0)} MB`);
  };
  await alternate(runs, (i) => pack(deltaFile, '--delta', delta, i), (i) => pack(wholeFile, '--no-delta', whole, i));

  // Each into a site at week 1, the image IDs checked against the source's.
  const want = await imageIds(src, images);
  const loads: Measured[] = [];
  // Each site keeps its own layer cache (what its week-1 load kept), as a real one does; and one site runs without.
  const sites = [
    ['delta', deltaFile, (h: string) => siteEnv(h, join(dir, 'site-cache-delta'))],
    ['whole', wholeFile, (h: string) => siteEnv(h, join(dir, 'site-cache-whole'))],
    ['delta-nocache', deltaFile, (h: string) => ({ ...ferryEnv(h), FERRY_CACHE: 'off' })],
  ] as const;
  for (const [name, file, env] of sites) {
    const site = await siteAtWeek1(`bench-site-${name}`, week1, env);
    try {
      const m = await measure(process.execPath, [FERRY, 'load', file, '--quiet'], { env: site.env });
      if ((await imageIds(site.d, images)) !== want) throw new Error(`the ${name} bundle did not bring the site to the source's week 2`);
      loads.push(m);
      say(`${name} bundle loaded in ${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB; image IDs equal the source's`);
    } finally {
      await site.stop();
    }
  }
  const layers = await anchors(src, images, deltaFile, dir);
  await rm(dir, { recursive: true, force: true });
  return { images: [...images], delta, whole, deltaLoad: loads[0]!, wholeLoad: loads[1]!, deltaLoadNoCache: loads[2]!, layers };
}

/** anchors measures zstd --patch-from for each delta layer against its first reference, from a plain docker save. */
async function anchors(src: Dockerd, images: readonly string[], bundle: string, dir: string): Promise<DeltaLayerCost[]> {
  const view = JSON.parse(await run(['inspect', bundle, '--json'])) as { deltas: { diffId: string; size: number; uncompressedSize: number; wholeSize?: number; references: string[] }[] };
  const plain = join(dir, 'plain.tar');
  const tree = join(dir, 'plain');
  await mkdir(tree, { recursive: true });
  // The images hold every delta's layer and its first reference (last week's version is below, or in pyapp:1.0).
  await src.docker(['save', '-o', plain, ...images, 'bench/pyapp:1.0']);
  await exec('tar', ['-C', tree, '-xf', plain]);
  await rm(plain, { force: true });
  const byDiffId = new Map<string, string>();
  for (const f of (await exec('find', [tree, '-name', '*.tar', '-o', '-path', '*/blobs/sha256/*', '-type', 'f'])).stdout.split('\n').filter(Boolean)) {
    byDiffId.set(`sha256:${(await exec('sha256sum', [f])).stdout.split(/\s+/)[0]}`, f);
  }
  const out: DeltaLayerCost[] = [];
  for (const d of view.deltas) {
    const layer = byDiffId.get(d.diffId);
    const ref = d.references[0] && byDiffId.get(d.references[0]);
    if (!layer || !ref || d.references.some((r) => !byDiffId.has(r))) throw new Error(`docker save of ${images.join(' ')} lacks layer ${d.diffId} or its reference ${d.references[0]}`);
    const t0 = Date.now();
    const anchorBytes = Number((await bash('zstd -19 --long=27 -q -c --patch-from="$1" "$2" | wc -c', [ref, layer])).stdout.trim());
    const anchorSeconds = (Date.now() - t0) / 1000;
    const refs = await Promise.all(d.references.map(async (r) => ({ path: byDiffId.get(r)!, diffId: r as DiffId, size: (await stat(byDiffId.get(r)!)).size })));
    const t1 = Date.now();
    await encodeDelta({ path: layer, diffId: d.diffId as DiffId, size: d.uncompressedSize }, refs, join(dir, 'encoded.delta'));
    const encodeSeconds = (Date.now() - t1) / 1000;
    await rm(join(dir, 'encoded.delta'), { force: true });
    out.push({ diffId: d.diffId, tarBytes: d.uncompressedSize, deltaBytes: d.size, wholeBytes: d.wholeSize ?? 0, anchorBytes, anchorSeconds, encodeSeconds, reference: d.references[0]! });
    say(`layer ${d.diffId.slice(7, 19)} (${(d.uncompressedSize / 1e6).toFixed(1)} MB tar): delta ${d.size} B, whole ${d.wholeSize} B, patch-from anchor ${anchorBytes} B`);
  }
  await rm(tree, { recursive: true, force: true });
  return out;
}
