// A private dockerd per test suite: own data-root, exec-root, pidfile and socket under a temp dir, no networking;
// stopped by its PID. Also builds the small test images (busybox rootfs imported, then COPY layers).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile, copyFile, symlink, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dockerCli, which } from './tools.js';

const exec = promisify(execFile);

export interface Dockerd {
  name: string;
  dir: string;
  host: string;
  pid: number;
  /** docker runs the Docker CLI against this daemon. */
  docker(args: readonly string[], opts?: { input?: Buffer }): Promise<string>;
  stop(): Promise<void>;
}

async function pingNode(socket: string): Promise<boolean> {
  const http = await import('node:http');
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function waitUntilUp(socket: string, child: ChildProcess, log: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}:\n${(await readFile(log, 'utf8')).slice(-3000)}`);
    if (await pingNode(socket)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`dockerd did not answer within ${ms} ms:\n${(await readFile(log, 'utf8')).slice(-3000)}`);
}

/** startDockerd starts a private daemon; overlay2 where the kernel allows, else vfs; extraArgs go to dockerd as given. */
export async function startDockerd(name: string, opts: { tcpPort?: number; extraArgs?: readonly string[] } = {}): Promise<Dockerd> {
  const dir = await mkdtemp(join(tmpdir(), `ferry-${name}-`));
  for (const driver of ['overlay2', 'vfs']) {
    const socket = join(dir, 'docker.sock');
    const log = join(dir, `dockerd-${driver}.log`);
    const out = openSync(log, 'w');
    const child = spawn(
      which('dockerd')!,
      [
        `--data-root=${join(dir, 'data')}`,
        `--exec-root=${join(dir, 'exec')}`,
        `--pidfile=${join(dir, 'docker.pid')}`,
        `--host=unix://${socket}`,
        ...(opts.tcpPort ? [`--host=tcp://127.0.0.1:${opts.tcpPort}`] : []),
        '--bridge=none',
        '--iptables=false',
        '--ip6tables=false',
        '--ip-masq=false',
        `--storage-driver=${driver}`,
        '--log-level=warn',
        ...(opts.extraArgs ?? []),
      ],
      { stdio: ['ignore', out, out], detached: false },
    );
    try {
      await waitUntilUp(socket, child, log);
    } catch (err) {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (driver === 'vfs') throw err;
      continue;
    }
    const host = `unix://${socket}`;
    const pid = child.pid!;
    const cli = dockerCli()!;
    return {
      name,
      dir,
      host,
      pid,
      docker: async (args, opts = {}) => {
        return new Promise<string>((resolve, reject) => {
          const p = spawn(cli, ['-H', host, ...args], { env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' }, stdio: ['pipe', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          p.stdout.on('data', (d) => (stdout += d));
          p.stderr.on('data', (d) => (stderr += d));
          p.on('error', reject);
          p.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`docker ${args.join(' ')} exited ${code}: ${stderr}`))));
          p.stdin.end(opts.input);
        });
      },
      stop: async () => {
        if (child.exitCode === null) {
          process.kill(pid, 'SIGTERM');
          const exited = new Promise((r) => child.once('exit', r));
          const timer = new Promise((r) => setTimeout(r, 20_000, 'timeout'));
          if ((await Promise.race([exited, timer])) === 'timeout') {
            process.kill(pid, 'SIGKILL');
            await exited;
          }
        }
        await exec('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
    };
  }
  throw new Error('unreachable');
}

/** importBase makes a one-layer image from a busybox rootfs (`docker import`). */
export async function importBase(d: Dockerd, tag: string, extra: Record<string, string> = {}): Promise<string> {
  const root = await mkdtemp(join(d.dir, 'rootfs-'));
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await copyFile(which('busybox')!, join(root, 'bin/busybox'));
  for (const app of ['sh', 'ls', 'cat', 'echo']) await symlink('busybox', join(root, 'bin', app));
  await writeFile(join(root, 'etc/os-release'), 'NAME=ferry-test\n');
  for (const [path, content] of Object.entries(extra)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  const tarPath = `${root}.tar`;
  await exec('tar', ['-C', root, '-cf', tarPath, '.']);
  const id = (await d.docker(['import', tarPath, tag])).trim();
  await rm(root, { recursive: true, force: true });
  await rm(tarPath, { force: true });
  return id;
}

/** build runs `docker build` (legacy builder, no containers needed) with files copied in as layers. */
export async function build(d: Dockerd, tag: string | undefined, dockerfile: string, files: Record<string, string | Buffer> = {}): Promise<string> {
  const ctx = await mkdtemp(join(d.dir, 'ctx-'));
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(ctx, path, '..'), { recursive: true });
    await writeFile(join(ctx, path), content);
  }
  const id = (await d.docker(['build', '-q', ...(tag ? ['-t', tag] : []), ctx])).trim();
  await rm(ctx, { recursive: true, force: true });
  return id;
}

export interface TestImages {
  base: string;
  app: string;
  tool: string;
  untagged: string;
}

/**
 * buildTestImages makes a small set that exercises sharing: base (imported), app and tool on the base
 * (app with two tags), and an untagged image built on app.
 */
export async function buildTestImages(d: Dockerd): Promise<TestImages> {
  const base = await importBase(d, 'ferry-test/base:1');
  const app = await build(d, 'ferry-test/app:1', 'FROM ferry-test/base:1\nCOPY app.txt /srv/app.txt\nCOPY data.bin /srv/data.bin\nENV APP=1\n', {
    'app.txt': 'app v1\n',
    'data.bin': Buffer.alloc(300_000, 7),
  });
  await d.docker(['tag', 'ferry-test/app:1', 'ferry-test/app:latest']);
  const tool = await build(d, 'ferry-test/tool:2', 'FROM ferry-test/base:1\nCOPY tool.sh /usr/local/bin/tool.sh\n', { 'tool.sh': '#!/bin/sh\necho tool\n' });
  const untagged = await build(d, undefined, 'FROM ferry-test/app:1\nCOPY extra.txt /extra.txt\n', { 'extra.txt': 'extra\n' });
  return { base, app, tool, untagged };
}
