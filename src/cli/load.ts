// `ferry load`: bundles into a Docker daemon (-H, DOCKER_HOST, a Docker context), or containerd with --containerd: only the layers it
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
import { cacheOptions } from './cache.js';
import type { CopiedBundle, CopiedImage, CopyResult } from '../transfer/copy.js';
import type { NamedRef } from '../targets/target.js';
import { FerryError, toFerryError } from '../ui/errors.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { formatBytes, Meter, progressMode, runSteps } from '../ui/progress.js';
import { containerdFlag, openLoadPlace, type PlaceArgs } from './load-place.js';
import { stdinAsFile, stdinIsTerminal } from '../files/stdin.js';
import { withDaemonOptions } from './daemon-options.js';
import { example } from './help.js';

interface LoadArgs extends PlaceArgs {
  args?: string[];
  /** A string, or several when repeated (not an array option: that would take the image names after it too). */
  input?: string | string[];
  retag?: string[];
  receipt?: string;
  'require-signature'?: string;
  'allow-unsafe-layers'?: boolean;
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
      withDaemonOptions(y
        .positional('args', { type: 'string', array: true, default: undefined, describe: 'bundle files, in the order they apply (- or none: stdin), then optionally image names or IDs to load only those' })
        .option('input', { alias: 'i', type: 'string', describe: 'a bundle to load, as `docker load -i` takes it (repeatable; the same as naming it first)' })
        .option('containerd', { type: 'string', describe: 'load into containerd at this socket instead of the Docker daemon (default: CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)' })
        .option('namespace', { alias: 'n', type: 'string', default: 'k8s.io', describe: "with --containerd: the namespace (k8s.io is the kubelet's)" })
        .option('snapshotter', { type: 'string', describe: 'with --containerd: unpack into this snapshotter (default: overlayfs, else native)' })
        .option('retag', { type: 'string', array: true, describe: RETAG_DESCRIPTION })
        .option('allow-unsafe-layers', { type: 'boolean', describe: "send layers whose tar entries reach outside the image's root (../ or absolute names, links out, writes through a symlink), which are otherwise refused (exit 3)" })
        .option('require-signature', { type: 'string', describe: 'refuse, before anything is loaded, bundles not signed by this public key (NAME.pub)' })
        .option('sign', { type: 'string', describe: 'sign the receipt with this private key (written beside it as FILE.sig)' })
        .option('receipt', { type: 'string', describe: 'write a receipt (what the daemon holds of these bundles afterwards) to this file, even if the load fails' })
        .conflicts('containerd', ['host', 'context'])
        .example(...example('$0 load week47.ferry.tar --retag docker.io/library/=registry.local/mirror/', 'load all, renamed'))
        .example(...example('$0 load week47.ferry.tar nginx:1.27 --retag nginx:1.27=web:prod', 'one image, one new name'))
        .example(...example('$0 load week46.ferry.tar week47.ferry.tar --receipt site-b.receipt.json', 'two bundles as a chain, with a receipt to carry back'))
        .example(...example('$0 load week47.ferry.tar --containerd /run/k3s/containerd/containerd.sock', "into a k3s node's containerd, namespace k8s.io"))),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      // An optional array positional without a default (so help shows none) is [undefined] when nothing is given.
      const given = (args.args ?? []).filter((a) => a !== undefined);
      const address = await containerdFlag(args.containerd, given);
      const inputs = args.input === undefined ? [] : [args.input].flat();
      // As docker load: with no bundle named, one piped or redirected in is read; `-` names stdin among others.
      if (given.length === 0 && inputs.length === 0 && !stdinIsTerminal()) given.push('-');
      if (given.length === 0 && inputs.length === 0) throw new FerryError('USAGE', 'name at least one bundle to load', { hint: 'ferry load BUNDLE… [IMAGE…], or ferry load < BUNDLE; see `ferry load --help`' });
      const verifier = args['require-signature'] !== undefined ? await loadVerifier(args['require-signature']) : undefined;
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const stdin = given.includes('-') ? await stdinAsFile(signal) : undefined;
      if (stdin) given[given.indexOf('-')] = stdin.path;
      const { bundles: paths, images: select } = await splitBundles(given, inputs).catch(async (err: unknown) => {
        await stdin?.remove();
        throw err;
      });
      // Volumes of a set are checked whole and put in order before anything else.
      // A spooled stdin is unlinked once open: read through the open file, it leaves nothing behind whatever happens.
      const { bundles, loneVolume } = await openBundles(paths).finally(() => stdin?.remove());
      const shown = paths.map((p) => (p === stdin?.path ? 'stdin' : p));
      const place = await openLoadPlace(address, args);
      // At a Docker daemon's site ferry keeps what it loads, as the next delta bundle's references: the daemon hands a
      // layer back only by saving whole images. containerd hands back one blob, so nothing is kept for it.
      const { cache, cacheBytes } = cacheOptions();
      const keep = address === undefined && cache ? { cache, maxBytes: cacheBytes } : undefined;
      let loaded: CopiedBundle[] = [];
      let named: NamedRef[] = [];
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
                  const meter = new Meter();
                  let layers = 0;
                  const r = await loadBundles(bundles, place.target, {
                    select,
                    ...(keep ? { keep } : {}),
                    skipIncomplete: loneVolume,
                    retag: rules,
                    allowUnsafeLayers: args['allow-unsafe-layers'] === true,
                    events: {
                      planned: (n) => meter.plan(n),
                      sent: (n) => {
                        meter.add(n);
                        step.update(meter.text());
                      },
                      layer: (d) => step.log(`layer ${++layers} sent (${d.slice(7, 19)}): ${meter.text()}`),
                      blob: (b) => step.log(`${b.outcome === 'present' ? 'already there' : b.outcome} ${b.digest.slice(0, 19)} (${formatBytes(b.size)}): ${meter.text()}`),
                    },
                    signal,
                  });
                  loaded = r.bundles;
                  named = r.named;
                  if (r.keepFault && !args.quiet) process.stderr.write(`warning: ${r.keepFault}\n`);
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
          if (signal.aborted) throw interruptedLoad(signal.reason, address !== undefined);
          throw err;
        }
        if (args.receipt) await writeReceipt(args.receipt, await place.describe(signal), bundles, loaded, [], signer);
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
        await place.close();
      }
      const images = loaded.flatMap((l) => l.images.map(loadedImage));
      // Tags the load took from other images, as `docker load` reports them.
      const renamed = named.flatMap((n) => (n.movedFrom && n.imageId ? [{ tag: n.name, imageId: n.imageId, previousImageId: n.movedFrom }] : []));
      if (args.json) printJson({ bundles: shown, images, renamed, skipped: loaded.flatMap((l) => l.skipped.map((s) => ({ imageId: s.image.imageId, refs: s.image.refs, missingLayers: s.missing }))), ...(written ? { blobs: { present: written.blobs.present, written: written.blobs.written }, bytesWritten: written.bytesWritten, bytesSent: written.bytesSent } : {}), ...(args.receipt ? { receipt: args.receipt } : {}) });
      else if (!args.quiet) {
        for (const m of renamed) process.stderr.write(`The image ${familiarReference(parseReference(m.tag))} already exists, renaming the old one with ID ${m.previousImageId} to empty string\n`);
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

/** interruptedLoad says what a stopped load leaves (docker load leaves the same): nothing named, what arrived kept. */
function interruptedLoad(reason: unknown, containerd: boolean): FerryError {
  const why = toFerryError(reason).message.replace(/; partial output removed$/, '');
  return containerd
    ? new FerryError('INTERRUPTED', `${why}: nothing was named; what arrived stays in containerd's content store under a lease for 24 hours`, {
        hint: 'run the same load again within that time: it resumes, and sends nothing twice',
      })
    : new FerryError('INTERRUPTED', `${why}: nothing was tagged; the daemon keeps the images it had finished loading, untagged (docker images --filter dangling=true)`, {
        hint: 'run the same load again: it finds those images there, sends only the rest and names them all',
      });
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
