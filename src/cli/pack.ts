// `ferry pack`: parse arguments, resolve images in their sources, write one bundle, print what it holds.
import { access, constants, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { BundleTarget } from '../targets/bundle.js';
import type { Compression } from '../image/media-types.js';
import { describeSources, resolveAll, type ResolvedSource } from '../sources/open.js';
import { parsePlatform } from '../image/platform.js';
import { packImages } from '../transfer/pack.js';
import { dryRunView, planPack, type PackPlan } from '../transfer/pack-plan.js';
import { packExtras, type PackExtras } from '../transfer/pack-extras.js';
import { checkPackPlatforms } from '../transfer/pack-platforms.js';
import { registryOptions, withRegistryOptions, type RegistryArgs } from './registry-options.js';
import { daemonEndpoint, withDaemonOptions, type DaemonArgs } from './daemon-options.js';
import { FerryError } from '../ui/errors.js';
import { formatBytes, Meter, progressMode, runSteps, type Step } from '../ui/progress.js';
import type { BundleIndex } from '../bundle/format.js';
import { Catalog } from '../catalog/catalog.js';
import { loadSigner } from '../sign/signature.js';
import { BundleReader } from '../bundle/reader.js';
import { writeVolumes } from '../bundle/volumes.js';
import { parseSize } from './size-option.js';
import { cacheOptions } from './cache.js';
import { printDryRun, printPacked } from './pack-report.js';
import { copyToStdout, refuseTerminal, stdoutStagingPath } from '../files/to-stdout.js';
import { recordBundles } from '../sync/site-state.js';
import { example } from './help.js';
import { readImageList } from './image-list.js';

interface PackArgs extends RegistryArgs, DaemonArgs {
  images?: string[];
  file?: string[];
  output?: string;
  compression: Compression;
  level?: number;
  platform?: string[];
  'all-platforms'?: boolean;
  recompress?: boolean;
  json?: boolean;
  quiet?: boolean;
  'concurrent-saves': number;
  have?: string[];
  since?: string[];
  site?: string;
  delta?: boolean;
  'confirmed-only'?: boolean;
  'dry-run'?: boolean;
  sign?: string;
  'max-volume-size'?: string;
}

export function packCommand(signal: AbortSignal): CommandModule<object, PackArgs> {
  return {
    command: 'pack [images..]',
    describe: 'write images from a Docker daemon, registries, archives, OCI layouts or other bundles into one bundle',
    builder: (y) =>
      withRegistryOptions(
        withDaemonOptions(y
          .positional('images', {
            type: 'string',
            array: true,
            default: undefined,
            describe: 'images: NAME[:TAG] or ID (local daemon), docker://HOST/REPO:TAG, docker-archive:FILE[:REF], oci:DIR[:REF], oci-archive:FILE[:REF], bundle:FILE[:REF]',
          })
          .option('file', { alias: 'f', type: 'string', array: true, describe: 'a list of images: one per line, or YAML (a list, or images: [...])' })
          .option('output', { alias: 'o', type: 'string', describe: 'the bundle to write (appears only when complete); - for stdout, to pipe it on (written to TMPDIR first)' })
          .option('compression', { choices: ['zstd', 'gzip', 'none'] as const, default: 'zstd' as Compression, describe: 'compression of layers ferry compresses (daemon and archive layers); gzip or none for engines older than Docker 23' })
          .option('level', { type: 'number', describe: 'compression level (zstd 1-19, default 3; gzip 1-9, default 6)' })
          .option('platform', { type: 'string', array: true, describe: 'os/arch[/variant] to take from multi-platform images (several: a,b or repeat); default: this host\'s' })
          .option('all-platforms', { type: 'boolean', describe: 'keep every platform of a multi-platform image, and its index byte for byte' })
          .option('recompress', { type: 'boolean', describe: 'recompress pulled layers with --compression: smaller, but manifest and index digests change' })
          .option('concurrent-saves', { type: 'number', default: 3, hidden: true })
          .option('have', { type: 'string', array: true, describe: 'what the target already holds: an inventory, a receipt or an earlier bundle (repeatable); the bundle leaves those layers out' })
          .option('since', { type: 'string', array: true, describe: 'an earlier bundle the target has applied (as --have BUNDLE)' })
          .option('site', { type: 'string', describe: 'plan against a catalogued site (its last inventory, receipts, and the bundles made for it since), and record this bundle for it' })
          .option('max-volume-size', { type: 'string', describe: 'split the bundle into volumes of at most this size for fixed-size media (4.7G, 700MB, 512MiB): NAME.001.ferry.tar, NAME.002…' })
          .option('sign', { type: 'string', describe: 'sign the bundle with this private key (NAME.key from `ferry key generate`)' })
          .option('delta', { type: 'boolean', default: true, describe: 'in a thin bundle, carry a changed layer as a delta against layers the target holds (--no-delta: whole layers only)' })
          .option('dry-run', { type: 'boolean', describe: 'resolve and plan only: say which layers would travel and which the target already holds; write and record nothing' })
          .option('confirmed-only', { type: 'boolean', describe: 'with --site: count only what inventories and receipts confirm, not bundles sent without word back' })
          .conflicts('platform', 'all-platforms')
          .example(...example('$0 pack nginx:1.27 redis:7 -o week47.ferry.tar', 'two images from the local daemon'))
          .example(...example('$0 pack docker://registry.example/team/app:2.4 --platform linux/amd64,linux/arm64 -o app.ferry.tar', 'two platforms from a registry, digests kept'))
          .example(...example('$0 pack bundle:week47.ferry.tar:nginx:1.27 docker-archive:old.tar -o merged.ferry.tar', 'a subset of a bundle plus a docker-save archive'))
          .example(...example('$0 pack -f images.yaml -o week48.ferry.tar --compression gzip', 'a list, loadable by Docker 20.10'))
          .example(...example('$0 pack -f images.yaml --have site-b.inventory.json -o week48.ferry.tar', 'only what site B lacks'))
          .example(...example('$0 pack -f images.yaml --site site-b -o week48.ferry.tar', 'only what the catalog says site B lacks, and record the bundle'))),
      ),
    handler: async (args) => {
      // An optional array positional without a default (so help shows none) is [undefined] when nothing is given.
      const names = (args.images ?? []).filter((a) => a !== undefined);
      for (const f of args.file ?? []) names.push(...(await readImageList(f)));
      if (names.length === 0) throw new FerryError('USAGE', 'no images named', { hint: 'name images as arguments or in a list file with -f' });
      const level = checkLevel(args.compression, args.level);
      const platforms = parsePlatforms(args.platform ?? []);
      const optionsFor = registryOptions(args);
      if (args.output === undefined && !args['dry-run']) throw new FerryError('USAGE', 'missing --output (-o): the bundle to write', { hint: 'name it with -o FILE, or plan only with --dry-run' });
      const toStdout = args.output === '-' && !args['dry-run'];
      if (toStdout) {
        refuseTerminal('a bundle');
        if (args.json) throw new FerryError('USAGE', '--json with -o -: the bundle takes stdout', { hint: 'write the bundle to a file to get the --json summary, or drop --json (the summary goes to stderr)' });
        if (args['max-volume-size'] !== undefined) throw new FerryError('USAGE', '--max-volume-size with -o -: volumes are files', { hint: 'name the volumes with -o NAME.ferry.tar, or pipe the whole bundle to split(1)' });
      }
      const output = toStdout ? stdoutStagingPath() : resolve(args.output ?? 'dry-run.ferry.tar');
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      const maxVolume = args['max-volume-size'] !== undefined ? parseSize(args['max-volume-size'], '--max-volume-size') : undefined;
      if (maxVolume !== undefined && maxVolume < 1_000_000) throw new FerryError('USAGE', `--max-volume-size ${args['max-volume-size']} is under 1 MB; no volume could hold its own indexes`, { hint: 'give a size of at least 1MB, e.g. --max-volume-size 4.7G for a DVD' });
      // Volumes are cut from a whole bundle written first beside them, then removed. Its name is fixed, so a run
      // after a killed one finds (and reuses) what that one wrote.
      const whole = maxVolume !== undefined ? join(dirname(output), `.${basename(output)}.whole`) : output;
      let volumes: { path: string; index: BundleIndex }[] = [];
      let reused = 0;
      if (!args['dry-run']) await checkOutputDir(output);
      if (args['confirmed-only'] && !args.site) throw new FerryError('USAGE', '--confirmed-only needs --site', { hint: 'it says which of a catalogued site\'s records count' });
      const haves = [...(args.have ?? []), ...(args.since ?? [])];
      const thin = haves.length > 0 || args.site !== undefined;
      let catalog: Catalog | undefined;
      if (args.site) {
        catalog = Catalog.open();
        catalog.requireSite(args.site);
      }
      const mode = progressMode(args);
      const warn = (message: string): void => void (mode !== 'quiet' && process.stderr.write(`warning: ${message}\n`));
      let parts: ResolvedSource[] = [];
      let index: BundleIndex | undefined;
      let plan: PackPlan | undefined;
      let extras: PackExtras | undefined;
      const started = Date.now();
      const resolveStep: Step = {
        title: `Resolve ${names.length} image name${names.length === 1 ? '' : 's'} (${describeSources(names)})`,
        run: async () => {
          parts = await resolveAll(names, { concurrentSaves: args['concurrent-saves'], registry: optionsFor, warn, daemon: () => daemonEndpoint(args), platforms, allPlatforms: args['all-platforms'] ?? false, signal });
          for (const p of parts) checkPackPlatforms(p.resolved, platforms, p.source.transport === 'docker-daemon' ? 'the Docker daemon' : undefined);
        },
      };
      const planStep: Step = {
        title: `Plan against what the target holds (${[...haves, ...(args.site ? [`site ${args.site}`] : [])].join(', ')})`,
        run: async () => {
          plan = await planPack(
            parts.flatMap((p) => p.resolved.images),
            { haves, recompress: args.recompress ?? false, ...(catalog && args.site ? { site: { catalog, name: args.site, confirmedOnly: args['confirmed-only'] ?? false } } : {}) },
          );
        },
      };
      const writeStep: Step = {
        title: `Write layers to ${toStdout ? 'stdout (staged in TMPDIR)' : args.output} (${args.compression} where ferry compresses, pulled blobs ${args.recompress ? 'recompressed' : 'kept as they are'})`,
        run: async (step) => {
          const meter = new Meter();
          const target = await BundleTarget.create(whole, { compression: args.compression, recompress: args.recompress ?? false, ...(level !== undefined ? { level } : {}), ...(signer ? { signer } : {}) });
          extras = await packExtras({ parts, ...(plan ? { plan } : {}), haves, delta: args.delta !== false, ...cacheOptions(), ...(signal ? { signal } : {}) });
          await packImages(parts, target, {
            recompress: args.recompress ?? false,
            ...(plan ? { plan } : {}),
            ...(extras.offer ? { delta: extras.offer } : {}),
            events: {
              planned: (n) => meter.plan(n),
              read: (n) => {
                meter.add(n);
                step.update(meter.text());
              },
              // A kept blob's uncompressed size is known only when its check ends, after this event.
              layer: (l) => !l.repeat && step.log(`layer ${l.done}/${l.total}: ${l.uncompressedSize ? `${formatBytes(l.uncompressedSize)} -> ` : 'kept, '}${formatBytes(l.size)}; ${meter.text()}`),
            },
            signal,
          });
          index = target.index;
          await extras.shipped(whole);
          reused = target.reused;
        },
      };
      const splitStep: Step = {
        title: `Split into volumes of at most ${formatBytes(maxVolume ?? 0)}`,
        run: async () => {
          const full = await BundleReader.open(whole);
          try {
            volumes = await writeVolumes(full, output, maxVolume!, { ...(signer ? { signer } : {}), signal });
          } finally {
            await full.close();
            await rm(whole, { force: true });
          }
        },
      };
      try {
        await runSteps([resolveStep, ...(thin ? [planStep] : []), ...(args['dry-run'] ? [] : [writeStep]), ...(maxVolume !== undefined && !args['dry-run'] ? [splitStep] : [])], mode);
      } catch (err) {
        catalog?.close();
        if (whole !== output || toStdout) await rm(whole, { force: true });
        throw err;
      } finally {
        await extras?.close();
        for (const p of parts) await p.source.close();
      }
      if (args['dry-run']) {
        catalog?.close();
        printDryRun(dryRunView(parts.flatMap((p) => p.resolved.images), plan, { recompress: args.recompress ?? false, compression: args.compression }), args.json ? 'json' : mode);
        return;
      }
      if (toStdout) {
        try {
          await copyToStdout(output, signal);
        } finally {
          await rm(output, { force: true });
        }
      }
      try {
        if (catalog && args.site) recordBundles(catalog, args.site, volumes.length ? volumes : [{ path: toStdout ? '(stdout)' : output, index: index! }]);
      } finally {
        catalog?.close();
      }
      printPacked({
        index: index!,
        output: toStdout ? '-' : output,
        named: toStdout ? 'stdout' : args.output!,
        seconds: (Date.now() - started) / 1000,
        reused,
        volumes,
        recompressedKept: (args.recompress ?? false) && parts.some((p) => p.resolved.images.some((i) => i.manifest)),
        thin,
        ...(args.site ? { site: args.site } : {}),
      }, args.json ? 'json' : mode);
    },
  };
}

function parsePlatforms(list: readonly string[]) {
  try {
    return list.flatMap((p) => p.split(',')).filter((p) => p.trim() !== '').map(parsePlatform);
  } catch (err) {
    throw new FerryError('USAGE', (err as Error).message, { hint: 'e.g. --platform linux/amd64, or several: --platform linux/amd64,linux/arm64' });
  }
}

function checkLevel(c: Compression, level: number | undefined): number | undefined {
  if (level === undefined) return undefined;
  if (Number.isNaN(level)) throw new FerryError('USAGE', '--level takes a whole number', { hint: 'zstd takes 1-19 (default 3), gzip 1-9 (default 6)' });
  const [lo, hi] = c === 'zstd' ? [1, 19] : c === 'gzip' ? [1, 9] : [0, 0];
  if (c === 'none' || !Number.isInteger(level) || level < lo || level > hi) {
    throw new FerryError('USAGE', c === 'none' ? '--level has no meaning with --compression none' : `--level ${level} is out of range for ${c} (${lo}-${hi})`, {
      hint: c === 'none' ? 'leave out --level, or choose --compression zstd or gzip' : `give a level from ${lo} to ${hi}, or leave it out for the default`,
    });
  }
  return level;
}

async function checkOutputDir(output: string): Promise<void> {
  const dir = dirname(output);
  const hint = 'create the directory or choose another -o path';
  const why = (err: unknown): string => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'it does not exist';
    if (code === 'ENOTDIR') return 'a part of that path is not a directory';
    if (code === 'EROFS') return 'it is on a read-only file system';
    if (code === 'EACCES' || code === 'EPERM') return 'it is not writable (permission denied)';
    return `it is not usable (${code ?? String(err)})`;
  };
  let s;
  try {
    s = await stat(dir);
  } catch (err) {
    throw new FerryError('OUTPUT', `cannot write to ${dir}: ${why(err)}`, { hint });
  }
  if (!s.isDirectory()) throw new FerryError('OUTPUT', `cannot write to ${dir}: it is not a directory`, { hint });
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new FerryError('OUTPUT', `cannot write to ${dir}: ${why(err)}`, { hint: 'choose another -o path' });
  }
  try {
    if ((await stat(output)).isDirectory()) throw new FerryError('OUTPUT', `${output} is a directory`, { hint: 'give -o a file name, e.g. -o week47.ferry.tar' });
  } catch (err) {
    if (err instanceof FerryError) throw err;
  }
}
