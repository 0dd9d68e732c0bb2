// `ferry verify`: every digest, every diffID after decompression, every cross-reference; exit 3 on any fault.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { openBundles } from '../bundle/volume-set.js';
import { checkSpanning } from '../bundle/pool.js';
import { verifyBundle } from '../bundle/verify.js';
import { FerryError } from '../ui/errors.js';
import { missingFor } from '../sync/applies.js';
import { loadVerifier } from '../sign/signature.js';
import { addHave, holdingsOfBundle } from '../sync/have.js';
import { checkDeltas, type DeltaCheck } from '../transfer/deltas.js';
import { TargetState } from '../sync/target-state.js';
import { printJson } from '../ui/output.js';
import { formatBytes, Meter, progressMode, runSteps, type Step } from '../ui/progress.js';
import { example } from './help.js';

interface VerifyArgs {
  bundles: string[];
  have?: string[];
  key?: string;
  json?: boolean;
  quiet?: boolean;
}

export function verifyCommand(signal: AbortSignal): CommandModule<object, VerifyArgs> {
  return {
    command: 'verify <bundles..>',
    describe: 'check every blob digest, layer diffID and cross-reference in a bundle (or every volume of a set)',
    builder: (y) =>
      y
        .positional('bundles', { type: 'string', array: true, default: undefined, demandOption: true, describe: 'a bundle, or the volumes of a set (in any order)' })
        .option('key', { type: 'string', describe: 'require a signature by this public key (NAME.pub): an unsigned bundle, or one signed by another key or altered, fails' })
        .option('have', { type: 'string', array: true, describe: 'also say whether the bundle can apply to a target that holds this (an inventory, a receipt or an earlier bundle; repeatable): exit 4 if it lacks a relied-on layer' })
        .example(...example('$0 verify week47.ferry.tar', ''))
        .example(...example('$0 verify week48.ferry.tar --have site-b.inventory.json', 'and whether site B has every layer it relies on'))
        .example(...example('$0 verify week48.*.ferry.tar', 'every volume of a set, and that none is missing')),
    handler: async (args) => {
      const verifier = args.key !== undefined ? await loadVerifier(args.key) : undefined;
      const { bundles } = await openBundles(args.bundles);
      const started = Date.now();
      const reports: { path: string; report: Awaited<ReturnType<typeof verifyBundle>> }[] = [];
      const spanFaults: string[] = [];
      let deltas: DeltaCheck | undefined;
      try {
        await runSteps(
          [
            ...bundles.map(
              (bundle): Step => ({
                title: `Verify ${bundle.path}`,
                run: async (step) => {
                  if (verifier) await bundle.checkSignature(verifier);
                  // Bytes are counted as each blob's check ends (its size from the index).
                  const meter = new Meter();
                  meter.plan(bundle.index.blobs.reduce((n, b) => n + b.size, 0));
                  const blobs = new Map(bundle.index.blobs.map((b) => [`blobs/sha256/${b.digest.slice(7)}`, b]));
                  const blob = (b: { done: number; total: number; entry: string }): void => {
                    const known = blobs.get(b.entry);
                    meter.add(known?.size ?? 0);
                    // Every layer gets a line of its own; configs and manifests only move the passing state.
                    (known?.diffId ? step.log : step.update)(`blob ${b.done}/${b.total}: ${b.entry}; ${meter.text()}`);
                  };
                  reports.push({ path: bundle.path, report: await verifyBundle(bundle, { blob }, signal) });
                },
              }),
            ),
            // Blobs too big for one volume are checked whole, across the volumes that hold their pieces.
            ...(bundles.length > 1 && bundles.some((b) => b.index.parts?.length) ? [{ title: 'Verify blobs that span volumes', run: async () => void spanFaults.push(...(await checkSpanning(bundles))) }] : []),
          ],
          progressMode(args),
        );
        if (bundles.some((b) => b.index.deltas?.length)) deltas = await rebuiltDeltas(bundles, args.have ?? [], signal);
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
      }
      const seconds = (Date.now() - started) / 1000;
      const faults = [...reports.flatMap(({ path, report }) => report.faults.map((f) => `${reports.length > 1 ? `${path}: ` : ''}${f.entry}: ${f.problem}`)), ...spanFaults, ...(deltas?.faults ?? []).map((f) => `${f.entry}: ${f.problem}`)];
      if (faults.length) {
        throw new FerryError('BUNDLE_INVALID', `${args.bundles.join(', ')}: ${faults.length} fault(s) found`, {
          details: faults,
          hint: faults.every((f) => /: layer entry "|: and \d+ more unsafe layer entr/.test(f))
            ? "its layers would write outside the image's root when unpacked (the image was built so, or the bundle was altered); load and push refuse them unless --allow-unsafe-layers"
            : 'the bundle is damaged or was altered; copy it again from the source',
        });
      }
      const applies = args.have?.length ? await appliesTo(bundles, args.have) : undefined;
      const label = args.bundles.length > 1 ? `${bundles.length} bundles` : args.bundles[0]!;
      if (applies?.missing.length) {
        throw new FerryError('MISSING_LAYERS', `${label} ${bundles.length > 1 ? 'are' : 'is'} intact but cannot apply to the target ${applies.against.join(' + ')} describes: it lacks ${applies.missing.length} layer(s) relied on`, {
          details: applies.missing,
          hint: 'apply the bundles that carried them first, or pack a bundle against this inventory',
        });
      }
      const total = (k: 'images' | 'blobs' | 'bytesRead'): number => reports.reduce((s, r) => s + r.report[k], 0);
      const set = bundles[0]!.index.volume && bundles.length > 1 ? bundles[0]!.index.volume : undefined;
      if (args.json) {
        printJson({ bundles: args.bundles, ok: true, ...(set ? { set: set.set, volumes: set.count } : {}), ...(verifier ? { signedBy: verifier.keyId } : {}), images: total('images'), blobs: total('blobs'), bytes: total('bytesRead'), seconds, ...(applies ? { applies: true, against: applies.against } : {}) });
      } else if (!args.quiet) {
        process.stderr.write(`OK: ${set ? `all ${set.count} volumes of set ${set.set}, ` : ''}${total('images')} image(s), ${total('blobs')} blob(s), ${formatBytes(total('bytesRead'))} checked in ${seconds.toFixed(1)} s\n`);
        if (verifier) process.stderr.write(`Signed by ${args.key} (${verifier.keyId.slice(0, 23)}…)\n`);
        if (applies) process.stderr.write(`Applies to the target ${applies.against.join(' + ')} describes: it holds every layer the bundle relies on\n`);
        if (deltas?.rebuilt) process.stderr.write(`Rebuilt ${deltas.rebuilt} delta layer(s) from the bundles given and checked them against their diffIDs\n`);
        if (deltas?.unchecked.length) process.stderr.write(`Note: ${deltas.unchecked.length} delta layer(s) not rebuilt: their references are at the target, not in a bundle given (load and push rebuild and check them there first; --have BUNDLE rebuilds them here)\n`);
      }
    },
  };
}

/** rebuiltDeltas rebuilds the deltas whose references are at hand (the bundles given, --have bundles) and checks them. */
async function rebuiltDeltas(bundles: readonly BundleReader[], have: readonly string[], signal?: AbortSignal): Promise<DeltaCheck> {
  const haves: BundleReader[] = [];
  for (const h of have) {
    const r = await BundleReader.open(h).catch(() => undefined);
    if (r) haves.push(r);
  }
  try {
    return await checkDeltas(bundles, haves, signal);
  } finally {
    await Promise.all(haves.map((b) => b.close()));
  }
}

/** appliesTo says which layers a chain of bundles relies on that the target the --have files describe lacks. */
async function appliesTo(bundles: readonly BundleReader[], have: readonly string[]): Promise<{ missing: string[]; against: string[] }> {
  const state = new TargetState();
  for (const h of have) await addHave(state, h);
  const against = [...state.sources];
  // A chain applies in order: what one bundle brings, the next may rely on. (Indexes stay readable after close.)
  const missing: string[] = [];
  // A blob too big for one volume is held by the set once every piece of it is among the bundles given.
  const pieces = new Map<string, Set<number>>();
  for (const p of bundles.flatMap((b) => b.index.parts ?? [])) pieces.set(p.digest, (pieces.get(p.digest) ?? new Set()).add(p.part));
  const spanning = new Set([...pieces].filter(([d, got]) => bundles.some((b) => b.index.parts?.some((p) => p.digest === d && p.parts === got.size))).map(([d]) => d));
  for (const b of bundles) {
    missing.push(...missingFor(b.index, state, spanning));
    state.add(holdingsOfBundle(b.index), { chains: true, blobs: true }, b.path);
  }
  return { missing, against };
}
