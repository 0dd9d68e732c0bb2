// `ferry push`: a bundle into a registry under --to HOST[:PORT][/PREFIX], renamed by --retag rules.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { RegistryClient } from '../registry/client.js';
import { RegistrySink } from '../sinks/registry.js';
import { dryRun, executePush, parsePushTarget, planPush, type PushCompression, type PushResult } from '../transfer/push.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';
import { registryOptions, withRegistryOptions, type RegistryArgs } from './registry-options.js';
import { writeDocument } from '../sync/documents.js';
import { makeReceipt, type ImageOutcome } from '../sync/receipts.js';
import { loadSigner, loadVerifier } from '../sign/signature.js';
import { toFerryError } from '../ui/errors.js';

interface PushArgs extends RegistryArgs {
  bundle: string;
  images?: string[];
  to: string;
  retag?: string[];
  compression: PushCompression;
  'dry-run'?: boolean;
  receipt?: string;
  'require-signature'?: string;
  sign?: string;
  json?: boolean;
  quiet?: boolean;
}

export function pushCommand(signal: AbortSignal): CommandModule<object, PushArgs> {
  return {
    command: 'push <bundle> [images..]',
    describe: 'push a bundle (or some of its images) into a registry: only the blobs it lacks, then manifests and indexes',
    builder: (y) =>
      withRegistryOptions(
        y
          .positional('bundle', { type: 'string', demandOption: true })
          .positional('images', { type: 'string', array: true, describe: 'push only these (names or image IDs)' })
          .option('to', { type: 'string', demandOption: true, describe: 'HOST[:PORT][/PREFIX]: each image goes to HOST/PREFIX/<its repository path>' })
          .option('retag', { type: 'string', array: true, describe: `${RETAG_DESCRIPTION}, applied before --to` })
          .option('compression', {
            choices: ['gzip', 'keep'] as const,
            default: 'gzip' as PushCompression,
            describe: 'gzip: zstd layers are pushed as gzip so Docker < 23 can pull them (gzip and plain layers, and their digests, stay); keep: push every blob as stored',
          })
          .option('dry-run', { type: 'boolean', describe: 'print what would be pushed where, asking the registry what it has, writing nothing' })
          .option('require-signature', { type: 'string', describe: 'refuse, before anything is pushed, a bundle not signed by this public key (NAME.pub)' })
          .option('sign', { type: 'string', describe: 'sign the receipt with this private key (written beside it as FILE.sig)' })
          .option('receipt', { type: 'string', describe: 'write a receipt (what the registry holds of this bundle afterwards) to this file, even if the push fails' })
          .example('$0 push week47.ferry.tar --to registry.local:5000/mirror', 'docker.io/library/nginx:1.27 becomes registry.local:5000/mirror/library/nginx:1.27')
          .example('$0 push week47.ferry.tar --to registry.local --retag docker.io/library/=registry.local/', 'docker.io/library/nginx:1.27 becomes registry.local/nginx:1.27')
          .example('$0 push app.ferry.tar --to registry.local:5000 --dry-run', 'the plan only'),
      ),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      const target = parsePushTarget(args.to);
      const optionsFor = registryOptions(args);
      const verifier = args['require-signature'] !== undefined ? await loadVerifier(args['require-signature']) : undefined;
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const bundle = await BundleReader.open(args.bundle);
      const sink = new RegistrySink(new RegistryClient(target.registry, optionsFor(target.registry)));
      const opts = { target, retag: rules, select: args.images ?? [], compression: args.compression, signal };
      try {
        if (verifier) await bundle.checkSignature(verifier);
        const plan = await planPush(bundle, opts);
        if (args['dry-run']) {
          await sink.client.ping(signal);
          const repos = await dryRun(bundle, plan, sink, opts);
          if (args.json) printJson({ bundle: args.bundle, dryRun: true, repositories: repos, untagged: plan.untagged.map((i) => i.imageId) });
          else {
            for (const r of repos) {
              process.stdout.write(`${r.repo}${r.tags.length ? ` (${r.tags.join(', ')})` : ''}\n`);
              for (const b of r.blobs) process.stdout.write(`  ${b.digest.slice(0, 19)} ${formatBytes(b.size).padStart(9)}  ${b.action}\n`);
            }
            for (const i of plan.untagged) process.stdout.write(`not pushed: ${i.imageId.slice(0, 19)} has no name\n`);
          }
          return;
        }
        let result: PushResult | undefined;
        const pushed: ImageOutcome[] = [];
        const receipt = async (failures: string[]): Promise<void> => {
          if (!args.receipt) return;
          const target = { kind: 'registry' as const, id: sink.registry, name: `${sink.registry}${opts.target.prefix ? `/${opts.target.prefix}` : ''}` };
          await writeDocument(args.receipt, makeReceipt('push', target, [bundle.index], [{ bundle: bundle.index, images: pushed }], failures), signer);
        };
        try {
          await runSteps(
            [
              {
                title: `Push ${args.bundle} to ${target.registry}${target.prefix ? `/${target.prefix}` : ''}`,
                run: async (step) => {
                  await sink.client.ping(signal);
                  let n = 0;
                  result = await executePush(bundle, plan, sink, {
                    ...opts,
                    events: {
                      blob: (b) => step.update(`${++n} blob(s): ${b.digest.slice(0, 19)} ${b.outcome}`),
                      manifest: (m) => step.update(`${m.name}`),
                      image: (i) => pushed.push({ image: i.image, refs: [i.name], status: 'pushed', manifest: i.digest, storedAs: i.storedAs }),
                    },
                  });
                },
              },
            ],
            progressMode(args),
          );
        } catch (err) {
          await receipt([toFerryError(err).message]).catch(() => undefined);
          throw err;
        }
        await receipt([]);
        const r = result!;
        if (args.json) printJson({ bundle: args.bundle, registry: target.registry, ...r });
        else if (!args.quiet) {
          for (const i of r.images) process.stderr.write(`Pushed ${i.name} ${i.digest}${i.platform ? ` (${i.platform})` : ''}\n`);
          process.stderr.write(`${r.blobs.uploaded} blob(s) uploaded (${formatBytes(r.bytesUploaded)}), ${r.blobs.mounted} mounted, ${r.blobs.present} already there\n`);
          for (const id of r.untagged) process.stderr.write(`Not pushed: ${id.slice(0, 19)} has no name to push it under (load it instead, or pack it by name)\n`);
        }
      } finally {
        await bundle.close();
        await sink.client.close();
      }
    },
  };
}
