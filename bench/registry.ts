// compareRegistry: skopeo copy baselines for ferry's daemon → zstd archive, registry → archive and archive → registry
// paths, on the same corpus, in the same run. Every skopeo side copies the images one by one (skopeo writes one image
// per oci-archive and per command) in one bash loop, timed as a whole; ferry handles all images in one call.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { startRegistry, type Registry } from '../test/helpers/registry.js';
import { defer } from './cleanup.js';
import { exec } from './exec.js';
import { alternate, measure, type Measured } from './measure.js';
import { FERRY, ferryEnv } from './pack.js';

export interface CopyRun {
  seconds: number;
  cpuSeconds: number;
  /** Peak RSS of the largest process (for the skopeo loop: the largest single skopeo). */
  peakRssMb: number;
  /** Bytes written (archives), where there is a file result. */
  bytes?: number;
}

export interface RegistryFigures {
  /** skopeo copy --dest-compress-format zstd docker-daemon:IMG oci-archive:FILE, every image; ferry's side is comparePack's. */
  daemonToArchive: { skopeo: CopyRun[] };
  /** skopeo copy docker://R1/IMG oci-archive:FILE, every image, vs ferry pack docker://R1/IMG… -o BUNDLE. */
  registryToArchive: { skopeo: CopyRun[]; ferry: CopyRun[] };
  /** skopeo copy docker://R1/IMG docker://R2/IMG, every image, vs ferry push BUNDLE --to R2; R2 empty and fresh each run. */
  registryToRegistry: { skopeo: CopyRun[]; ferry: CopyRun[]; ferryBlobs: Record<string, number>[] };
  /** Seeding R1 from the daemon (skopeo copy docker-daemon: → docker://, gzip v2s2 as docker push makes; untimed, once). */
  seedSeconds: number;
  /** R1's manifest digests, by image; R2's are checked equal to them after every run of either side. */
  manifestDigests: Record<string, string>;
}

const SKOPEO = ['--insecure-policy', 'copy', '-q'];
const run = (m: Measured, bytes?: number): CopyRun => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssMb: m.peakRssMb, ...(bytes === undefined ? {} : { bytes }) });
const say = (s: string): boolean => process.stderr.write(`bench: ${s}\n`);

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(join(dir, f))).size;
  return n;
}

/** filesUnder lists every file below dir (a registry's storage), to read in before a timed run. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** skopeoLoop times one bash loop that runs `skopeo copy … SRC DST` per image; $i is the image's index (for file names). */
function skopeoLoop(flags: readonly string[], src: string, dst: string, images: readonly string[], inputs: readonly string[]): Promise<Measured> {
  const script = `set -euo pipefail; i=0; for img in "\${@:2}"; do i=$((i+1)); skopeo ${[...SKOPEO, ...flags].join(' ')} "${src}" "${dst}"; done`;
  return measure('bash', ['-c', script, 'bash', 'unused', ...images], { inputs });
}

/** manifestDigest is the sha256 of the manifest a registry serves for an image (skopeo inspect --raw). */
async function manifestDigest(reg: Registry, image: string): Promise<string> {
  const r = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${image}`]);
  return `sha256:${createHash('sha256').update(r.stdout).digest('hex')}`;
}

async function checkDigests(reg: Registry, images: readonly string[], want: Record<string, string>, who: string): Promise<void> {
  const bad: string[] = [];
  for (const img of images) {
    const got = await manifestDigest(reg, img);
    if (got !== want[img]) bad.push(`${img}: ${got}, R1 has ${want[img]}`);
  }
  if (bad.length) throw new Error(`after ${who}, the target registry's manifests differ from the source registry's:\n  ${bad.join('\n  ')}`);
}

async function tracked(what: string): Promise<{ reg: Registry; stop: () => Promise<void> }> {
  const reg = await startRegistry();
  return { reg, stop: defer(`docker-registry ${what} (pid ${reg.pid})`, () => reg.stop()) };
}

export async function compareRegistry(src: Dockerd, images: readonly string[], work: string, runs: number): Promise<RegistryFigures & { bundle: string }> {
  const dir = join(work, 'skopeo');
  const bundle = join(work, 'registry.ferry.tar');
  const fresh = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  };

  // 1. daemon → oci-archive, zstd (ferry's side is the existing pack measurement: same images, same daemon).
  const daemonToArchive: RegistryFigures['daemonToArchive'] = { skopeo: [] };
  for (let i = 1; i <= runs; i++) {
    await fresh();
    const m = await skopeoLoop(
      [`--src-daemon-host=${src.host}`, '--dest-compress-format=zstd'],
      'docker-daemon:$img',
      `oci-archive:${dir}/$i.tar`,
      images,
      [],
    );
    daemonToArchive.skopeo.push(run(m, await dirBytes(dir)));
    say(`registry run ${i}: skopeo copy docker-daemon: → oci-archive: (zstd)  ${m.seconds.toFixed(2)} s`);
  }

  // 2. R1, seeded once from the daemon: Docker v2 schema 2 manifests with gzip layers, as docker push makes them.
  const { reg: r1, stop: stopR1 } = await tracked('R1');
  const r1Data = join(r1.dir, 'data');
  try {
    const t0 = Date.now();
    for (const img of images) await exec('skopeo', [...SKOPEO, `--src-daemon-host=${src.host}`, '--dest-tls-verify=false', `docker-daemon:${img}`, `docker://${r1.host}/${img}`]);
    const seedSeconds = (Date.now() - t0) / 1000;
    const manifestDigests: Record<string, string> = {};
    for (const img of images) manifestDigests[img] = await manifestDigest(r1, img);
    say(`registry: R1 ${r1.host} seeded in ${seedSeconds.toFixed(1)} s`);

    const registryToArchive: RegistryFigures['registryToArchive'] = { skopeo: [], ferry: [] };
    await alternate(
      runs,
      async (i) => {
        await fresh();
        const m = await skopeoLoop(['--src-tls-verify=false'], `docker://${r1.host}/$img`, `oci-archive:${dir}/$i.tar`, images, await filesUnder(r1Data));
        registryToArchive.skopeo.push(run(m, await dirBytes(dir)));
        say(`registry run ${i}: skopeo copy docker:// → oci-archive:  ${m.seconds.toFixed(2)} s`);
      },
      async (i) => {
        await rm(bundle, { force: true });
        const m = await measure(process.execPath, [FERRY, 'pack', ...images.map((img) => `docker://${r1.host}/${img}`), '-o', bundle, '--json'], { env: ferryEnv(), inputs: await filesUnder(r1Data) });
        registryToArchive.ferry.push(run(m, (await stat(bundle)).size));
        say(`registry run ${i}: ferry pack docker://…              ${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB`);
      },
    );
    await rm(dir, { recursive: true, force: true });

    // 3. R1 → a fresh, empty R2 each run (skopeo), bundle → a fresh, empty R2 each run (ferry); R2's digests checked.
    const registryToRegistry: RegistryFigures['registryToRegistry'] = { skopeo: [], ferry: [], ferryBlobs: [] };
    const intoFresh = async (name: string, timed: (r2: Registry) => Promise<Measured>): Promise<Measured> => {
      const { reg: r2, stop } = await tracked(name);
      try {
        const m = await timed(r2);
        await checkDigests(r2, images, manifestDigests, name);
        return m;
      } finally {
        await stop();
      }
    };
    await alternate(
      runs,
      async (i) => {
        const r1Files = await filesUnder(r1Data);
        const m = await intoFresh(`skopeo-R2-${i}`, (r2) =>
          skopeoLoop(['--src-tls-verify=false', '--dest-tls-verify=false'], `docker://${r1.host}/$img`, `docker://${r2.host}/$img`, images, r1Files),
        );
        registryToRegistry.skopeo.push(run(m));
        say(`registry run ${i}: skopeo copy docker:// → docker://  ${m.seconds.toFixed(2)} s`);
      },
      async (i) => {
        const m = await intoFresh(`ferry-R2-${i}`, (r2) => measure(process.execPath, [FERRY, 'push', bundle, '--to', r2.host, '--json'], { env: ferryEnv(), inputs: [bundle] }));
        registryToRegistry.ferry.push(run(m));
        registryToRegistry.ferryBlobs.push((JSON.parse(m.stdout) as { blobs: Record<string, number> }).blobs);
        say(`registry run ${i}: ferry push --to R2               ${m.seconds.toFixed(2)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB`);
      },
    );
    return { daemonToArchive, registryToArchive, registryToRegistry, seedSeconds, manifestDigests, bundle };
  } finally {
    await stopR1();
  }
}
