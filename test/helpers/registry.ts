// A real registry (Debian's docker-registry) on 127.0.0.1 with a temp config and storage; stopped by its PID.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { which } from './tools.js';

export interface Registry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRegistry(extraConfig = ''): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: ${host}\n${extraConfig}`,
  );
  const log = join(dir, 'registry.log');
  const out = openSync(log, 'w');
  const child = spawn(which('docker-registry')!, ['serve', config], { stdio: ['ignore', out, out] });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${await readFile(log, 'utf8')}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${await readFile(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    host,
    dir,
    pid,
    stop: async () => {
      if (child.exitCode === null) {
        process.kill(pid, 'SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
