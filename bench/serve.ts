// compareServe: `ferry serve BUNDLE` against Debian's docker-registry serving the same images from its own storage
// (after a ferry push into it), each read by `skopeo copy docker://… oci:` for every image, alternating; ferry
// serve's peak RSS; and one large blob over loopback (curl) against `cat` of the same bytes from a file.
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry } from '../test/helpers/registry.js';
import { defer } from './cleanup.js';
import { readTarEntry } from '../test/helpers/tar.js';
import { exec } from './exec.js';
import { alternate, measure, vmHwmMb, type Measured } from './measure.js';
import { FERRY, ferryEnv } from './pack.js';

export interface ServeFigures {
  registry: Measured[];
  ferry: Measured[];
  /** ferry serve's own peak RSS over every run (VmHWM), and docker-registry's. */
  servePeakRssMb: number;
  registryPeakRssMb: number;
  /** One large blob: curl from ferry serve, and cat of the same bytes from a file; each input read in first. */
  blob: { bytes: number; curlSeconds: number; catSeconds: number };
  /** From starting `ferry serve` to its answer to a first manifest request; and the bundle's size. */
  firstAnswerSeconds: number;
  bundleBytes: number;
}

const say = (s: string): boolean => process.stderr.write(`bench: serve: ${s}\n`);

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

/** startServe runs `ferry serve` on a free port until stopped; its address is read from its first lines. */
async function startServe(bundle: string, firstImage: string): Promise<{ host: string; pid: number; firstAnswerSeconds: number; stop: () => Promise<void> }> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [FERRY, 'serve', bundle, '--listen', '127.0.0.1:0'], { env: ferryEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const host = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /Listening on http:\/\/([\d.]+:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`ferry serve exited ${code}: ${err}`)));
  });
  const stop = defer(`ferry serve (pid ${child.pid})`, async () => {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  });
  const [repo, tag] = [firstImage.replace(/:[^/:]+$/, ''), firstImage.split(':').pop()!];
  const first = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`);
  if (first.status !== 200) throw new Error(`ferry serve answered ${first.status} for ${firstImage}`);
  await first.arrayBuffer();
  return { host, pid: child.pid!, firstAnswerSeconds: Number(process.hrtime.bigint() - t0) / 1e9, stop };
}

export async function compareServe(images: readonly string[], bundle: string, work: string, runs: number): Promise<ServeFigures> {
  const dir = join(work, 'serve');
  const reg = await startRegistry();
  const stopReg = defer(`docker-registry for serve (pid ${reg.pid})`, () => reg.stop());
  try {
    await exec(process.execPath, [FERRY, 'push', bundle, '--to', reg.host, '--quiet'], { env: ferryEnv() });
    await exec('sync', []);
    const served = await startServe(bundle, images[0]!);
    try {
      const loop = (host: string, inputs: readonly string[]): Promise<Measured> => {
        const script = `set -euo pipefail; i=0; for img in "$@"; do i=$((i+1)); skopeo --insecure-policy copy -q --src-tls-verify=false "docker://${host}/$img" "oci:${dir}/$i:x"; done`;
        return measure('bash', ['-c', script, 'bash', ...images], { inputs });
      };
      const fresh = async (): Promise<void> => {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
      };
      const out: Pick<ServeFigures, 'registry' | 'ferry'> = { registry: [], ferry: [] };
      await alternate(
        runs,
        async (i) => {
          await fresh();
          const m = await loop(reg.host, await filesUnder(join(reg.dir, 'data')));
          out.registry.push(m);
          say(`run ${i}: skopeo copy from docker-registry  ${m.seconds.toFixed(2)} s`);
        },
        async (i) => {
          await fresh();
          const m = await loop(served.host, [bundle]);
          out.ferry.push(m);
          say(`run ${i}: skopeo copy from ferry serve      ${m.seconds.toFixed(2)} s`);
        },
      );
      await rm(dir, { recursive: true, force: true });
      const index = JSON.parse((await readTarEntry(bundle, 'ferry.json')).toString()) as { blobs: { digest: string; size: number }[]; images: { refs: string[]; layers: { digest: string }[] }[] };
      const blob = await oneBlob(served.host, bundle, work, index);
      const figures = { ...out, servePeakRssMb: await vmHwmMb(served.pid), registryPeakRssMb: await vmHwmMb(reg.pid), blob, firstAnswerSeconds: served.firstAnswerSeconds, bundleBytes: (await stat(bundle)).size };
      say(`ferry serve peak RSS ${figures.servePeakRssMb.toFixed(0)} MB; one ${(blob.bytes / 1e6).toFixed(0)} MB blob: curl ${blob.curlSeconds.toFixed(2)} s, cat ${blob.catSeconds.toFixed(2)} s`);
      return figures;
    } finally {
      await served.stop();
    }
  } finally {
    await stopReg();
  }
}

/** oneBlob times the largest blob through ferry serve (curl) and the same bytes read from a file (cat). */
async function oneBlob(host: string, bundle: string, work: string, index: { blobs: { digest: string; size: number }[]; images: { refs: string[]; layers: { digest: string }[] }[] }): Promise<ServeFigures['blob']> {
  const biggest = index.blobs.reduce((a, b) => (b.size > a.size ? b : a));
  const image = index.images.find((i) => i.layers.some((l) => l.digest === biggest.digest) && i.refs.length)!;
  // Served under its repository path (docker.io/bench/python:3.11 as bench/python).
  const repo = image.refs[0]!.replace(/^[^/]+\//, '').replace(/:[^/:]+$/, '');
  const url = `http://${host}/v2/${repo}/blobs/${biggest.digest}`;
  const file = join(work, 'one.blob');
  await exec('curl', ['-sf', '-o', file, url]);
  if ((await stat(file)).size !== biggest.size) throw new Error(`curl ${url} did not get ${biggest.size} bytes`);
  const curl = await measure('curl', ['-sf', '-o', '/dev/null', url], { inputs: [bundle] });
  const cat = await measure('bash', ['-c', 'cat "$1" > /dev/null', 'bash', file], { inputs: [file] });
  await writeFile(file, '');
  return { bytes: biggest.size, curlSeconds: curl.seconds, catSeconds: cat.seconds };
}
