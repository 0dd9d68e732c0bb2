// measure: one command's wall-clock time, CPU time and peak RSS (GNU time), from a fresh page cache; plus run statistics.
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, type ExecOptions } from './exec.js';

export const GNU_TIME = '/usr/bin/time';

export interface Measured {
  seconds: number;
  /** Peak resident set size in MB (10^6 bytes), from GNU time's %M. */
  peakRssMb: number;
  /** CPU seconds in user and kernel mode (the process and the children it waited for). */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

/**
 * freshCache starts a timed run from the same memory state each time: dirty pages written, the page cache dropped
 * (when we may: root), then the run's input files read back in, so neither side pays for reading its input from
 * disk nor for what runs before it left in memory. (On this kind of VM a docker load took 25 s with a full page
 * cache and 9 s after a drop: without this, which run came after which decided the ratio.)
 */
export async function freshCache(inputs: readonly string[] = []): Promise<boolean> {
  await exec('sync', []);
  const dropped = await writeFile('/proc/sys/vm/drop_caches', '3\n').then(
    () => true,
    () => false,
  );
  for (const f of inputs) {
    const fh = await open(f, 'r');
    try {
      const buf = Buffer.allocUnsafe(8 << 20);
      while ((await fh.read(buf, 0, buf.length, null)).bytesRead > 0);
    } finally {
      await fh.close();
    }
  }
  return dropped;
}

/** Whether the last measure could drop the page cache (reported with the results). */
export let cacheDropped = false;

export async function measure(cmd: string, args: readonly string[], opts: ExecOptions & { inputs?: readonly string[] } = {}): Promise<Measured> {
  cacheDropped = await freshCache(opts.inputs);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-bench-time-'));
  const out = join(dir, 'rss');
  try {
    const t0 = process.hrtime.bigint();
    const r = await exec(GNU_TIME, ['-f', '%M %U %S', '-o', out, cmd, ...args], opts);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const [kb, user, sys] = (await readFile(out, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
    return { seconds, peakRssMb: (kb! * 1024) / 1e6, cpuSeconds: user! + sys!, stdout: r.stdout, stderr: r.stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** vmHwmMb is a running process's peak RSS so far (VmHWM), in MB; for a daemon that we did not start under time. */
export async function vmHwmMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return (Number(m[1]) * 1024) / 1e6;
}

/** median of the runs (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** alternate runs two sides `runs` times, swapping which goes first each round so neither always follows the other. */
export async function alternate(runs: number, a: (round: number) => Promise<void>, b: (round: number) => Promise<void>): Promise<void> {
  for (let i = 1; i <= runs; i++) {
    if (i % 2 === 1) {
      await a(i);
      await b(i);
    } else {
      await b(i);
      await a(i);
    }
  }
}
