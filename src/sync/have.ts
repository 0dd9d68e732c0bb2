// What `--have FILE` and `--since BUNDLE` mean: an inventory, a receipt or an earlier bundle, read into the
// target state that planning works from.
import { open } from 'node:fs/promises';
import type { BundleIndex } from '../bundle/format.js';
import { BundleReader } from '../bundle/reader.js';
import { FerryError } from '../ui/errors.js';
import { readReport, type Report } from './documents.js';
import { HoldingsBuilder, type Holdings } from '../image/holdings.js';
import type { HoldingsMeaning, TargetState } from './target-state.js';

/** holdingsOfBundle is what a target holds once a bundle is applied: every layer of every image, held or relied on. */
export function holdingsOfBundle(index: BundleIndex): Holdings {
  const b = new HoldingsBuilder();
  const blobs = new Map(index.blobs.map((x) => [x.digest as string, x]));
  const relied = new Map(index.reliesOn.map((x) => [x.digest as string, x]));
  const deltas = new Map((index.deltas ?? []).map((d) => [d.diffId as string, d]));
  for (const img of index.images) {
    img.layers.forEach((l) => {
      const held = blobs.get(l.digest);
      const r = held ? undefined : relied.get(l.digest);
      const blob = held ?? r;
      // A delta layer is carried, but arrives as whatever blob the target makes of it: no blob is known for it.
      const delta = deltas.get(l.diffId);
      b.addLayer(l.diffId, {
        ...(blob ? { blob: { digest: blob.digest, size: blob.size, mediaType: blob.mediaType } } : {}),
        size: blob?.uncompressedSize ?? delta?.size,
        carriedBy: held || delta ? index.id : r?.carriedBy,
      });
    });
    b.addImage({ id: img.imageId, refs: img.refs, manifest: img.manifest.digest, diffIds: img.layers.map((l) => l.diffId) });
  }
  return b.build();
}

/**
 * meaningOf says how a report's holdings count for planning, by the kind of target it describes: a daemon's as
 * layer chains, a registry's or containerd's as blobs (a content store names a layer by its blob).
 */
export function meaningOf(r: Report): HoldingsMeaning {
  const kind = r.doc.target.kind;
  return { chains: kind === 'docker-daemon', blobs: kind === 'registry' || kind === 'containerd' };
}

/** addHave reads one --have file (inventory, receipt, or bundle) into state. */
export async function addHave(state: TargetState, path: string): Promise<void> {
  if (await looksLikeJson(path)) {
    const r = await readReport(path);
    state.add(r.doc, meaningOf(r), `${r.kind} ${path}`);
    return;
  }
  let reader: BundleReader;
  try {
    reader = await BundleReader.open(path);
  } catch (err) {
    if (err instanceof FerryError && err.code !== 'USAGE') {
      throw new FerryError('USAGE', `--have ${path}: ${err.message}`, { hint: 'give an inventory (ferry inventory), a receipt (ferry load --receipt) or a bundle' });
    }
    throw err;
  }
  try {
    // A bundle counts both ways: loaded, its chains are in the daemon; pushed, its blobs are in the registry.
    state.add(holdingsOfBundle(reader.index), { chains: true, blobs: true }, `bundle ${path}`);
  } finally {
    await reader.close();
  }
}

async function looksLikeJson(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new FerryError('USAGE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { hint: 'check the path: an inventory, a receipt or an earlier bundle' });
  }
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(64), 0, 64, 0);
    return /^\s*\{/.test(buffer.subarray(0, bytesRead).toString('latin1'));
  } finally {
    await fh.close();
  }
}
