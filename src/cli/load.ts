// `ferry load`: bundles into the Docker daemon at DOCKER_HOST: only the layers it lacks, then tags; several bundles
// apply in order as a chain. --receipt writes what the daemon holds afterwards, to carry back.
import { stat } from 'node:fs/promises';
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { DockerEngineClient } from '../engine/client.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { DockerDaemonSink } from '../sinks/docker-daemon.js';
import { describeDaemon } from '../sync/daemon-inventory.js';
import { writeDocument } from '../sync/documents.js';
import { makeReceipt } from '../sync/receipts.js';
import { loadSigner, loadVerifier, type Signer } from '../sign/signature.js';
import { loadBundles, type LoadedBundle } from '../transfer/load.js';
import { FerryError, toFerryError } from '../ui/errors.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { progressMode, runSteps } from '../ui/progress.js';

interface LoadArgs {
  args: string[];
  retag?: string[];
  receipt?: string;
  'require-signature'?: string;
  sign?: string;
  json?: boolean;
  quiet?: boolean;
}

export function loadCommand(signal: AbortSignal): CommandModule<object, LoadArgs> {
  return {
    command: 'load <args..>',
    describe: 'load bundles (or some of their images) into the Docker daemon, then tag: BUNDLE… [IMAGE…]',
    builder: (y) =>
      y
        .positional('args', { type: 'string', array: true, demandOption: true, describe: 'bundle files, in the order they apply, then optionally image names or IDs to load only those' })
        .option('retag', { type: 'string', array: true, describe: RETAG_DESCRIPTION })
        .option('require-signature', { type: 'string', describe: 'refuse, before anything is loaded, bundles not signed by this public key (NAME.pub)' })
        .option('sign', { type: 'string', describe: 'sign the receipt with this private key (written beside it as FILE.sig)' })
        .option('receipt', { type: 'string', describe: 'write a receipt (what the daemon holds of these bundles afterwards) to this file, even if the load fails' })
        .example('$0 load week47.ferry.tar --retag docker.io/library/=registry.local/mirror/', 'load all, renamed')
        .example('$0 load week47.ferry.tar nginx:1.27 --retag nginx:1.27=web:prod', 'one image, one new name')
        .example('$0 load week46.ferry.tar week47.ferry.tar --receipt site-b.receipt.json', 'two bundles as a chain, with a receipt to carry back'),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      const { bundles: paths, images: select } = await splitBundles(args.args);
      const verifier = args['require-signature'] !== undefined ? await loadVerifier(args['require-signature']) : undefined;
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const bundles: BundleReader[] = [];
      const engine = new DockerEngineClient();
      let loaded: LoadedBundle[] = [];
      try {
        for (const p of paths) bundles.push(await BundleReader.open(p));
        // Every bundle's signature is checked before the first is loaded.
        if (verifier) for (const b of bundles) await b.checkSignature(verifier);
        try {
          await runSteps(
            [
              {
                title: `Load ${paths.join(', ')} into the Docker daemon at ${engine.host}`,
                run: async (step) => {
                  await engine.ping();
                  let n = 0;
                  loaded = await loadBundles(bundles, new DockerDaemonSink(engine), {
                    select,
                    retag: rules,
                    events: { layer: () => step.update(`${++n} layer(s) sent`) },
                    signal,
                  });
                },
              },
            ],
            progressMode(args),
          );
        } catch (err) {
          // A failed load still reports back: nothing of these bundles was tagged.
          if (args.receipt && bundles.length === paths.length) await writeReceipt(args.receipt, engine, bundles, [], [toFerryError(err).message], signer).catch(() => undefined);
          throw err;
        }
        if (args.receipt) await writeReceipt(args.receipt, engine, bundles, loaded, [], signer);
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
        await engine.close();
      }
      const images = loaded.flatMap((l) => l.images);
      if (args.json) printJson({ bundles: paths, images, ...(args.receipt ? { receipt: args.receipt } : {}) });
      else if (!args.quiet) {
        for (const l of images) {
          const names = l.tags.length ? l.tags.map((t) => familiarReference(parseReference(t))).join(', ') : '<untagged>';
          process.stderr.write(`Loaded ${l.imageId.slice(0, 19)} ${names} (${l.layersSent} layer(s) sent, ${l.layersPresent} already present)\n`);
        }
        if (args.receipt) process.stderr.write(`Receipt written to ${args.receipt}\n`);
      }
    },
  };
}

/** splitBundles takes the leading arguments that are files as bundles, the rest as image names. */
async function splitBundles(args: readonly string[]): Promise<{ bundles: string[]; images: string[] }> {
  const bundles: string[] = [];
  let k = 0;
  for (; k < args.length; k++) {
    const st = await stat(args[k]!).catch(() => undefined);
    if (!st) break;
    bundles.push(args[k]!);
  }
  if (bundles.length === 0) {
    throw new FerryError('USAGE', `cannot open bundle ${args[0]}: no such file`, { hint: 'name the bundle files first, then any images to load from them' });
  }
  return { bundles, images: args.slice(k) };
}

async function writeReceipt(path: string, engine: DockerEngineClient, bundles: readonly BundleReader[], loaded: readonly LoadedBundle[], failures: string[], signer?: Signer): Promise<void> {
  const target = await describeDaemon(engine);
  const outcomes = loaded.map((l) => ({
    bundle: l.bundle.index,
    images: l.chosen.map((image, k) => ({ image, refs: l.images[k]!.tags, status: l.images[k]!.status })),
  }));
  await writeDocument(path, makeReceipt('load', target, bundles.map((b) => b.index), outcomes, failures), signer);
}
