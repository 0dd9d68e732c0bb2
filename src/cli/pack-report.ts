// What `ferry pack` prints: the bundle written (or its volumes), and a dry run's plan; --json for machines.
import { carriedLayers, type BundleIndex } from '../bundle/format.js';
import type { DryRunBytes, DryRunView } from '../transfer/pack-plan.js';
import { printJson } from '../ui/output.js';
import { formatBytes, type ProgressMode } from '../ui/progress.js';

type Mode = 'json' | ProgressMode;

export interface Packed {
  index: BundleIndex;
  /** The bundle's path, and as the user named it. */
  output: string;
  named: string;
  seconds: number;
  /** Blobs taken from an interrupted run's temp file. */
  reused: number;
  volumes: readonly { path: string; index: BundleIndex }[];
  /** Kept blobs were recompressed, so manifest digests changed. */
  recompressedKept: boolean;
  thin: boolean;
  site?: string;
}

export function printDryRun(view: DryRunView, mode: Mode): void {
  if (mode === 'json') return printJson(view);
  if (mode === 'quiet') return;
  for (const img of view.images) process.stdout.write(`${img.refs.join(', ') || img.imageId}: ${img.travels} layer(s) travel (${sized(img.bytes)}), ${img.reliedOn} relied on\n`);
  process.stdout.write(`${view.travel.length} layer(s) would travel (${sized(view.bytes)}, each layer once); ${view.reliedOn.length} the target holds (nothing written)\n`);
}

/** sized: "~41.2 MB in the bundle, 118 MB uncompressed", saying what is estimated or unknown. */
function sized(b: DryRunBytes): string {
  const stored = `${b.storedEstimated ? '~' : ''}${formatBytes(b.stored)} in the bundle`;
  const unknown = b.unsized ? `; ${b.unsized} layer(s) of unknown uncompressed size` : '';
  return `${stored}, ${formatBytes(b.uncompressed)} uncompressed${unknown}`;
}

export function printPacked(p: Packed, mode: Mode): void {
  const { index, volumes } = p;
  const result = {
    ...summarise(index, p.output, p.seconds),
    reused: p.reused,
    ...(volumes.length ? { volumes: volumes.map((v) => ({ path: v.path, id: v.index.id, images: v.index.images.length, blobs: v.index.blobs.length, bytes: v.index.blobs.reduce((s, b) => s + b.size, 0) })) } : {}),
  };
  if (p.recompressedKept && mode !== 'quiet') {
    process.stderr.write("Note: pulled layers were recompressed, so manifest and index digests differ from the source's (image IDs do not).\n");
  }
  if (mode === 'json') return printJson(result);
  if (mode === 'quiet') return;
  process.stderr.write(
    `Wrote ${volumes.length ? `${volumes.length} volumes of ${p.named}` : p.named}: ${result.images.length} image(s), ${result.layers} layer(s), ${formatBytes(result.bytes)} ` +
      `(${formatBytes(result.uncompressedBytes)} uncompressed) in ${result.seconds.toFixed(1)} s\n`,
  );
  if (p.reused) process.stderr.write(`Reused ${p.reused} blob(s) an interrupted run had written (each checked)\n`);
  const deltas = index.deltas ?? [];
  if (deltas.length) {
    const size = deltas.reduce((s, d) => s + (index.blobs.find((b) => b.digest === d.blob)?.size ?? 0), 0);
    const whole = deltas.reduce((s, d) => s + (d.wholeSize ?? 0), 0);
    process.stderr.write(`${deltas.length} layer(s) travel as deltas: ${formatBytes(size)} instead of ${formatBytes(whole)} whole (ferry load or push rebuilds them; plain docker load cannot)\n`);
  }
  for (const v of result.volumes ?? []) process.stderr.write(`  volume ${v.path}: ${v.images} image(s), ${v.blobs} blob(s), ${formatBytes(v.bytes)}\n`);
  const spans = new Map<string, number[]>();
  for (const [k, v] of volumes.entries()) for (const part of v.index.parts ?? []) spans.set(part.digest, [...(spans.get(part.digest) ?? []), k + 1]);
  for (const [d, at] of spans) {
    process.stderr.write(`Note: blob ${d} (${formatBytes(index.blobs.find((b) => b.digest === d)?.size ?? 0)}) is larger than a volume: it spans volumes ${at.join(', ')}, and needs all of them (ferry load/push of the set; plain docker load cannot read it)\n`);
  }
  if (p.thin) process.stderr.write(`Relies on ${result.reliesOn} layer(s) the target holds (${formatBytes(result.reliedBytes)} left out)${p.site ? `; recorded for site ${p.site}` : ''}\n`);
}

function summarise(index: BundleIndex, path: string, seconds: number) {
  const layers = carriedLayers(index);
  return {
    bundle: path,
    id: index.id,
    images: index.images.map((i) => ({ refs: i.refs, imageId: i.imageId, platform: i.platform, manifest: i.manifest.digest, layers: i.layers.length })),
    indexes: (index.indexes ?? []).map((i) => ({ refs: i.refs, digest: i.digest, images: i.images.length })),
    layers: layers.length,
    bytes: index.blobs.reduce((s, b) => s + b.size, 0),
    uncompressedBytes: layers.reduce((s, b) => s + b.uncompressedSize, 0),
    reliesOn: index.reliesOn.length,
    reliedBytes: index.reliesOn.reduce((s, b) => s + b.size, 0),
    seconds,
  };
}
