// `ferry load`: bundles into the Docker daemon at DOCKER_HOST, or containerd with --containerd: only the layers it
// lacks, then names; several bundles apply in order as a chain. --receipt writes what it holds afterwards, to carry back.
import type { CommandModule } from 'yargs';
import type { BundleReader } from '../bundle/reader.js';
import { openBundles } from '../bundle/volume-set.js';
import { splitBundles } from './bundle-args.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { writeDocument, type TargetInfo } from '../sync/documents.js';
import { makeReceipt } from '../sync/receipts.js';
import { loadSigner, loadVerifier, type Signer } from '../sign/signature.js';
import { loadBundles } from '../transfer/load.js';
import type { CopiedBundle, CopiedImage, CopyResult } from '../transfer/copy.js';
import { FerryError, toFerryError } from '../ui/errors.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';
import { containerdFlag, openLoadPlace, type PlaceArgs } from './load-place.js';
import { stdinAsFile, stdinIsTerminal } from '../files/stdin.js';

interface LoadArgs extends PlaceArgs {
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
    // [args..], not <args..>: in `load --containerd BUNDLE` yargs gives the bundle to the flag (see containerdFlag).
    command: 'load [args..]',
    describe: 'load bundles (or some of their images) into the Docker daemon or containerd, then name them: BUNDLE… [IMAGE…]',
    builder: (y) =>
      y
        .positional('args', { type: 'string', array: true, default: [], describe: 'bundle files, in the order they apply (- or none: stdin), then optionally image names or IDs to load only those' })
        .option('containerd', { type: 'string', describe: 'load into containerd at this socket instead of the Docker daemon (default: CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)' })
        .option('namespace', { alias: 'n', type: 'string', default: 'k8s.io', describe: "with --containerd: the namespace (k8s.io is the kubelet's)" })
        .option('snapshotter', { type: 'string', describe: 'with --containerd: unpack into this snapshotter (default: overlayfs, else native)' })
        .option('retag', { type: 'string', array: true, describe: RETAG_DESCRIPTION })
        .option('require-signature', { type: 'string', describe: 'refuse, before anything is loaded, bundles not signed by this public key (NAME.pub)' })
        .option('sign', { type: 'string', describe: 'sign the receipt with this private key (written beside it as FILE.sig)' })
        .option('receipt', { type: 'string', describe: 'write a receipt (what the daemon holds of these bundles afterwards) to this file, even if the load fails' })
        .example('$0 load week47.ferry.tar --retag docker.io/library/=registry.local/mirror/', 'load all, renamed')
        .example('$0 load week47.ferry.tar nginx:1.27 --retag nginx:1.27=web:prod', 'one image, one new name')
        .example('$0 load week46.ferry.tar week47.ferry.tar --receipt site-b.receipt.json', 'two bundles as a chain, with a receipt to carry back')
        .example('$0 load week47.ferry.tar --containerd /run/k3s/containerd/containerd.sock', "into a k3s node's containerd, namespace k8s.io"),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      const given = [...args.args];
      const address = await containerdFlag(args.containerd, given);
      // As docker load: with no bundle named, one piped or redirected in is read; `-` names stdin among others.
      if (given.length === 0 && !stdinIsTerminal()) given.push('-');
      if (given.length === 0) throw new FerryError('USAGE', 'name at least one bundle to load', { hint: 'ferry load BUNDLE… [IMAGE…], or ferry load < BUNDLE; see `ferry load --help`' });
      const verifier = args['require-signature'] !== undefined ? await loadVerifier(args['require-signature']) : undefined;
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const stdin = given.includes('-') ? await stdinAsFile(signal) : undefined;
      if (stdin) given[given.indexOf('-')] = stdin.path;
      const { bundles: paths, images: select } = await splitBundles(given).catch(async (err: unknown) => {
        await stdin?.remove();
        throw err;
      });
      // Volumes of a set are checked whole and put in order before anything else.
      // A spooled stdin is unlinked once open: read through the open file, it leaves nothing behind whatever happens.
      const { bundles, loneVolume } = await openBundles(paths).finally(() => stdin?.remove());
      const shown = paths.map((p) => (p === stdin?.path ? 'stdin' : p));
      const place = openLoadPlace(address, args);
      let loaded: CopiedBundle[] = [];
      let written: Pick<CopyResult, 'blobs' | 'bytesWritten' | 'bytesSent'> | undefined;
      try {
        // Every bundle's signature is checked before the first is loaded.
        if (verifier) for (const b of bundles) await b.checkSignature(verifier);
        try {
          await runSteps(
            [
              {
                title: `Load ${shown.join(', ')} into ${place.title}`,
                run: async (step) => {
                  await place.reach(signal);
                  let layers = 0;
                  let stored = 0;
                  let bytes = 0;
                  const r = await loadBundles(bundles, place.target, {
                    select,
                    skipIncomplete: loneVolume,
                    retag: rules,
                    events: {
                      layer: () => step.update(`${++layers} layer(s) sent`),
                      blob: (b) => {
                        if (b.outcome === 'written') bytes += b.size;
                        step.update(`${++stored} blob(s), ${formatBytes(bytes)} written`);
                      },
                    },
                    signal,
                  });
                  loaded = r.bundles;
                  // Targets that store blobs (containerd) say what they had, what was written and what it took.
                  if (place.target.writeBlob) written = { blobs: r.blobs, bytesWritten: r.bytesWritten, bytesSent: r.bytesSent };
                },
              },
            ],
            progressMode(args),
          );
        } catch (err) {
          // A failed load still reports back: nothing of these bundles was named.
          if (args.receipt) await writeReceipt(args.receipt, await place.describe(signal).catch(() => undefined), bundles, [], [toFerryError(err).message], signer).catch(() => undefined);
          throw err;
        }
        if (args.receipt) await writeReceipt(args.receipt, await place.describe(signal), bundles, loaded, [], signer);
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
        await place.close();
      }
      const images = loaded.flatMap((l) => l.images.map(loadedImage));
      if (args.json) printJson({ bundles: shown, images, skipped: loaded.flatMap((l) => l.skipped.map((s) => ({ imageId: s.image.imageId, refs: s.image.refs, missingLayers: s.missing }))), ...(written ? { blobs: { present: written.blobs.present, written: written.blobs.written }, bytesWritten: written.bytesWritten, bytesSent: written.bytesSent } : {}), ...(args.receipt ? { receipt: args.receipt } : {}) });
      else if (!args.quiet) {
        for (const l of images) {
          const names = l.refs.length ? l.refs.map((t) => familiarReference(parseReference(t))).join(', ') : '<untagged>';
          process.stderr.write(`Loaded ${l.imageId.slice(0, 19)} ${names} (${l.layersSent} layer(s) sent, ${l.layersPresent} already present)\n`);
        }
        for (const l of loaded) {
          for (const s of l.skipped) {
            const v = l.bundle.index.volume;
            process.stderr.write(`Left out ${s.image.refs[0] ?? s.image.imageId.slice(0, 19)}: ${s.missing} of its layers are in other volumes of the set${v ? ` (${v.count} volumes)` : ''}; load the whole set to get it\n`);
          }
        }
        if (args.receipt) process.stderr.write(`Receipt written to ${args.receipt}\n`);
      }
    },
  };
}

/** loadedImage is one image as load reports it: its ID, the references it got (no digests), and what was sent. */
function loadedImage(c: CopiedImage): { imageId: string; refs: string[]; status: 'loaded' | 'present'; layersSent: number; layersPresent: number } {
  return { imageId: c.image.imageId, refs: c.names.filter((n) => !n.includes('@')), status: c.status === 'put' ? 'loaded' : 'present', layersSent: c.layersSent, layersPresent: c.layersPresent };
}

async function writeReceipt(path: string, target: TargetInfo | undefined, bundles: readonly BundleReader[], loaded: readonly CopiedBundle[], failures: string[], signer?: Signer): Promise<void> {
  if (!target) return;
  const outcomes = loaded.map((l) => ({
    bundle: l.bundle.index,
    images: l.images.map((c) => ({ image: c.image, refs: loadedImage(c).refs, status: loadedImage(c).status })),
  }));
  await writeDocument(path, makeReceipt('load', target, bundles.map((b) => b.index), outcomes, failures), signer);
}
