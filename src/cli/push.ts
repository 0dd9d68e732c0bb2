// `ferry push`: a bundle into a registry under --to HOST[:PORT][/PREFIX], renamed by --retag rules.
import type { CommandModule } from 'yargs';
import { openBundles } from '../bundle/volume-set.js';
import { splitBundles } from './bundle-args.js';
import { formatPlatform } from '../image/platform.js';
import { RegistryClient } from '../registry/client.js';
import { parsePushPlace, RegistryTarget, type PushCompression } from '../targets/registry.js';
import type { CopiedImage, CopyResult } from '../transfer/copy.js';
import { dryRun, pushBundles } from '../transfer/push.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { formatBytes, Meter, progressMode, runSteps } from '../ui/progress.js';
import { registryOptions, withRegistryOptions, type RegistryArgs } from './registry-options.js';
import { writeDocument } from '../sync/documents.js';
import { makeReceipt, type ImageOutcome } from '../sync/receipts.js';
import { loadSigner, loadVerifier } from '../sign/signature.js';
import { toFerryError } from '../ui/errors.js';
import { example } from './help.js';

interface PushArgs extends RegistryArgs {
  args: string[];
  to: string;
  retag?: string[];
  compression: PushCompression;
  'dry-run'?: boolean;
  receipt?: string;
  'require-signature'?: string;
  'allow-unsafe-layers'?: boolean;
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
          .positional('args', { type: 'string', array: true, default: undefined, demandOption: true, describe: 'bundle files (volumes of a set in any order), then optionally image names or IDs to push only those' })
          .option('to', { type: 'string', demandOption: true, describe: 'HOST[:PORT][/PREFIX]: each image goes to HOST/PREFIX/<its repository path>' })
          .option('retag', { type: 'string', array: true, describe: `${RETAG_DESCRIPTION}, applied before --to` })
          .option('compression', {
            choices: ['gzip', 'keep'] as const,
            default: 'gzip' as PushCompression,
            describe: 'gzip: zstd layers are pushed as gzip so Docker < 23 can pull them (gzip and plain layers, and their digests, stay); keep: push every blob as stored',
          })
          .option('dry-run', { type: 'boolean', describe: 'print what would be pushed where, asking the registry what it has, writing nothing' })
          .option('allow-unsafe-layers', { type: 'boolean', describe: "send layers whose tar entries reach outside the image's root (../ or absolute names, links out, writes through a symlink), which are otherwise refused (exit 3)" })
          .option('require-signature', { type: 'string', describe: 'refuse, before anything is pushed, a bundle not signed by this public key (NAME.pub)' })
          .option('sign', { type: 'string', describe: 'sign the receipt with this private key (written beside it as FILE.sig)' })
          .option('receipt', { type: 'string', describe: 'write a receipt (what the registry holds of this bundle afterwards) to this file, even if the push fails' })
          .example(...example('$0 push week47.ferry.tar --to registry.local:5000/mirror', 'docker.io/library/nginx:1.27 becomes registry.local:5000/mirror/library/nginx:1.27'))
          .example(...example('$0 push week47.ferry.tar --to registry.local --retag docker.io/library/=registry.local/', 'docker.io/library/nginx:1.27 becomes registry.local/nginx:1.27'))
          .example(...example('$0 push app.ferry.tar --to registry.local:5000 --dry-run', 'the plan only')),
      ),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      const place = parsePushPlace(args.to);
      const optionsFor = registryOptions(args);
      const verifier = args['require-signature'] !== undefined ? await loadVerifier(args['require-signature']) : undefined;
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const { bundles: paths, images: select } = await splitBundles(args.args);
      // Volumes of a set are checked whole and put in order before anything else.
      const { bundles } = await openBundles(paths);
      const target = new RegistryTarget(new RegistryClient(place.registry, optionsFor(place.registry)), place, args.compression);
      const where = `${place.registry}${place.prefix ? `/${place.prefix}` : ''}`;
      try {
        if (verifier) for (const b of bundles) await b.checkSignature(verifier);
        if (args['dry-run']) {
          await target.client.ping(signal);
          const { repos, untagged } = await dryRun(bundles, target, { select, retag: rules, signal });
          if (args.json) printJson({ bundles: paths, dryRun: true, repositories: repos, untagged: untagged.map((i) => i.imageId) });
          else {
            for (const r of repos) {
              process.stdout.write(`${r.repo}${r.tags.length ? ` (${r.tags.join(', ')})` : ''}\n`);
              for (const b of r.blobs) process.stdout.write(`  ${b.digest.slice(0, 19)} ${formatBytes(b.size).padStart(9)}  ${b.action}\n`);
            }
            for (const i of untagged) process.stdout.write(`not pushed: ${i.imageId.slice(0, 19)} has no name\n`);
          }
          return;
        }
        let result: CopyResult | undefined;
        const receipt = async (failures: string[]): Promise<void> => {
          if (!args.receipt) return;
          const at = { kind: 'registry' as const, id: target.registry, name: where };
          const outcomes = bundles.map((b, k) => ({ bundle: b.index, images: result ? pushedImages(result, k, target) : [] }));
          await writeDocument(args.receipt, makeReceipt('push', at, bundles.map((b) => b.index), outcomes, failures), signer);
        };
        try {
          await runSteps(
            [
              {
                title: `Push ${paths.join(', ')} to ${where}`,
                run: async (step) => {
                  await target.client.ping(signal);
                  const meter = new Meter();
                  const counts = { written: 0, mounted: 0, present: 0 };
                  const tally = (): string => `${counts.written} uploaded, ${counts.mounted} mounted, ${counts.present} already there`;
                  result = await pushBundles(bundles, target, {
                    select,
                    retag: rules,
                    allowUnsafeLayers: args['allow-unsafe-layers'] === true,
                    events: {
                      planned: (n) => meter.plan(n),
                      sent: (n) => {
                        meter.add(n);
                        step.update(`${meter.text()}; ${tally()}`);
                      },
                      // The same outcomes the summary counts, so the last line and the summary agree.
                      blob: (x) => {
                        counts[x.outcome]++;
                        step.log(`${x.outcome === 'written' ? 'uploaded' : x.outcome === 'present' ? 'already there' : 'mounted'} ${x.digest.slice(0, 19)} (${formatBytes(x.size)}); ${tally()}`);
                      },
                    },
                    signal,
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
        const images = r.named.map((n) => {
          const img = r.bundles.flatMap((b) => b.images).find((i) => i.image.imageId === n.imageId && i.manifest === n.digest);
          return { name: n.name, digest: n.digest, ...(n.imageId ? { imageId: n.imageId } : {}), ...(img ? { platform: img.image.platform } : {}) };
        });
        const untagged = r.bundles.flatMap((b) => b.untagged.map((i) => i.imageId));
        const summary = { images, blobs: { present: r.blobs.present, mounted: r.blobs.mounted, uploaded: r.blobs.written }, bytesUploaded: r.bytesWritten, untagged };
        if (args.json) printJson({ bundles: paths, registry: target.registry, ...summary });
        else if (!args.quiet) {
          for (const i of images) process.stderr.write(`Pushed ${i.name} ${i.digest}${i.platform ? ` (${formatPlatform(i.platform)})` : ''}\n`);
          process.stderr.write(`${r.blobs.written} blob(s) uploaded (${formatBytes(r.bytesWritten)}), ${r.blobs.mounted} mounted, ${r.blobs.present} already there\n`);
          for (const id of untagged) process.stderr.write(`Not pushed: ${id.slice(0, 19)} has no name to push it under (load it instead, or pack it by name)\n`);
        }
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
        await target.client.close();
      }
    },
  };
}

/** pushedImages is what a receipt says of one bundle's images: each under the names it was pushed as. */
function pushedImages(result: CopyResult, k: number, target: RegistryTarget): ImageOutcome[] {
  const copied = result.bundles[k];
  if (!copied) return [];
  // An image pushed only as part of an index is in the index's repositories by digest.
  const placesOf = (c: CopiedImage): string[] =>
    c.names.length ? c.names.map((n) => target.fullName(target.placed(n))) : target.reposOf(c.within).map((repo) => target.fullName({ repo, ref: c.manifest }));
  return copied.images.flatMap((c) => placesOf(c).map((name) => ({ image: c.image, refs: [name], status: 'pushed' as const, manifest: c.manifest, storedAs: c.storedAs })));
}
