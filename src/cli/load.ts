// `ferry load`: a bundle into the Docker daemon at DOCKER_HOST: only the layers it lacks, then tags.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { DockerEngineClient } from '../engine/client.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { DockerDaemonSink } from '../sinks/docker-daemon.js';
import type { LoadedImage } from '../sinks/sink.js';
import { loadBundle } from '../transfer/load.js';
import { RETAG_DESCRIPTION, retagRules } from './retag-option.js';
import { printJson } from '../ui/output.js';
import { progressMode, runSteps } from '../ui/progress.js';

interface LoadArgs {
  bundle: string;
  images?: string[];
  retag?: string[];
  json?: boolean;
  quiet?: boolean;
}

export function loadCommand(signal: AbortSignal): CommandModule<object, LoadArgs> {
  return {
    command: 'load <bundle> [images..]',
    describe: 'load a bundle (or some of its images) into the Docker daemon, then tag',
    builder: (y) =>
      y
        .positional('bundle', { type: 'string', demandOption: true })
        .positional('images', { type: 'string', array: true, describe: 'load only these (names or image IDs)' })
        .option('retag', { type: 'string', array: true, describe: RETAG_DESCRIPTION })
        .example('$0 load week47.ferry.tar --retag docker.io/library/=registry.local/mirror/', 'load all, renamed')
        .example('$0 load week47.ferry.tar nginx:1.27 --retag nginx:1.27=web:prod', 'one image, one new name'),
    handler: async (args) => {
      const rules = retagRules(args.retag);
      const bundle = await BundleReader.open(args.bundle);
      const engine = new DockerEngineClient();
      let loaded: LoadedImage[] = [];
      try {
        await runSteps(
          [
            {
              title: `Load ${args.bundle} into the Docker daemon at ${engine.host}`,
              run: async (step) => {
                await engine.ping();
                let n = 0;
                loaded = await loadBundle(bundle, new DockerDaemonSink(engine), {
                  select: args.images ?? [],
                  retag: rules,
                  events: { layer: () => step.update(`${++n} layer(s) sent`) },
                  signal,
                });
              },
            },
          ],
          progressMode(args),
        );
      } finally {
        await bundle.close();
        await engine.close();
      }
      if (args.json) printJson({ bundle: args.bundle, images: loaded });
      else if (!args.quiet) {
        for (const l of loaded) {
          const names = l.tags.length ? l.tags.map((t) => familiarReference(parseReference(t))).join(', ') : '<untagged>';
          process.stderr.write(`Loaded ${l.imageId.slice(0, 19)} ${names} (${l.layersSent} layer(s) sent, ${l.layersPresent} already present)\n`);
        }
      }
    },
  };
}
