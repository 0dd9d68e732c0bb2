// The ferry command line: yargs wiring, one module per command, and the one place errors become exit codes.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT, FerryError, toFerryError } from '../ui/errors.js';
import { printError } from '../ui/output.js';
import { VERSION } from '../version.js';
import { helpWidth } from './help.js';
import { unknown } from './suggest.js';
import type { CommandModule } from 'yargs';

/**
 * The commands, each imported only when it runs: the others' modules (the catalog, YAML, the registry client…)
 * are a good part of ferry's start-up time, which every `ferry load` would otherwise pay before its first byte.
 */
const COMMANDS: Record<string, (signal: AbortSignal) => Promise<CommandModule<object, never>>> = {
  pack: async (signal) => (await import('./pack.js')).packCommand(signal) as CommandModule<object, never>,
  inspect: async () => (await import('./inspect.js')).inspectCommand() as CommandModule<object, never>,
  verify: async (signal) => (await import('./verify.js')).verifyCommand(signal) as CommandModule<object, never>,
  load: async (signal) => (await import('./load.js')).loadCommand(signal) as CommandModule<object, never>,
  push: async (signal) => (await import('./push.js')).pushCommand(signal) as CommandModule<object, never>,
  inventory: async (signal) => (await import('./inventory.js')).inventoryCommand(signal) as CommandModule<object, never>,
  site: async () => (await import('./site.js')).siteCommand() as CommandModule<object, never>,
  key: async () => (await import('./key.js')).keyCommand() as CommandModule<object, never>,
  cache: async () => (await import('./cache.js')).cacheCommand() as CommandModule<object, never>,
  serve: async (signal) => (await import('./serve.js')).serveCommand(signal) as CommandModule<object, never>,
};

/** The commands to wire: the one named (global options are flags, so it is the first word), else all (for help). */
async function commandsFor(argv: readonly string[], signal: AbortSignal): Promise<CommandModule<object, never>[]> {
  const first = argv.find((a) => !a.startsWith('-'));
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
  return Promise.all(names.map((n) => COMMANDS[n]!(signal)));
}

export async function main(argv: string[]): Promise<void> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new FerryError('INTERRUPTED', `interrupted by ${sig}; partial output removed`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const json = argv.includes('--json');
  try {
    // Bare `ferry` prints the help, as bare `docker` does.
    const args = argv.length > 0 ? argv : ['--help'];
    const commands = await commandsFor(args, controller.signal);
    let cli = yargs(args)
      .scriptName('ferry')
      .usage('$0 <command> [options]\n\nMove container images across air gaps in bundles.')
      .option('json', { type: 'boolean', describe: 'print one machine-readable result on stdout', global: true })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'no progress on stderr', global: true });
    for (const c of commands) cli = cli.command(c);
    await cli
      .demandCommand(1, 'name a command: pack, inspect, verify, load, push, serve, inventory, site, key or cache')
      .strict()
      .version(VERSION)
      .help()
      .wrap(helpWidth())
      // recommendCommands reports its guess as a failure of its own, then strict mode the unknown word: one error.
      .recommendCommands()
      .fail((msg, err, usage) => {
        if (err) throw err;
        if (/^Did you mean /.test(msg)) return;
        const command = args.find((a) => !a.startsWith('-'));
        const help = command !== undefined && Object.hasOwn(COMMANDS, command) ? `see \`ferry ${command} --help\`` : 'see `ferry --help` or `ferry <command> --help`';
        const flags = Object.keys((usage as unknown as { getDescriptions?: () => Record<string, string> }).getDescriptions?.() ?? {});
        const { message, mean } = unknown(msg, args, flags, Object.keys(COMMANDS));
        throw new FerryError('USAGE', message, { hint: mean ? `${mean} ${help}` : help });
      })
      .parseAsync(hideBin(['node', 'ferry', ...args]));
  } catch (err) {
    // Whatever broke first after a signal, the user's answer is "interrupted".
    // A command that says more of what an interruption left (load: what the daemon kept) is heard instead.
    const fe = controller.signal.aborted && !(err instanceof FerryError && err.code === 'INTERRUPTED') ? toFerryError(controller.signal.reason) : toFerryError(err);
    printError(fe, json);
    process.exitCode = fe.exitCode;
    return;
  }
  process.exitCode = process.exitCode ?? EXIT.ok;
}
