// `ferry verify`: every digest, every diffID after decompression, every cross-reference; exit 3 on any fault.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { verifyBundle } from '../bundle/verify.js';
import { FerryError } from '../ui/errors.js';
import { missingFor } from '../sync/applies.js';
import { loadVerifier } from '../sign/signature.js';
import { addHave } from '../sync/have.js';
import { TargetState } from '../sync/target-state.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';

interface VerifyArgs {
  bundle: string;
  have?: string[];
  key?: string;
  json?: boolean;
  quiet?: boolean;
}

export function verifyCommand(signal: AbortSignal): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <bundle>',
    describe: 'check every blob digest, layer diffID and cross-reference in a bundle',
    builder: (y) =>
      y
        .positional('bundle', { type: 'string', demandOption: true })
        .option('key', { type: 'string', describe: 'require a signature by this public key (NAME.pub): an unsigned bundle, or one signed by another key or altered, fails' })
        .option('have', { type: 'string', array: true, describe: 'also say whether the bundle can apply to a target that holds this (an inventory, a receipt or an earlier bundle; repeatable): exit 4 if it lacks a relied-on layer' })
        .example('$0 verify week47.ferry.tar', '')
        .example('$0 verify week48.ferry.tar --have site-b.inventory.json', 'and whether site B has every layer it relies on'),
    handler: async (args) => {
      const verifier = args.key !== undefined ? await loadVerifier(args.key) : undefined;
      const bundle = await BundleReader.open(args.bundle);
      const started = Date.now();
      let report: Awaited<ReturnType<typeof verifyBundle>> | undefined;
      try {
        await runSteps(
          [
            {
              title: `Verify ${args.bundle}`,
              run: async (step) => {
                if (verifier) await bundle.checkSignature(verifier);
                report = await verifyBundle(bundle, { blob: (b) => step.update(`blob ${b.done}/${b.total}: ${b.entry}`) }, signal);
              },
            },
          ],
          progressMode(args),
        );
      } finally {
        await bundle.close();
      }
      const r = report!;
      const seconds = (Date.now() - started) / 1000;
      if (!r.ok) {
        throw new FerryError('BUNDLE_INVALID', `${args.bundle}: ${r.faults.length} fault(s) found`, {
          details: r.faults.map((f) => `${f.entry}: ${f.problem}`),
          hint: 'the bundle is damaged or was altered; copy it again from the source',
        });
      }
      let applies: { missing: string[]; against: string[] } | undefined;
      if (args.have?.length) {
        const state = new TargetState();
        for (const h of args.have) await addHave(state, h);
        // The index stays readable after the file is closed.
        applies = { missing: missingFor(bundle.index, state), against: state.sources };
      }
      if (applies?.missing.length) {
        throw new FerryError('MISSING_LAYERS', `${args.bundle} is intact but cannot apply to the target ${applies.against.join(' + ')} describes: it lacks ${applies.missing.length} layer(s) the bundle relies on`, {
          details: applies.missing,
          hint: 'apply the bundles that carried them first, or pack a bundle against this inventory',
        });
      }
      if (args.json) printJson({ bundle: args.bundle, ok: true, ...(verifier ? { signedBy: verifier.keyId } : {}), images: r.images, blobs: r.blobs, bytes: r.bytesRead, seconds, ...(applies ? { applies: true, against: applies.against } : {}) });
      else if (!args.quiet) {
        process.stderr.write(`OK: ${r.images} image(s), ${r.blobs} blob(s), ${formatBytes(r.bytesRead)} checked in ${seconds.toFixed(1)} s\n`);
        if (verifier) process.stderr.write(`Signed by ${args.key} (${verifier.keyId.slice(0, 23)}…)\n`);
        if (applies) process.stderr.write(`Applies to the target ${applies.against.join(' + ')} describes: it holds every layer the bundle relies on\n`);
      }
    },
  };
}
