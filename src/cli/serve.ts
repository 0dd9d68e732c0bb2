// `ferry serve`: bundles answered as a read-only OCI registry, straight from the tar files (nothing extracted), so
// every node of a cluster can pull from it; runs until Ctrl-C or SIGTERM.
import { dirname, join } from 'node:path';
import type { CommandModule } from 'yargs';
import { openBundles } from '../bundle/volume-set.js';
import { rebuildBeside } from '../transfer/deltas.js';
import { checkBundles } from '../transfer/preflight.js';
import { Htpasswd } from '../serve/access.js';
import { BlobSource } from '../serve/blob-source.js';
import { DistributionApi } from '../serve/distribution-api.js';
import { Referrers } from '../serve/referrers.js';
import { ServedSet } from '../serve/served-set.js';
import { startServer, type AccessEntry } from '../serve/server.js';
import { FerryError } from '../ui/errors.js';
import { example } from './help.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';

interface ServeArgs {
  bundles: string[];
  listen: string;
  /** A string, or several when repeated (not an array option: that would take the bundles after it too). */
  retag?: string | string[];
  'tls-cert'?: string;
  'tls-key'?: string;
  htpasswd?: string;
  insecure?: boolean;
  'rebuild-dir'?: string;
  'check-ahead': boolean;
  json?: boolean;
  quiet?: boolean;
}

export function serveCommand(signal: AbortSignal): CommandModule<object, ServeArgs> {
  return {
    command: 'serve <bundles..>',
    describe: 'serve bundles as a read-only registry (OCI distribution API) that docker, containerd and skopeo pull from',
    builder: (y) =>
      y
        .positional('bundles', { type: 'string', array: true, demandOption: true, describe: 'bundles to serve: several, a thin bundle with those it builds on, every volume of a set' })
        .option('listen', { type: 'string', default: '127.0.0.1:5000', describe: 'ADDR:PORT to listen on (port 0 picks a free one)' })
        .option('retag', { type: 'string', describe: `serve images under other names: ${RETAG_DESCRIPTION}` })
        .option('tls-cert', { type: 'string', describe: 'serve HTTPS with this certificate (PEM; reloaded when the file changes)' })
        .option('tls-key', { type: 'string', describe: 'the key of --tls-cert (PEM)' })
        .option('htpasswd', { type: 'string', describe: 'require Basic auth from the users of this file (bcrypt, as `htpasswd -B` writes it)' })
        .option('insecure', { type: 'boolean', describe: 'serve plain HTTP on an address other than loopback' })
        .option('check-ahead', { type: 'boolean', default: true, describe: 'check every blob against its digest in the background from the start (--no-check-ahead: each only when first asked for, for bundles on slow media)' })
        .option('rebuild-dir', { type: 'string', describe: 'where delta layers are rebuilt (default: .ferry-rebuilt beside the first bundle)' })
        .example(...example('$0 serve week48.ferry.tar', 'at 127.0.0.1:5000'))
        .example(...example('$0 serve *.ferry.tar --listen 0.0.0.0:5443 --tls-cert reg.crt --tls-key reg.key', 'for a whole cluster, over TLS')),
    handler: async (args) => {
      const { host, port } = listenAddress(args.listen);
      const tls = args['tls-cert'] || args['tls-key'] ? { cert: required(args['tls-cert'], '--tls-cert'), key: required(args['tls-key'], '--tls-key') } : undefined;
      if (!tls && !args.insecure && !isLoopback(host)) {
        throw new FerryError('USAGE', `plain HTTP on ${host} would let anyone on the network read (and tamper with) what is served`, { hint: 'give --tls-cert and --tls-key, or --insecure to serve plain HTTP anyway, or listen on 127.0.0.1' });
      }
      const rules = retagRules(args.retag === undefined ? undefined : [args.retag].flat());
      const htpasswd = args.htpasswd ? await Htpasswd.read(args.htpasswd) : undefined;
      const { bundles } = await openBundles(args.bundles);
      try {
        await checkBundles(bundles, 'served');
        const rebuilt = await rebuildBeside(bundles, args['rebuild-dir'] ?? join(dirname(args.bundles[0]!), '.ferry-rebuilt'), signal);
        const set = new ServedSet(bundles, rules);
        const source = await BlobSource.open(bundles);
        const api = new DistributionApi(set, source, await Referrers.read(bundles));
        const log = args.json
          ? (e: AccessEntry) => process.stdout.write(`${JSON.stringify(e)}\n`)
          : (e: AccessEntry) => process.stdout.write(`${e.time} ${e.remote} "${e.method} ${e.path}" ${e.status} ${e.bytes}${e.complete ? '' : ' (cut short)'} ${e.ms}ms "${e.userAgent}"\n`);
        const warn = (m: string): void => void (!args.quiet && process.stderr.write(`warning: ${m}\n`));
        const serving = await startServer(api, { host, port, ...(tls ? { tls } : {}), ...(htpasswd ? { htpasswd } : {}), log, warn });
        const where = `${tls ? 'https' : 'http'}://${serving.address.family === 'IPv6' ? `[${serving.address.address}]` : serving.address.address}:${serving.address.port}`;
        if (!args.quiet) {
          process.stderr.write(`Serving ${set.images} image(s) in ${set.repositoryPaths().length} repositories from ${bundles.length} bundle(s)${rebuilt ? ` (${rebuilt} delta layer(s) rebuilt)` : ''}\n`);
          process.stderr.write(`Listening on ${where} (Ctrl-C stops)\n`);
        }
        const checking = args['check-ahead'] ? source.checkAhead(set.pulledBlobs(), warn, signal).catch((err: unknown) => warn(`checking ahead stopped: ${(err as Error).message}`)) : undefined;
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
        await serving.close();
        await checking;
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
      }
      // Stopped by a signal, as a server is: that is its normal end.
      process.exitCode = 0;
    },
  };
}

function listenAddress(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new FerryError('USAGE', `--listen ${listen} is not ADDR:PORT`, { hint: 'e.g. --listen 127.0.0.1:5000, --listen 0.0.0.0:5443, --listen [::1]:5000' });
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new FerryError('USAGE', `${flag} is needed with ${flag === '--tls-cert' ? '--tls-key' : '--tls-cert'}`, { hint: 'give both --tls-cert and --tls-key' });
  return value;
}
