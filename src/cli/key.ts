// `ferry key generate`: an Ed25519 key pair for signing bundles, inventories and receipts.
import type { Argv, CommandModule } from 'yargs';
import { generateKeys } from '../sign/signature.js';
import { printJson } from '../ui/output.js';
import { example } from './help.js';

interface KeyArgs {
  name?: string;
  json?: boolean;
  quiet?: boolean;
}

export function keyCommand(): CommandModule<object, KeyArgs> {
  return {
    command: 'key <command>',
    describe: 'signing keys: generate',
    builder: (y: Argv) =>
      y
        .command<KeyArgs>({
          command: 'generate [name]',
          describe: 'write NAME.key (private: keep it on the connected side) and NAME.pub (give it to whoever checks)',
          builder: (a) => a.positional('name', { type: 'string', default: 'ferry', describe: 'path and base name of the two files' }).example(...example('$0 key generate site-a', 'site-a.key and site-a.pub')),
          handler: async (a) => {
            const k = await generateKeys(a.name ?? 'ferry');
            if (a.json) printJson(k);
            else if (!a.quiet) process.stderr.write(`Wrote ${k.privatePath} (private, mode 0600) and ${k.publicPath}; key ID ${k.keyId}\n`);
          },
        })
        .demandCommand(1, 'name a key command: generate'),
    handler: () => undefined,
  };
}
