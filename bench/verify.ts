// compareVerify: `ferry verify` vs `zstd -dc BLOB | sha256sum` (and plain sha256sum) over the bundle's layer blobs.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from './exec.js';
import { alternate, measure, type Measured } from './measure.js';
import { FERRY, ferryEnv } from './pack.js';

export interface VerifyRun {
  seconds: number;
  cpuSeconds: number;
  peakRssMb: number;
}

export interface VerifyFigures {
  ferry: VerifyRun[];
  /** zstd -dc | sha256sum per layer blob: the decompress-and-hash half of what verify does. */
  pipeline: VerifyRun[];
  /** sha256sum of the compressed layer blobs: the other half. */
  sha256sum: VerifyRun[];
  layerBlobs: number;
  compressedBytes: number;
}

interface Blob {
  digest: string;
  size: number;
  diffId?: string;
}

const run = (m: Measured): VerifyRun => ({ seconds: m.seconds, cpuSeconds: m.cpuSeconds, peakRssMb: m.peakRssMb });
const hashes = (out: string): string[] => out.trim().split('\n').map((l) => `sha256:${l.split(/\s+/)[0]}`);

export async function compareVerify(bundle: string, work: string, runs: number): Promise<VerifyFigures> {
  const index = JSON.parse((await exec('tar', ['-xOf', bundle, 'ferry.json'])).stdout) as { blobs: Blob[] };
  const layers = index.blobs.filter((b) => b.diffId);
  const dir = join(work, 'blobs');
  await mkdir(dir, { recursive: true });
  const names = layers.map((b) => `blobs/sha256/${b.digest.slice('sha256:'.length)}`);
  await exec('tar', ['-C', dir, '-xf', bundle, ...names]);
  const files = names.map((n) => join(dir, n));
  const out: VerifyFigures = { ferry: [], pipeline: [], sha256sum: [], layerBlobs: layers.length, compressedBytes: layers.reduce((s, b) => s + b.size, 0) };
  try {
    await alternate(
      runs,
      async (i) => {
        const f = await measure(process.execPath, [FERRY, 'verify', bundle, '--json'], { env: ferryEnv(), inputs: [bundle] });
        if ((JSON.parse(f.stdout) as { ok?: boolean }).ok !== true) throw new Error(`ferry verify did not report ok: ${f.stdout}`);
        out.ferry.push(run(f));
        process.stderr.write(`bench: verify run ${i}: ferry verify          ${f.seconds.toFixed(2)} s, peak RSS ${f.peakRssMb.toFixed(0)} MB\n`);
      },
      async (i) => {
        const p = await measure('bash', ['-c', 'set -o pipefail; for f in "$@"; do zstd -dcq "$f" | sha256sum; done', 'bash', ...files], { inputs: files });
        if (hashes(p.stdout).join() !== layers.map((b) => b.diffId).join()) throw new Error('zstd -dc | sha256sum gave other diffIDs than ferry.json');
        out.pipeline.push(run(p));
        process.stderr.write(`bench: verify run ${i}: zstd -dc | sha256sum  ${p.seconds.toFixed(2)} s\n`);
        const s = await measure('sha256sum', files, { inputs: files });
        if (hashes(s.stdout).join() !== layers.map((b) => b.digest).join()) throw new Error('sha256sum gave other digests than ferry.json');
        out.sha256sum.push(run(s));
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}
