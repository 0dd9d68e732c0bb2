// exec: run a command to completion, capturing its output; a non-zero exit rejects with the tail of its stderr.
import { spawn } from 'node:child_process';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  /** Pass the child's stderr through to ours (for long steps whose progress a person wants to see). */
  showStderr?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (opts.showStderr) process.stderr.write(d);
    });
    p.on('error', reject);
    p.on('close', (code, sig) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${cmd} ${args.slice(0, 6).join(' ')}${args.length > 6 ? ' …' : ''} exited ${code ?? sig}: ${stderr.slice(-2000)}`));
    });
    p.stdin.end(opts.input);
  });
}

/** bash runs a script with `set -euo pipefail`; extra args become $1, $2, … */
export function bash(script: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
  return exec('bash', ['-c', `set -euo pipefail\n${script}`, 'bash', ...args], opts);
}
