// Progress without a TTY (plain lines on stderr), as an operator reads it in a CI log or over ssh: bytes done of the
// total, a rate and what is left; a line for every layer; and final counts that agree with the summary.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ferry, json } from './helpers/ferry.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { writeSaveArchive } from './helpers/save-archive.js';
import { missing } from './helpers/tools.js';

const METER = /[\d.]+ [kMG]?B of [\d.]+ [kMG]?B \(\d+%\), [\d.]+ [kMG]?B\/s/;

describe('plain progress: bytes, every layer, counts that match the summary', { skip: missing(['docker-registry']) }, () => {
  let dir: string;
  let reg: Registry;
  let bundle: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-progress-'));
    reg = await startRegistry();
    const base = { 'etc/os-release': 'NAME=progress\n', 'lib/blob': randomBytes(300_000) };
    await writeSaveArchive(join(dir, 'a.tar'), [
      { tag: 'progress/app:1', layers: [base, { 'app/one': randomBytes(200_000) }] },
      { tag: 'progress/tool:1', layers: [base, { 'tool/one': randomBytes(100_000) }, { 'tool/two': 'two\n' }] },
    ]);
    bundle = join(dir, 'p.ferry.tar');
  });

  after(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pack: a line per layer stored, each with bytes done of the total and a rate', async () => {
    const run = await ferry(['pack', `docker-archive:${join(dir, 'a.tar')}`, '-o', bundle]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stderr.split('\n').filter((l) => /^ {2}layer \d+\/\d+:/.test(l));
    assert.deepEqual(lines.map((l) => l.match(/layer (\d+\/\d+)/)![1]), ['1/4', '2/4', '3/4', '4/4'], run.stderr);
    for (const l of lines) assert.match(l, METER);
    assert.match(run.stderr, /4 layer\(s\)/, 'the summary counts the same layers');
  });

  it('pack --dry-run: the bytes each image and the whole bundle would take, each layer counted once', async () => {
    type Bytes = { stored: number; storedEstimated: boolean; uncompressed: number; unsized: number };
    const run = await ferry(['pack', `docker-archive:${join(dir, 'a.tar')}`, '--dry-run', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const view = json<{ images: { bytes: Bytes }[]; bytes: Bytes }>(run);
    const packed = json<{ uncompressedBytes: number }>(await ferry(['pack', `docker-archive:${join(dir, 'a.tar')}`, '-o', join(dir, 'again.ferry.tar'), '--json']));
    assert.equal(view.bytes.uncompressed, packed.uncompressedBytes, 'the layer tars, the shared base once');
    assert.equal(view.bytes.unsized, 0);
    assert.ok(view.bytes.storedEstimated);
    assert.ok(view.images[0]!.bytes.uncompressed + view.images[1]!.bytes.uncompressed > view.bytes.uncompressed, 'per image, the shared base counts in each');
    const text = await ferry(['pack', `docker-archive:${join(dir, 'a.tar')}`, '--dry-run']);
    assert.match(text.stdout, /4 layer\(s\) would travel \(~[\d.]+ [kM]B in the bundle, [\d.]+ [kM]B uncompressed, each layer once\)/);
    const thin = json<{ bytes: Bytes }>(await ferry(['pack', `docker-archive:${join(dir, 'a.tar')}`, '--dry-run', '--json', '--have', bundle]));
    assert.deepEqual(thin.bytes, { stored: 0, storedEstimated: false, uncompressed: 0, unsized: 0 }, 'all held: nothing travels');
  });

  it('verify: a line per layer with bytes checked of the bundle', async () => {
    const run = await ferry(['verify', bundle]);
    assert.equal(run.code, 0, run.stderr);
    const layerLines = run.stderr.split('\n').filter((l) => /^ {2}blob \d+\/\d+: .*%/.test(l));
    assert.ok(layerLines.length >= 4, run.stderr);
    for (const l of layerLines) assert.match(l, METER);
  });

  it('push: a line per blob, and the last one counts what the summary counts', async () => {
    const run = await ferry(['push', bundle, '--to', `${reg.host}/mirror`, '--insecure-registry', reg.host]);
    assert.equal(run.code, 0, run.stderr);
    const tallies = run.stderr.split('\n').filter((l) => /uploaded, \d+ mounted, \d+ already there$/.test(l));
    assert.ok(tallies.length >= 6, `a line per blob (4 layers, 2 configs): ${run.stderr}`);
    const last = tallies.at(-1)!.match(/(\d+) uploaded, (\d+) mounted, (\d+) already there$/)!;
    const summary = run.stderr.match(/(\d+) blob\(s\) uploaded \([^)]*\), (\d+) mounted, (\d+) already there/)!;
    assert.ok(summary, run.stderr);
    assert.deepEqual(last.slice(1), summary.slice(1), `progress ended at ${last[0]}, the summary says ${summary[0]}`);
  });
});
