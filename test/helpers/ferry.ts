// Running the real ferry command line (bin/ferry, built dist/) as a user would, in a child process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

export interface FerryRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function ferry(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; dockerHost?: string; cwd?: string } = {}): Promise<FerryRun> {
  const env = { ...process.env, ...opts.env };
  delete env.FORCE_COLOR;
  // No layer cache in ~/.cache from the suite: a test that wants one names where (FERRY_CACHE_DIR, FERRY_HOME).
  if (env.FERRY_CACHE_DIR === undefined && env.FERRY_HOME === undefined) env.FERRY_CACHE ??= 'off';
  if (opts.dockerHost) env.DOCKER_HOST = opts.dockerHost;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [FERRY_BIN, ...args], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export function json<T = unknown>(run: FerryRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`ferry printed no JSON (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}
