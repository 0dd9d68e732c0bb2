// `ferry verify`: every digest, every diffID after decompression, every cross-reference; exit 3 on any fault.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { verifyBundle } from '../bundle/verify.js';
import { FerryError } from '../ui/errors.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';

interface VerifyArgs {
  bundle: string;
  json?: boolean;
  quiet?: boolean;
}

export function verifyCommand(signal: AbortSignal): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <bundle>',
    describe: 'check every blob digest, layer diffID and cross-reference in a bundle',
    builder: (y) => y.positional('bundle', { type: 'string', demandOption: true }).example('$0 verify week47.ferry.tar', ''),
    handler: async (args) => {
      const bundle = await BundleReader.open(args.bundle);
      const started = Date.now();
      let report: Awaited<ReturnType<typeof verifyBundle>> | undefined;
      try {
        await runSteps(
          [
            {
              title: `Verify ${args.bundle}`,
              run: async (step) => {
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
      if (args.json) printJson({ bundle: args.bundle, ok: true, images: r.images, blobs: r.blobs, bytes: r.bytesRead, seconds });
      else if (!args.quiet) process.stderr.write(`OK: ${r.images} image(s), ${r.blobs} blob(s), ${formatBytes(r.bytesRead)} checked in ${seconds.toFixed(1)} s\n`);
    },
  };
}
