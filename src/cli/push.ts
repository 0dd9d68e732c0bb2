// `ferry push`: a bundle into a registry under --to HOST[:PORT][/PREFIX], renamed by --retag rules.
import type { CommandModule } from 'yargs';
import type { BundleReader } from '../bundle/reader.js';
import { lookup } from '../bundle/lookup.js';
import { openBundles } from '../bundle/volume-set.js';
import { pooled } from '../bundle/pool.js';
import { splitBundles } from './bundle-args.js';
import { RegistryClient } from '../registry/client.js';
import { RegistrySink } from '../targets/registry.js';
import { dryRun, executePush, parsePushTarget, planPush, type PushCompression, type PushPlan, type PushResult } from '../transfer/push.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';
import { registryOptions, withRegistryOptions, type RegistryArgs } from './registry-options.js';
import { writeDocument } from '../sync/documents.js';
import { makeReceipt, type ImageOutcome } from '../sync/receipts.js';
import { loadSigner, loadVerifier } from '../sign/signature.js';
import { FerryError, toFerryError } from '../ui/errors.js';

interface PushArgs extends RegistryArgs {
  args: string[];
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
    command: 'push <args..>',
    describe: 'push bundles (or some of their images) into a registry: only the blobs it lacks, then manifests and indexes: BUNDLE… [IMAGE…]',
    builder: (y) =>
      withRegistryOptions(
        y
          .positional('args', { type: 'string', array: true, demandOption: true, describe: 'bundle files (volumes of a set in any order), then optionally image names or IDs to push only those' })
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
      const { bundles: paths, images: select } = await splitBundles(args.args);
      // Volumes of a set are checked whole and put in order before anything else.
      const { bundles } = await openBundles(paths);
      const sink = new RegistrySink(new RegistryClient(target.registry, optionsFor(target.registry)));
      const base = { target, retag: rules, compression: args.compression, signal, carried: new Map() };
      try {
        if (verifier) for (const b of bundles) await b.checkSignature(verifier);
        const plans: PushPlan[] = [];
        for (const b of bundles) {
          const names = namesIn(b, select, bundles.length);
          // With names given, a bundle holding none of them pushes nothing (an empty selection would mean all).
          plans.push(select.length && !names.length ? { registry: target.registry, repos: [], untagged: [] } : await planPush(b, { ...base, select: names }));
        }
        const absent = select.filter((n) => !bundles.some((b) => namesIn(b, [n], 2).length));
        if (absent.length) throw new FerryError('IMAGE_NOT_FOUND', `${absent.join(', ')}: in none of the bundles given`, { hint: '`ferry inspect BUNDLE` lists what a bundle holds' });
        if (args['dry-run']) {
          await sink.client.ping(signal);
          const repos = [];
          for (const [k, b] of bundles.entries()) repos.push(...(await dryRun(b, plans[k]!, sink, base)));
          if (args.json) printJson({ bundles: paths, dryRun: true, repositories: repos, untagged: plans.flatMap((p) => p.untagged.map((i) => i.imageId)) });
          else {
            for (const r of repos) {
              process.stdout.write(`${r.repo}${r.tags.length ? ` (${r.tags.join(', ')})` : ''}\n`);
              for (const b of r.blobs) process.stdout.write(`  ${b.digest.slice(0, 19)} ${formatBytes(b.size).padStart(9)}  ${b.action}\n`);
            }
            for (const i of plans.flatMap((p) => p.untagged)) process.stdout.write(`not pushed: ${i.imageId.slice(0, 19)} has no name\n`);
          }
          return;
        }
        const results: PushResult[] = [];
        const pushed = bundles.map(() => [] as ImageOutcome[]);
        const receipt = async (failures: string[]): Promise<void> => {
          if (!args.receipt) return;
          const where = { kind: 'registry' as const, id: sink.registry, name: `${sink.registry}${target.prefix ? `/${target.prefix}` : ''}` };
          const outcomes = bundles.map((b, k) => ({ bundle: b.index, images: pushed[k]! }));
          await writeDocument(args.receipt, makeReceipt('push', where, bundles.map((b) => b.index), outcomes, failures), signer);
        };
        try {
          await runSteps(
            [
              {
                title: `Push ${paths.join(', ')} to ${target.registry}${target.prefix ? `/${target.prefix}` : ''}`,
                run: async (step) => {
                  await sink.client.ping(signal);
                  let n = 0;
                  // In order: a later bundle (volume) may rely on blobs an earlier one pushed.
                  for (const [k, b] of bundles.entries()) {
                    results.push(
                      await executePush(pooled(b, bundles), plans[k]!, sink, {
                        ...base,
                        events: {
                          blob: (x) => step.update(`${++n} blob(s): ${x.digest.slice(0, 19)} ${x.outcome}`),
                          manifest: (m) => step.update(`${m.name}`),
                          image: (i) => pushed[k]!.push({ image: i.image, refs: [i.name], status: 'pushed', manifest: i.digest, storedAs: i.storedAs }),
                        },
                      }),
                    );
                  }
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
        const r: PushResult = {
          images: results.flatMap((x) => x.images),
          blobs: { present: 0, mounted: 0, uploaded: 0 },
          bytesUploaded: results.reduce((s, x) => s + x.bytesUploaded, 0),
          untagged: results.flatMap((x) => x.untagged),
        };
        for (const x of results) for (const o of ['present', 'mounted', 'uploaded'] as const) r.blobs[o] += x.blobs[o];
        if (args.json) printJson({ bundles: paths, registry: target.registry, ...r });
        else if (!args.quiet) {
          for (const i of r.images) process.stderr.write(`Pushed ${i.name} ${i.digest}${i.platform ? ` (${i.platform})` : ''}\n`);
          process.stderr.write(`${r.blobs.uploaded} blob(s) uploaded (${formatBytes(r.bytesUploaded)}), ${r.blobs.mounted} mounted, ${r.blobs.present} already there\n`);
          for (const id of r.untagged) process.stderr.write(`Not pushed: ${id.slice(0, 19)} has no name to push it under (load it instead, or pack it by name)\n`);
        }
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
        await sink.client.close();
      }
    },
  };
}

/** namesIn keeps the names one bundle of several holds (each name must be in at least one; planPush says so for one). */
function namesIn(bundle: BundleReader, names: readonly string[], of: number): string[] {
  if (of === 1) return [...names];
  return names.filter((n) => {
    try {
      lookup(bundle.index, n);
      return true;
    } catch {
      return false;
    }
  });
}
