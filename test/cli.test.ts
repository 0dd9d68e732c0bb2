// The command line itself, as a new user first meets it (no daemon needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ferry } from './helpers/ferry.js';
import { assertFails } from './helpers/outcome.js';

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

describe('a mistyped command or flag gets "did you mean"; every usage error has a hint', () => {
  it('a command an edit or two away: the nearest one', async () => {
    const run = await ferry(['lod', 'week47.ferry.tar']);
    assertFails(run, 2, [/Unknown arguments?: lod/, /hint: did you mean `ferry load` for `ferry lod`\?/]);
  });

  it('a flag an edit or two away (a swapped pair counts as one): named as typed, with the nearest flag of that command', async () => {
    const cases: [string[], RegExp][] = [
      [['verify', 'x.ferry.tar', '--kee', 'k.pub'], /unknown flag: --kee\nhint: did you mean --key for --kee\? see `ferry verify --help`/],
      [['load', 'x.ferry.tar', '--retga', 'a=b'], /unknown flag: --retga\nhint: did you mean --retag for --retga\?/],
      [['pack', 'x', '--platfrom=linux/arm64', '-o', 'x.ferry.tar'], /unknown flag: --platfrom\nhint: did you mean --platform for --platfrom\?/],
      [['push', 'x.ferry.tar', '--to', 'r', '--dryrun'], /unknown flag: --dryrun\nhint: did you mean --dry-run for --dryrun\?/],
    ];
    for (const [args, want] of cases) assertFails(await ferry(args), 2, [want], args.join(' '));
    // Nothing near: no guess, still a hint.
    assertFails(await ferry(['verify', 'x.ferry.tar', '--zzzzzz']), 2, [/unknown flag: --zzzzzz\nhint: see `ferry verify --help`/]);
  });

  it('usage errors that once had no hint: a bad retag rule, a missing image list', async () => {
    assertFails(await ferry(['load', 'x.ferry.tar', '--retag', 'nginx']), 2, [/invalid retag rule "nginx"/, /hint: .*--retag nginx=web/]);
    assertFails(await ferry(['pack', '-f', 'no-such-list.txt', '-o', 'x.ferry.tar']), 2, ['no-such-list.txt', /no such file/, /hint: check the path given to -f/]);
    // Optional positionals have no default (help shows none): nothing given is still nothing.
    assertFails(await ferry(['load']), 2, [/name at least one bundle/]);
    assertFails(await ferry(['pack', '-o', 'x.ferry.tar']), 2, [/no images named/]);
  });
});

describe('help text', () => {
  const commands = ['pack', 'inspect', 'verify', 'load', 'push', 'inventory', 'site add', 'site import', 'key generate'];

  it('shows no [default: []] (beside [required] or anywhere)', async () => {
    for (const c of commands) {
      const run = await ferry([...c.split(' '), '--help']);
      assert.equal(run.code, 0, c);
      assert.doesNotMatch(run.stdout, /\[default: \[\]\]/, c);
    }
  });

  it('never wraps inside an example command: each is "# what" then the command, continued only with " \\"', async () => {
    for (const c of commands) {
      const { stdout } = await ferry([...c.split(' '), '--help']);
      const at = stdout.indexOf('\nExamples:\n');
      if (at < 0) continue;
      const lines = stdout.slice(at + '\nExamples:\n'.length).split('\n').filter((l) => l.trim() !== '');
      for (const [k, line] of lines.entries()) {
        const continued = k > 0 && lines[k - 1]!.endsWith(' \\');
        assert.ok(/^ {2}(# |ferry )/.test(line) || continued, `${c}: example line ${JSON.stringify(line)} is neither a "# what", a command, nor a continued command`);
        assert.ok(line.length <= 100, `${c}: ${line} is longer than the help width`);
      }
    }
  });
});
