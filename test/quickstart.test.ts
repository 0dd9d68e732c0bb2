// The README's quick start runs for real: private daemons, pack, inspect, verify, load under a new name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { missing } from './helpers/tools.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });
const script = fileURLToPath(new URL('../examples/quickstart.sh', import.meta.url));

describe('examples/quickstart.sh', { skip }, () => {
  it('packs, verifies and loads the demo image into an empty daemon with the same image ID', async () => {
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      // The install step is what `npm ci` and scripts/setup.sh already did for the test run.
      const p = spawn('bash', [script], { env: { ...process.env, QUICKSTART_SKIP_INSTALL: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('error', reject);
      p.on('close', (c) => resolve({ code: c ?? -1, out }));
    });
    assert.equal(code, 0, out);
    const loaded = /Loaded sha256:([a-f0-9]{12}) registry\.local\/mirror\/ferry-demo\/hello:1/.exec(out);
    assert.ok(loaded, out);
    const source = /source image ID: sha256:([a-f0-9]{64})/.exec(out);
    assert.ok(source, out);
    assert.equal(source[1]!.slice(0, 12), loaded[1]);
    assert.match(out, /registry\.local\/mirror\/ferry-demo\/hello\s+1\s+<none>\s+[a-f0-9]{12}/);
    assert.match(out, /OK: 1 image\(s\)/);
    // Both private daemons (and the containerd each started) are gone, and so is the work dir.
    const work = /and (\/tmp\/ferry-quickstart-[A-Za-z0-9]+) removed on exit/.exec(out);
    assert.ok(work, out);
    const { readdir, readFile } = await import('node:fs/promises');
    const left: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes(work[1]!)) left.push(cmd.replace(/\0/g, ' '));
    }
    assert.deepEqual(left, []);
  });
});
