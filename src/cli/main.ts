// The ferry command line: yargs wiring, one module per command, and the one place errors become exit codes.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT, FerryError, toFerryError } from '../ui/errors.js';
import { printError } from '../ui/output.js';
import { VERSION } from '../version.js';
import { packCommand } from './pack.js';
import { inspectCommand } from './inspect.js';
import { verifyCommand } from './verify.js';
import { loadCommand } from './load.js';
import { pushCommand } from './push.js';
import { inventoryCommand } from './inventory.js';
import { siteCommand } from './site.js';
import { keyCommand } from './key.js';

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
    await yargs(argv.length ? argv : ['--help'])
      .scriptName('ferry')
      .usage('$0 <command> [options]\n\nMove container images across air gaps in bundles.')
      .option('json', { type: 'boolean', describe: 'print one machine-readable result on stdout', global: true })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'no progress on stderr', global: true })
      .command(packCommand(controller.signal))
      .command(inspectCommand())
      .command(verifyCommand(controller.signal))
      .command(loadCommand(controller.signal))
      .command(pushCommand(controller.signal))
      .command(inventoryCommand(controller.signal))
      .command(siteCommand())
      .command(keyCommand())
      .demandCommand(1, 'name a command: pack, inspect, verify, load, push, inventory, site or key')
      .strict()
      .version(VERSION)
      .help()
      .wrap(Math.min(110, process.stdout.columns || 100))
      .fail((msg, err) => {
        if (err) throw err;
        throw new FerryError('USAGE', msg, { hint: 'see `ferry --help` or `ferry <command> --help`' });
      })
      .parseAsync(hideBin(['node', 'ferry', ...argv]));
  } catch (err) {
    // Whatever broke first after a signal, the user's answer is "interrupted".
    const fe = controller.signal.aborted ? toFerryError(controller.signal.reason) : toFerryError(err);
    printError(fe, json);
    process.exitCode = fe.exitCode;
    return;
  }
  process.exitCode = process.exitCode ?? EXIT.ok;
}
