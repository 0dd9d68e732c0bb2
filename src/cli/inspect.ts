// `ferry inspect`: what bundles hold and rely on, read from their indexes without touching layer content.
import type { CommandModule } from 'yargs';
import { BundleReader } from '../bundle/reader.js';
import { carriedLayers, DELTA_MEDIA_TYPE, type BundleDelta, type BundleIndex } from '../bundle/format.js';
import { formatPlatform } from '../image/platform.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { printJson } from '../ui/output.js';
import { formatBytes } from '../ui/progress.js';
import { example } from './help.js';

interface InspectArgs {
  bundles: string[];
  json?: boolean;
}

export function inspectCommand(): CommandModule<object, InspectArgs> {
  return {
    command: 'inspect <bundles..>',
    describe: 'show the images, tags, layers and sizes in bundles (reads only their indexes)',
    builder: (y) =>
      y
        .positional('bundles', { type: 'string', array: true, default: undefined, demandOption: true, describe: 'bundles, or volumes of a set, each shown on its own' })
        .example(...example('$0 inspect week47.ferry.tar', ''))
        .example(...example('$0 inspect week46.ferry.tar week47.ferry.tar --json', 'several: a JSON array, one object per bundle in the order given')),
    handler: async (args) => {
      // Every bundle is opened before anything is shown, so a bad one fails the command with nothing half printed.
      const bundles: BundleReader[] = [];
      try {
        for (const path of args.bundles) bundles.push(await BundleReader.open(path));
        const views = bundles.map((b) => describe(b.index));
        if (args.json) printJson(views.length === 1 ? views[0] : views);
        else process.stdout.write(views.map((v, k) => `${views.length > 1 ? `${bundles[k]!.path}:\n` : ''}${render(v)}`).join('\n'));
      } finally {
        await Promise.all(bundles.map((b) => b.close()));
      }
    },
  };
}

export function describe(index: BundleIndex) {
  const users = new Map<string, number>();
  for (const img of index.images) for (const d of new Set(img.layers.map((l) => l.digest))) users.set(d, (users.get(d) ?? 0) + 1);
  const blobs = new Map(index.blobs.map((b) => [b.digest as string, b]));
  const relied = new Map(index.reliesOn.map((b) => [b.digest as string, b]));
  const carried = carriedLayers(index);
  const deltas = new Map((index.deltas ?? []).map((d) => [d.diffId as string, d]));
  const deltaBytes = (d: BundleDelta): number => blobs.get(d.blob)?.size ?? 0;
  return {
    id: index.id,
    version: index.version,
    created: index.created,
    creator: index.creator,
    indexes: (index.indexes ?? []).map((ix) => ({
      refs: ix.refs,
      digest: ix.digest,
      mediaType: ix.mediaType,
      // A read bundle's indexes name only images it holds (the reader checks), so each has its platform.
      platforms: ix.images.flatMap((d) => index.images.filter((i) => i.manifest.digest === d).map((i) => i.platform)),
    })),
    images: index.images.map((img) => ({
      refs: img.refs,
      inIndexes: (index.indexes ?? []).filter((ix) => ix.images.includes(img.manifest.digest)).map((ix) => ix.digest),
      imageId: img.imageId,
      platform: img.platform,
      manifest: img.manifest.digest,
      layers: img.layers.map((l) => {
        const b = blobs.get(l.digest) ?? relied.get(l.digest);
        const d = deltas.get(l.diffId);
        return {
          digest: l.digest,
          diffId: l.diffId,
          mediaType: d ? DELTA_MEDIA_TYPE : b?.mediaType,
          size: d ? deltaBytes(d) : (b?.size ?? 0),
          uncompressedSize: d ? d.size : (b?.uncompressedSize ?? 0),
          shared: (users.get(l.digest) ?? 0) > 1,
          held: blobs.has(l.digest) || d !== undefined,
          ...(d ? { delta: true } : {}),
        };
      }),
    })),
    totals: {
      images: index.images.length,
      tags: index.images.reduce((s, i) => s + i.refs.length, 0),
      layers: carried.length,
      sharedLayers: [...users.values()].filter((n) => n > 1).length,
      bytes: index.blobs.reduce((s, b) => s + b.size, 0),
      uncompressedBytes: carried.reduce((s, b) => s + b.uncompressedSize, 0),
      reliesOn: index.reliesOn.length,
      /** What a full bundle would also have carried: the relied-on layers' sizes as the target holds them. */
      reliedBytes: index.reliesOn.reduce((s, b) => s + b.size, 0),
    },
    reliesOn: index.reliesOn.map((r) => ({ digest: r.digest, diffId: r.diffId, mediaType: r.mediaType, size: r.size, ...(r.carriedBy ? { carriedBy: r.carriedBy } : {}) })),
    /** Layers carried as deltas: what each takes, what it would have taken whole, and the layers it is rebuilt from. */
    deltas: (index.deltas ?? []).map((d) => ({ diffId: d.diffId, size: deltaBytes(d), uncompressedSize: d.size, ...(d.wholeSize !== undefined ? { wholeSize: d.wholeSize } : {}), references: d.references.map((r) => r.diffId) })),
  };
}

function render(v: ReturnType<typeof describe>): string {
  const short = (d: string): string => d.slice(7, 19);
  const lines = [`Bundle ${v.id} (format v${v.version}, ${v.creator}, ${v.created})`];
  const nameOf = (refs: readonly string[]): string => refs.map((r) => familiarReference(parseReference(r))).join(', ');
  for (const ix of v.indexes) {
    lines.push('', `${ix.refs.length ? nameOf(ix.refs) : '<untagged>'}`, `  multi-platform index ${ix.digest}: ${ix.platforms.map(formatPlatform).join(', ')}`);
  }
  for (const img of v.images) {
    const parent = v.indexes.find((ix) => img.inIndexes.includes(ix.digest));
    const names = img.refs.length ? nameOf(img.refs) : parent ? `${parent.refs.length ? nameOf(parent.refs) : '<untagged index>'} [${formatPlatform(img.platform)}]` : '<untagged>';
    const size = img.layers.reduce((s, l) => s + l.size, 0);
    lines.push('', `${names}`, `  image ID ${img.imageId}  ${formatPlatform(img.platform)}  ${img.layers.length} layers, ${formatBytes(size)}`);
    for (const l of img.layers) {
      const tags = [l.shared ? 'shared' : '', l.held ? '' : 'relied on, not held', l.delta ? 'delta' : ''].filter(Boolean).join(', ');
      lines.push(`    ${short(l.digest)}  ${formatBytes(l.size).padStart(9)}  (${formatBytes(l.uncompressedSize)} uncompressed)${tags ? `  [${tags}]` : ''}`);
    }
  }
  const t = v.totals;
  lines.push(
    '',
    `${t.images} image(s), ${t.tags} tag(s), ${t.layers} layer(s) stored once (${t.sharedLayers} shared), ` +
      `${formatBytes(t.bytes)} in blobs, ${formatBytes(t.uncompressedBytes)} uncompressed`,
  );
  if (v.deltas.length) {
    const whole = v.deltas.reduce((s, d) => s + (d.wholeSize ?? 0), 0);
    const size = v.deltas.reduce((s, d) => s + d.size, 0);
    lines.push(`Deltas: ${v.deltas.length} layer(s) carried as deltas, ${formatBytes(size)} instead of ${formatBytes(whole)} whole; ferry rebuilds them from layers the target holds (plain docker load and other readers cannot):`);
    for (const d of v.deltas) lines.push(`  ${d.diffId}  ${formatBytes(d.size).padStart(9)} (whole ${formatBytes(d.wholeSize ?? 0)})  from ${d.references.map(short).join(', ') || 'new bytes only'}`);
  }
  if (t.reliesOn) {
    lines.push(`Thin bundle: holds ${t.layers} layer(s) and relies on ${t.reliesOn} it does not hold (${formatBytes(t.reliedBytes)} left out); the target must have them:`);
    for (const r of v.reliesOn) lines.push(`  ${r.diffId}  ${formatBytes(r.size).padStart(9)}  ${r.carriedBy ? `carried by bundle ${r.carriedBy}` : 'carrier unknown'}`);
  }
  lines.push('');
  return lines.join('\n');
}
