// `ferry inventory`: what a target holds (a Docker daemon, a registry, containerd, or a catalogued site), as a
// small deterministic file to carry back across the gap.
import type { CommandModule } from 'yargs';
import { Catalog } from '../catalog/catalog.js';
import { ContainerdClient, containerdAddress } from '../containerd/index.js';
import { inventoryOfContainerd } from '../sync/containerd-inventory.js';
import { DockerEngineClient } from '../engine/client.js';
import { RegistryClient } from '../registry/client.js';
import { inventoryOfDaemon } from '../sync/daemon-inventory.js';
import { INVENTORY_MEDIA_TYPE, writeDocument, type Inventory } from '../sync/documents.js';
import { HoldingsBuilder, diffIdsOf } from '../image/holdings.js';
import { inventoryOfRegistry } from '../sync/registry-inventory.js';
import { siteRecords, siteState } from '../sync/site-state.js';
import { parsePushPlace } from '../targets/registry.js';
import { loadSigner } from '../sign/signature.js';
import { FerryError } from '../ui/errors.js';
import { printJson } from '../ui/output.js';
import { registryOptions, withRegistryOptions, type RegistryArgs } from './registry-options.js';
import { daemonEndpoint, withDaemonOptions, type DaemonArgs } from './daemon-options.js';
import { example } from './help.js';

interface InventoryArgs extends RegistryArgs, DaemonArgs {
  output?: string;
  registry?: string;
  containerd?: string;
  namespace: string;
  site?: string;
  sign?: string;
  json?: boolean;
  quiet?: boolean;
}

export function inventoryCommand(signal: AbortSignal): CommandModule<object, InventoryArgs> {
  return {
    command: 'inventory',
    describe: 'describe what a target holds (the Docker daemon, a registry, containerd, or a catalogued site) for `pack --have`',
    builder: (y) =>
      withRegistryOptions(
        withDaemonOptions(y
          .option('output', { alias: 'o', type: 'string', describe: 'the file to write (default: stdout)' })
          .option('registry', { type: 'string', describe: 'HOST[:PORT][/PREFIX]: inventory this registry (repositories under PREFIX) instead of the daemon' })
          .option('containerd', { type: 'string', describe: 'inventory containerd at this socket (default: CONTAINERD_ADDRESS, else /run/containerd/containerd.sock): its content store, one namespace' })
          .option('namespace', { alias: 'n', type: 'string', default: 'k8s.io', describe: 'with --containerd: the namespace' })
          .option('site', { type: 'string', describe: 'inventory a site as the catalog sees it (what planning for it assumes)' })
          .option('sign', { type: 'string', describe: 'sign the inventory with this private key (written beside it as FILE.sig)' })
          .conflicts('registry', ['site', 'containerd'])
          .conflicts('site', 'containerd')
          .conflicts('host', ['registry', 'site', 'containerd'])
          .conflicts('context', ['registry', 'site', 'containerd'])
          .example(...example('$0 inventory -o site-b.inventory.json', 'the Docker daemon (DOCKER_HOST, or the Docker context)'))
          .example(...example('$0 inventory --registry registry.local:5000/mirror -o site-b.inventory.json', 'a registry, under a prefix'))
          .example(...example('$0 inventory --containerd /run/k3s/containerd/containerd.sock -o node.inventory.json', "a k3s node's images (namespace k8s.io)"))),
      ),
    handler: async (args) => {
      const signer = args.sign !== undefined ? await loadSigner(args.sign) : undefined;
      let inv: Inventory;
      if (args.site) inv = inventoryOfSite(args.site);
      else if (args.containerd !== undefined) {
        const client = new ContainerdClient({ address: containerdAddress(args.containerd || undefined), namespace: args.namespace });
        try {
          await client.version(signal);
          inv = await inventoryOfContainerd(client, signal);
        } finally {
          client.close();
        }
      } else if (args.registry) {
        const target = parsePushPlace(args.registry);
        const client = new RegistryClient(target.registry, registryOptions(args)(target.registry));
        try {
          inv = await inventoryOfRegistry(client, target.prefix, signal);
        } finally {
          await client.close();
        }
      } else {
        const engine = new DockerEngineClient(daemonEndpoint(args));
        try {
          await engine.ping();
          inv = await inventoryOfDaemon(engine, signal);
        } finally {
          await engine.close();
        }
      }
      const out = args.output ?? '-';
      await writeDocument(out, inv, signer);
      const summary = { output: out, target: inv.target, images: inv.images.length, layers: inv.layers.length };
      if (args.json && out !== '-') printJson(summary);
      else if (!args.quiet && out !== '-') process.stderr.write(`Wrote ${out}: ${inv.images.length} image(s), ${inv.layers.length} layer(s) of ${inv.target.kind} ${inv.target.name}\n`);
    },
  };
}

/** inventoryOfSite writes what planning assumes a site holds: its images' layers, as chains and known blobs. */
function inventoryOfSite(site: string): Inventory {
  const catalog = Catalog.open();
  try {
    const kind = catalog.requireSite(site).kind;
    const state = siteState(catalog, site);
    const b = new HoldingsBuilder();
    const records = siteRecords(catalog, site);
    for (const { record: r } of records) {
      for (const img of r.holdings.images) {
        if (img.status === 'failed') continue;
        const diffIds = diffIdsOf(r.holdings, img);
        b.addImage({ id: img.id, refs: img.refs, ...(img.manifest ? { manifest: img.manifest } : {}), diffIds, blobs: diffIds.map((d) => state.known.get(d)) });
      }
    }
    if (records.length === 0) throw new FerryError('USAGE', `the catalog knows nothing site ${site} holds yet`, { hint: 'import an inventory or a receipt with `ferry site import`' });
    return { mediaType: INVENTORY_MEDIA_TYPE, version: 1, target: { kind, id: `catalog:${site}`, name: site }, ...b.build() };
  } finally {
    catalog.close();
  }
}
