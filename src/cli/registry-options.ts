// The registry flags `pack` and `push` share (credentials, TLS), turned into options for each registry host.
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { RegistryOptions } from '../registry/client.js';
import { FerryError } from '../ui/errors.js';

export interface RegistryArgs {
  creds?: string;
  'creds-file'?: string;
  'tls-verify': boolean;
  'insecure-registry'?: string[];
}

export function withRegistryOptions<T>(y: Argv<T>): Argv<T & RegistryArgs> {
  return y
    .option('creds', { type: 'string', describe: 'registry credentials USER:PASSWORD (default: ~/.docker/config.json and its helpers)', group: 'Registry:' })
    .option('creds-file', { type: 'string', describe: 'a file holding USER:PASSWORD on its first line (keeps the secret out of the process list)', group: 'Registry:' })
    .option('tls-verify', { type: 'boolean', default: true, describe: 'require HTTPS with a verified certificate (false: also allow plain HTTP)', group: 'Registry:' })
    .option('insecure-registry', { type: 'string', array: true, describe: 'a HOST[:PORT] reached over plain HTTP or unverified TLS, as dockerd\'s flag', group: 'Registry:' }) as Argv<T & RegistryArgs>;
}

/** registryOptions checks the flags once and returns options per registry host. */
export function registryOptions(args: RegistryArgs): (registry: string) => RegistryOptions {
  if (args.creds !== undefined && args['creds-file'] !== undefined) throw new FerryError('USAGE', '--creds and --creds-file are mutually exclusive', { hint: 'give one of them' });
  let creds: RegistryOptions['creds'];
  let text = args.creds;
  if (args['creds-file'] !== undefined) {
    try {
      text = readFileSync(args['creds-file'], 'utf8').split('\n')[0]!.replace(/\r$/, '');
    } catch (err) {
      throw new FerryError('USAGE', `cannot read --creds-file ${args['creds-file']}: ${(err as NodeJS.ErrnoException).code ?? err}`, { hint: 'check the path; the file holds USER:PASSWORD on its first line' });
    }
  }
  if (text !== undefined) {
    const colon = text.indexOf(':');
    if (colon <= 0) throw new FerryError('USAGE', 'credentials must be USER:PASSWORD', { hint: 'e.g. --creds alice:secret, or --creds-file FILE with USER:PASSWORD on its first line' });
    creds = { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  const insecure = new Set((args['insecure-registry'] ?? []).flatMap((h) => h.split(',')).map((h) => h.trim().toLowerCase()));
  return (registry) => ({
    ...(creds ? { creds } : {}),
    insecure: !args['tls-verify'] || insecure.has(registry.toLowerCase()),
  });
}
