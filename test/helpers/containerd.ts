// A private containerd per test suite: own root, state, sockets and config (CRI off, so it starts fast) under a
// short temp dir; stopped by its PID, its mounts undone and the dir removed. ctr against it is the independent reader.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { missing, which } from './tools.js';

const exec = promisify(execFile);

export interface Containerd {
  address: string;
  dir: string;
  pid: number;
  /** ctr runs `ctr --address SOCKET ARGS…` and returns its stdout. */
  ctr(args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

/** containerdMissing is undefined when a private containerd can run here, else why the suite skips. */
export function containerdMissing(): string | undefined {
  const tools = missing(['containerd', 'ctr']);
  if (tools) return tools;
  if (process.getuid?.() === 0) return undefined;
  const reason = 'skipped: containerd needs root (snapshots, mounts)';
  if (process.env.CI) throw new Error(`CI must run every suite, but ${reason}`);
  process.stderr.write(`# ${reason}\n`);
  return reason;
}

function config(dir: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${dir}/c.sock"

[ttrpc]
  address = "${dir}/c.sock.ttrpc"

[debug]
  address = "${dir}/debug.sock"
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"
`;
}

function accepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitUntilUp(socket: string, child: ChildProcess, log: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}:\n${(await readFile(log, 'utf8')).slice(-3000)}`);
    if (await accepts(socket)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`containerd did not answer within ${ms} ms:\n${(await readFile(log, 'utf8')).slice(-3000)}`);
}

/** startContainerd starts a private daemon; unix socket paths are short (≤ 107 bytes), hence /tmp. */
export async function startContainerd(name: string): Promise<Containerd> {
  const dir = await mkdtemp(join('/tmp', `ferry-ctd-${name.slice(0, 20)}-`));
  await writeFile(join(dir, 'config.toml'), config(dir));
  const address = join(dir, 'c.sock');
  const log = join(dir, 'containerd.log');
  const out = openSync(log, 'w');
  const child = spawn(which('containerd')!, ['--config', join(dir, 'config.toml')], { stdio: ['ignore', out, out] });
  const pid = child.pid!;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // A test process that ends without calling stop() must not leave its daemon behind.
  const reap = (): void => void (child.exitCode === null && child.kill('SIGKILL'));
  process.once('exit', reap);

  const stop = async (): Promise<void> => {
    process.off('exit', reap);
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const timer = new Promise((r) => setTimeout(r, 10_000, 'timeout').unref());
      if ((await Promise.race([exited, timer])) === 'timeout') {
        process.kill(pid, 'SIGKILL');
        await exited;
      }
    }
    await exec('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    await waitUntilUp(address, child, log);
  } catch (err) {
    await stop();
    throw err;
  }
  const ctrPath = which('ctr')!;
  return {
    address,
    dir,
    pid,
    ctr: async (args) => (await exec(ctrPath, ['--address', address, ...args], { maxBuffer: 64 << 20 })).stdout,
    stop,
  };
}

export interface Holdings {
  images: string[];
  content: string[];
  snapshots: string[];
  leases: string[];
}

/** holdings is what a namespace holds, as ctr (the independent reader) lists it: image names, blobs, snapshots, leases. */
export async function holdings(ctd: Containerd, ns: string): Promise<Holdings> {
  const col = async (args: string[]): Promise<string[]> =>
    (await ctd.ctr(['-n', ns, ...args]))
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.split(/\s+/)[0]!)
      .sort();
  const [images, content, snapshots, leases] = await Promise.all([
    col(['images', 'ls', '-q']),
    col(['content', 'ls', '-q']),
    col(['snapshots', 'ls']).then((keys) => keys.filter((k) => k !== 'KEY')),
    col(['leases', 'ls', '-q']),
  ]);
  return { images, content, snapshots, leases };
}
