// What a failed ferry run must look like, and what it must leave: the documented exit code, a message that says
// what and where without a stack trace, a daemon whose images, tags and layers did not change, no stray files.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from './dockerd.js';
import { FERRY_BIN, type FerryRun } from './ferry.js';

export interface MeasuredRun extends FerryRun {
  ms: number;
  /** Peak resident set of the ferry process in KiB (VmHWM, sampled every 20 ms until it exits). */
  peakRssKiB: number;
}

/** ferryMeasured runs the real CLI like helpers/ferry.ts does, and also records its time and peak memory. */
export function ferryMeasured(args: readonly string[], opts: { dockerHost?: string; cwd?: string; timeoutMs?: number } = {}): Promise<MeasuredRun> {
  const env = { ...process.env };
  delete env.FORCE_COLOR;
  if (opts.dockerHost) env.DOCKER_HOST = opts.dockerHost;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [FERRY_BIN, ...args], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const sample = async (): Promise<void> => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${p.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]));
      } catch {
        /* exited */
      }
    };
    const timer = setInterval(() => void sample(), 20);
    // A runaway (an unbounded decompression) must fail the test, not hang the suite.
    const killer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearInterval(timer);
      clearTimeout(killer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr, ms: Date.now() - started, peakRssKiB: peak });
    });
  });
}

/**
 * assertFails checks the exit code, that stderr is ferry's own message (no stack trace, no unhandled-error dump)
 * and that it says each of `mentions` (what is wrong, and the entry, path, image or host where).
 */
export function assertFails(run: FerryRun, code: number, mentions: readonly (string | RegExp)[], what = ''): void {
  const show = `${what}\nexit ${run.code}\nstderr:\n${run.stderr}\nstdout:\n${run.stdout}`;
  assert.equal(run.code, code, `exit code ${run.code}, want ${code}${show}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `a stack trace was printed${show}`);
  assert.doesNotMatch(run.stderr, /Uncaught|Unhandled|node:internal|TypeError|RangeError/, `an internal error leaked${show}`);
  assert.doesNotMatch(run.stderr, /[\u0000-\u0008\u000b-\u001f\u007f]/, `a control character reached the terminal${show}`);
  const at = run.stderr.search(/^ferry: /m);
  assert.ok(at >= 0, `no "ferry: " message${show}`);
  // The error itself must say it: progress lines above it do not count.
  const message = run.stderr.slice(at);
  for (const m of mentions) {
    if (typeof m === 'string') assert.ok(message.includes(m), `the error does not mention ${JSON.stringify(m)}${show}`);
    else assert.match(message, m, `the error does not match ${m}${show}`);
  }
}

/** DaemonState is what a load could change: every image ID with its tags, and every layer the daemon registered. */
export interface DaemonState {
  images: string[];
  layers: string[];
}

export async function daemonState(d: Dockerd): Promise<DaemonState> {
  const out = await d.docker(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  const images = out.split('\n').filter(Boolean).sort();
  const layers: string[] = [];
  const imageRoot = join(d.dir, 'data', 'image');
  for (const driver of await readdir(imageRoot).catch(() => [] as string[])) {
    const db = join(imageRoot, driver, 'layerdb', 'sha256');
    layers.push(...(await readdir(db).catch(() => [] as string[])).map((l) => `${driver}/${l}`));
  }
  return { images, layers: layers.sort() };
}

/** listTree lists every path under dir (relative), to show nothing appeared or stayed behind. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}
