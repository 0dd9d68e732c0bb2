// `ferry pack`: parse arguments, resolve images in the daemon, write one bundle, print what it holds.
import { access, constants, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import YAML from 'yaml';
import { BundleWriter } from '../bundle/writer.js';
import { DockerEngineClient } from '../engine/client.js';
import type { Compression } from '../image/media-types.js';
import { DockerDaemonSource } from '../sources/docker-daemon.js';
import type { SourceImage } from '../sources/source.js';
import { packImages } from '../transfer/pack.js';
import { FerryError } from '../ui/errors.js';
import { printJson } from '../ui/output.js';
import { formatBytes, progressMode, runSteps } from '../ui/progress.js';
import type { BundleIndex } from '../bundle/format.js';

interface PackArgs {
  images?: string[];
  file?: string[];
  output: string;
  compression: Compression;
  level?: number;
  json?: boolean;
  quiet?: boolean;
  'concurrent-saves': number;
}

export function packCommand(signal: AbortSignal): CommandModule<object, PackArgs> {
  return {
    command: 'pack [images..]',
    describe: 'write the named images from the Docker daemon into one bundle',
    builder: (y) =>
      y
        .positional('images', { type: 'string', array: true, describe: 'images: name:tag, ID, name@sha256:…, docker-daemon:NAME' })
        .option('file', { alias: 'f', type: 'string', array: true, describe: 'a list of images: one per line, or YAML (a list, or images: [...])' })
        .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the bundle to write (appears only when complete)' })
        .option('compression', { choices: ['zstd', 'gzip', 'none'] as const, default: 'zstd' as Compression, describe: 'layer compression; gzip or none for engines older than Docker 23' })
        .option('level', { type: 'number', describe: 'compression level (zstd 1-19, default 3; gzip 1-9, default 6)' })
        .option('concurrent-saves', { type: 'number', default: 2, hidden: true })
        .example('$0 pack nginx:1.27 redis:7 -o week47.ferry.tar', 'two images from the local daemon')
        .example('$0 pack -f images.yaml -o week48.ferry.tar --compression gzip', 'a list, loadable by Docker 20.10'),
    handler: async (args) => {
      const names = [...(args.images ?? [])];
      for (const f of args.file ?? []) names.push(...(await readImageList(f)));
      if (names.length === 0) throw new FerryError('USAGE', 'no images named', { hint: 'name images as arguments or in a list file with -f' });
      const level = checkLevel(args.compression, args.level);
      const output = resolve(args.output);
      await checkOutputDir(output);
      const engine = new DockerEngineClient();
      const source = new DockerDaemonSource(engine, { concurrentSaves: args['concurrent-saves'] });
      const mode = progressMode(args);
      let images: SourceImage[] = [];
      let index: BundleIndex | undefined;
      const started = Date.now();
      try {
        await runSteps(
          [
            {
              title: `Resolve ${names.length} image name${names.length === 1 ? '' : 's'} in the Docker daemon at ${engine.host}`,
              run: async () => {
                await engine.ping();
                images = await source.resolve(names, signal);
              },
            },
            {
              title: `Export, compress (${args.compression}) and write layers to ${args.output}`,
              run: async (step) => {
                const writer = await BundleWriter.create(output, { compression: args.compression, ...(level !== undefined ? { level } : {}) });
                index = await packImages(source, images, writer, {
                  layer: (l) => step.update(`layer ${l.done}/${l.total}: ${formatBytes(l.uncompressedSize)} -> ${formatBytes(l.size)}`),
                }, signal);
              },
            },
          ],
          mode,
        );
      } finally {
        await source.close();
      }
      const result = summarise(index!, output, Date.now() - started);
      if (args.json) printJson(result);
      else if (mode !== 'quiet') {
        process.stderr.write(
          `Wrote ${args.output}: ${result.images.length} image(s), ${result.layers} layer(s), ${formatBytes(result.bytes)} ` +
            `(${formatBytes(result.uncompressedBytes)} uncompressed) in ${(result.seconds).toFixed(1)} s\n`,
        );
      }
    },
  };
}

function summarise(index: BundleIndex, path: string, ms: number) {
  const layers = index.blobs.filter((b) => b.diffId);
  return {
    bundle: path,
    id: index.id,
    images: index.images.map((i) => ({ refs: i.refs, imageId: i.imageId, platform: i.platform, layers: i.layers.length })),
    layers: layers.length,
    bytes: index.blobs.reduce((s, b) => s + b.size, 0),
    uncompressedBytes: layers.reduce((s, b) => s + (b.uncompressedSize ?? 0), 0),
    seconds: ms / 1000,
  };
}

function checkLevel(c: Compression, level: number | undefined): number | undefined {
  if (level === undefined) return undefined;
  if (Number.isNaN(level)) throw new FerryError('USAGE', '--level takes a whole number');
  const [lo, hi] = c === 'zstd' ? [1, 19] : c === 'gzip' ? [1, 9] : [0, 0];
  if (c === 'none' || !Number.isInteger(level) || level < lo || level > hi) {
    throw new FerryError('USAGE', c === 'none' ? '--level has no meaning with --compression none' : `--level ${level} is out of range for ${c} (${lo}-${hi})`);
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

/** readImageList reads plain lines (# comments allowed) or YAML: a list, or a mapping with an `images` list. */
export async function readImageList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new FerryError('USAGE', `cannot read image list ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch {
    doc = undefined;
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as { images?: unknown }).images) ? (doc as { images: unknown[] }).images : undefined;
  if (list) {
    return list.map((v, i) => {
      const name = typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string' ? (v as { name: string }).name : undefined;
      if (!name) throw new FerryError('USAGE', `${file}: item ${i + 1} is not an image name`);
      return name.trim();
    });
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}
