// measure: one command's wall-clock time, CPU time and peak RSS (GNU time), after a `sync`; plus run statistics.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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

export async function measure(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<Measured> {
  await exec('sync', []);
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
