// The command line itself, as a new user first meets it (no daemon needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ferry } from './helpers/ferry.js';

describe('ferry with no command, --help, --version, and a command it does not know', () => {
  it('bare `ferry` prints the help on stdout, listing every command, and exits 0 (as bare `docker` does)', async () => {
    const run = await ferry([]);
    assert.equal(run.code, 0, run.stderr);
    for (const c of ['pack', 'inspect', 'verify', 'load', 'push', 'inventory', 'site', 'key']) assert.match(run.stdout, new RegExp(`ferry ${c}\\b`));
    assert.equal(run.stderr, '');
    assert.equal((await ferry(['--help'])).stdout, run.stdout);
  });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const run = await ferry(['--version']);
    assert.equal(run.code, 0);
    assert.equal(run.stdout.trim(), version);
  });

  it('an unknown command is a usage error (exit 2) that says what to do', async () => {
    const run = await ferry(['shove', 'x']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /Unknown arguments?: shove/);
    assert.match(run.stderr, /ferry --help/);
  });
});
