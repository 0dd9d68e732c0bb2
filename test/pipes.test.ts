// Bundles through pipes, as docker users pipe `docker save`: `ferry pack … -o -` writes the bundle to stdout (staged
// in TMPDIR first, removed after), refuses what cannot share stdout, and says so when the reader goes away.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FERRY_BIN, ferry, json } from './helpers/ferry.js';
import { writeSaveArchive } from './helpers/save-archive.js';

/** packTo runs `ferry pack ARGS -o -` with stdout going to file (or to a reader that leaves after `leaveAfter` bytes). */
async function packToStdout(args: string[], env: NodeJS.ProcessEnv, to: { file: string } | { leaveAfter: number }): Promise<{ code: number; stderr: string }> {
  const out = 'file' in to ? await open(to.file, 'w') : undefined;
  try {
    const p = spawn(process.execPath, [FERRY_BIN, 'pack', ...args, '-o', '-'], { env: { ...process.env, ...env }, stdio: ['ignore', out ? out.fd : 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += d));
    if (!out) {
      let seen = 0;
      p.stdout!.on('data', (d: Buffer) => {
        seen += d.length;
        if (seen >= (to as { leaveAfter: number }).leaveAfter) p.stdout!.destroy();
      });
    }
    const code = await new Promise<number>((resolve) => p.on('close', (c) => resolve(c ?? -1)));
    return { code, stderr };
  } finally {
    await out?.close();
  }
}

describe('pack -o - (stdout)', () => {
  let dir: string;
  let tmp: string;
  let archive: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-pipes-'));
    tmp = join(dir, 'tmp');
    await mkdir(tmp);
    // 4 MB that zstd cannot shrink: more than a pipe holds, so a reader that leaves is noticed.
    await writeSaveArchive(join(dir, 'a.tar'), [{ tag: 'pipes/app:1', layers: [{ 'etc/os-release': 'NAME=pipes\n' }, { 'app/blob': randomBytes(4 << 20) }] }]);
    archive = `docker-archive:${join(dir, 'a.tar')}`;
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a whole bundle to stdout that verifies, and leaves nothing in TMPDIR', async () => {
    const file = join(dir, 'piped.ferry.tar');
    const run = await packToStdout([archive], { TMPDIR: tmp }, { file });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Wrote stdout: 1 image\(s\)/);
    const verify = await ferry(['verify', file, '--json']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.deepEqual(json<{ ok: boolean; images: number }>(verify), { ...json<object>(verify), ok: true, images: 1 });
    assert.deepEqual(await readdir(tmp), [], 'the staged bundle was removed');
  });

  it('a reader that goes away is said (exit 1), and the staged bundle is removed', async () => {
    const run = await packToStdout([archive], { TMPDIR: tmp }, { leaveAfter: 1000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /the reader of stdout went away before the bundle was whole/);
    assert.match(run.stderr, /hint: /);
    assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.deepEqual(await readdir(tmp), []);
  });

  it('refuses what cannot share stdout with the bundle: --json, volumes (exit 2)', async () => {
    for (const extra of [['--json'], ['--max-volume-size', '700MB']]) {
      const run = await ferry(['pack', archive, '-o', '-', ...extra], { env: { TMPDIR: tmp } });
      assert.equal(run.code, 2, run.stderr);
      // An error under --json is a JSON document on stdout, as every command's; the bundle never starts.
      assert.match(run.stdout + run.stderr, /with -o -/);
      assert.doesNotMatch(run.stdout, /ustar/);
    }
  });
});
