// `ferry serve` run in the background for a test: on a free loopback port, its address read from its stderr.
import { spawn, type ChildProcess } from 'node:child_process';
import { FERRY_BIN } from './ferry.js';

export interface Served {
  child: ChildProcess;
  url: string;
  host: string;
  log: () => string;
  /** What it wrote to stderr (start-up lines, warnings). */
  errors: () => string;
  stop: () => Promise<number | null>;
}

/** serve starts `ferry serve` on a free loopback port and waits for its address. */
export async function serve(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawn(process.execPath, [FERRY_BIN, 'serve', '--listen', '127.0.0.1:0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /Listening on (https?:\/\/[\d.]+:\d+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`ferry serve exited ${code}: ${stderr}`)));
  });
  const closed = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, url, host: url.replace(/^https?:\/\//, ''), log: () => stdout, errors: () => stderr, stop: async () => (child.kill('SIGTERM'), closed) };
}

