// `ferry cache prune`, and the layer cache's settings: FERRY_CACHE=off, FERRY_CACHE_SIZE (default 10 GiB),
// FERRY_CACHE_DIR (default $FERRY_HOME/cache, else the XDG cache directory's ferry/).
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_CACHE_BYTES, LayerCache } from '../catalog/layer-cache.js';
import { printJson } from '../ui/output.js';
import { formatBytes } from '../ui/progress.js';
import { example } from './help.js';
import { parseSize } from './size-option.js';

/** cacheOptions is the layer cache a pack keeps and its bound, from the environment. */
export function cacheOptions(env: NodeJS.ProcessEnv = process.env): { cache?: LayerCache; cacheBytes: number } {
  const cache = LayerCache.open(env);
  const cacheBytes = env.FERRY_CACHE_SIZE ? parseSize(env.FERRY_CACHE_SIZE, 'FERRY_CACHE_SIZE') : DEFAULT_CACHE_BYTES;
  return { ...(cache ? { cache } : {}), cacheBytes };
}

interface CacheArgs {
  'max-size'?: string;
  all?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function cacheCommand(): CommandModule<object, CacheArgs> {
  return {
    command: 'cache <command>',
    describe: 'the layers ferry keeps of what it shipped, for deltas: prune',
    builder: (y: Argv) =>
      y
        .command<CacheArgs>({
          command: 'prune',
          describe: 'remove the least recently used cached layers until the cache is under its size (FERRY_CACHE_SIZE, default 10GiB), or all of them',
          builder: (a) =>
            a
              .option('max-size', { type: 'string', describe: 'the size to bring the cache under (10G, 500MB)' })
              .option('all', { type: 'boolean', describe: 'remove every cached layer' })
              .example(...example('$0 cache prune --max-size 2G', 'keep the 2 GB most recently used')),
          handler: async (a) => {
            const { cache, cacheBytes } = cacheOptions();
            const bound = a.all ? 0 : a['max-size'] !== undefined ? parseSize(a['max-size'], '--max-size') : cacheBytes;
            const r = cache ? await cache.prune(bound) : { removed: 0, bytes: 0, kept: 0, keptBytes: 0 };
            if (a.json) printJson({ dir: cache?.dir ?? null, ...r });
            else if (!a.quiet) process.stderr.write(`${cache ? cache.dir : 'the cache is off (FERRY_CACHE=off)'}: removed ${r.removed} layer(s), ${formatBytes(r.bytes)}; ${r.kept} kept, ${formatBytes(r.keptBytes)}\n`);
          },
        })
        .demandCommand(1, 'name a cache command: prune'),
    handler: () => undefined,
  };
}
