// The README's quick start runs for real: private daemons, pack, inspect, verify, load under a new name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missing, which } from './helpers/tools.js';

const skip = missing(['dockerd', 'docker', 'busybox', 'zstd', 'npm'], { root: true });
const script = fileURLToPath(new URL('../examples/quickstart.sh', import.meta.url));
const twoSite = fileURLToPath(new URL('../examples/two-site.sh', import.meta.url));

function runScript(path: string, env: NodeJS.ProcessEnv = { QUICKSTART_SKIP_INSTALL: '1' }): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    // The install step is what `npm ci` and scripts/setup.sh already did for the test run.
    const p = spawn('bash', [path], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (c) => resolve({ code: c ?? -1, out }));
  });
}

/** leftBehind lists processes still running with the example's work dir in their command line. */
async function leftBehind(out: string): Promise<string[]> {
  const work = /and (\/tmp\/ferry-[a-z-]+-[A-Za-z0-9]+) removed on exit/.exec(out);
  assert.ok(work, out);
  const { readdir, readFile } = await import('node:fs/promises');
  const left: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(work[1]!)) left.push(cmd.replace(/\0/g, ' '));
  }
  return left;
}

describe('the examples, run for real', { skip }, () => {
  it('quickstart.sh: packs, verifies and loads the demo image into an empty daemon with the same image ID', async () => {
    // Run as the README has it, right after its install step: the script must find `npm ci` done and the tools there,
    // and run neither again. npm and apt-get on PATH refuse those two calls (npm passes the rest to the real one).
    const stubs = await mkdtemp(join(tmpdir(), 'ferry-quickstart-stubs-'));
    const npm = which('npm')!;
    await writeFile(join(stubs, 'npm'), `#!/bin/sh\nif [ "$1" = ci ]; then echo "quickstart ran npm ci again" >&2; exit 97; fi\nexec ${npm} "$@"\n`, { mode: 0o755 });
    await writeFile(join(stubs, 'apt-get'), '#!/bin/sh\necho "quickstart ran apt-get" >&2\nexit 97\n', { mode: 0o755 });
    const { code, out } = await runScript(script, { PATH: `${stubs}:${process.env.PATH ?? ''}`, QUICKSTART_SKIP_INSTALL: '' }).finally(() => rm(stubs, { recursive: true, force: true }));
    assert.equal(code, 0, out);
    assert.doesNotMatch(out, /quickstart ran/);
    assert.match(out, /npm ci was done\): not running it again/);
    const loaded = /Loaded sha256:([a-f0-9]{12}) registry\.local\/mirror\/ferry-demo\/hello:1/.exec(out);
    assert.ok(loaded, out);
    const source = /source image ID: sha256:([a-f0-9]{64})/.exec(out);
    assert.ok(source, out);
    assert.equal(source[1]!.slice(0, 12), loaded[1]);
    assert.match(out, /registry\.local\/mirror\/ferry-demo\/hello\s+1\s+<none>\s+[a-f0-9]{12}/);
    assert.match(out, /OK: 1 image\(s\)/);
    // Both private daemons (and the containerd each started) are gone, and so is the work dir.
    const left = await leftBehind(out);
    assert.deepEqual(left, []);
  });

  it('two-site.sh: week 2 travels thin, planned from the catalog, and arrives with the same image ID', async () => {
    const { code, out } = await runScript(twoSite);
    assert.equal(code, 0, out);
    assert.match(out, /Relies on 0 layer\(s\)[^\n]*recorded for site site-b/, 'week 1 goes in full');
    assert.match(out, /Wrote week2\.ferry\.tar: 2 image\(s\), 1 layer\(s\)/, 'week 2 carries only the rebuilt layer');
    assert.match(out, /Thin bundle: holds 1 layer\(s\) and relies on 2/);
    assert.match(out, /Applies to the target/);
    const src = /source app:2 image ID: (sha256:[a-f0-9]{64})/.exec(out);
    const dst = /site-b app:2 image ID: (sha256:[a-f0-9]{64})/.exec(out);
    assert.ok(src && dst, out);
    assert.equal(dst[1], src[1]);
    assert.match(out, /Imported receipt week2\.receipt\.json for site site-b/);
    assert.deepEqual(await leftBehind(out), []);
  });
});
