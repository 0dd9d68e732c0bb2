// rebuildDeltas: before a copy writes anything, each delta layer the target lacks is rebuilt from the reference layers
// the target holds (or the bundles given beside it hold) into a file, its diffID checked; the copy then reads it as
// the bundle's uncompressed layer. A missing reference is refused with exit 4, a delta that lies with exit 3.
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { blobPath, type BundleDelta } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { ExactReader, readRecipe, rebuild } from '../delta/decode.js';
import { DeltaError } from '../delta/recipe.js';
import { hex, type Digest } from '../image/digest.js';
import { DigestMismatchError, Sha256Counter, verified } from '../stream/hash.js';
import type { ImageTarget } from '../targets/target.js';
import { bundleError, FerryError } from '../ui/errors.js';
import { bundleOrigin, ReferenceLayers, targetOrigin, type ReferenceFile, type ReferenceOrigin } from './delta-references.js';
import { cacheOrigin } from './keep-layers.js';
import type { LayerPlan } from './preflight.js';
import type { LayerCache } from '../catalog/layer-cache.js';

export interface RebuiltDeltas {
  /** How many layers were rebuilt, and their bytes. */
  layers: number;
  bytes: number;
  close(): Promise<void>;
}

/** rebuildDeltas rebuilds the delta layers the plans need; undefined when they need none. */
export async function rebuildDeltas(plans: readonly LayerPlan[], bundles: readonly BundleReader[], target: ImageTarget, opts: { verb: string; cache?: LayerCache; signal?: AbortSignal }): Promise<RebuiltDeltas | undefined> {
  const needed = new Map<string, { bundle: BundleReader; delta: BundleDelta }>();
  for (const plan of plans) {
    for (const { image } of plan.images) {
      const held = plan.held.get(image);
      image.layers.forEach((l, i) => {
        if (held?.[i] || needed.has(l.diffId)) return;
        const bundle = bundles.find((b) => b.deltaOf(l.digest));
        if (bundle) needed.set(l.diffId, { bundle, delta: bundle.deltaOf(l.digest)! });
      });
    }
  }
  if (needed.size === 0) return undefined;
  // The cache first: a file read beats a Docker daemon saving whole images to hand back a layer.
  const origins = [...(opts.cache ? [cacheOrigin(opts.cache)] : []), targetOrigin(target), ...bundles.map(bundleOrigin)].filter((o): o is ReferenceOrigin => o !== undefined);
  const refs = new ReferenceLayers(origins);
  try {
    const wanted = new Map([...needed.values()].flatMap((n) => n.delta.references.map((r) => [r.diffId as string, { diffId: r.diffId, size: r.size, ...(r.blob ? { blob: r.blob } : {}) }] as const)));
    const files = new Map((await refs.files([...wanted.values()], opts.signal)).map((f) => [f.diffId as string, f]));
    const lacking = [...needed.values()].flatMap(({ delta, bundle }) => delta.references.filter((r) => !files.has(r.diffId)).map((r) => `${r.diffId}: reference of delta layer ${delta.diffId} (in ${bundle.path})`));
    if (lacking.length) {
      throw new FerryError('MISSING_LAYERS', `${target.description} lacks ${lacking.length} reference layer(s) that this bundle's deltas are rebuilt from; nothing was ${opts.verb}`, {
        details: lacking,
        hint: target.layerTars
          ? `load the bundle those layers came in first, or give it beside this one; or pack again against the target's own inventory (${target.inventoryCommand})`
          : `${target.description} cannot hand its layers back: give the bundle that carried the references beside this one, or pack again with --no-delta`,
      });
    }
    let bytes = 0;
    for (const { bundle, delta } of needed.values()) {
      const path = join(await refs.workDir(), `${hex(delta.diffId)}.layer`);
      await rebuildOne(bundle, delta, delta.references.map((r) => files.get(r.diffId)!), path, opts.verb);
      bundle.useRebuilt(delta.diffId, path);
      bytes += delta.size;
    }
    return { layers: needed.size, bytes, close: () => refs.close() };
  } catch (err) {
    await refs.close();
    throw err;
  }
}

/** rebuildOne writes one delta layer to `path`, checked against its diffID and size; a bad delta is the bundle's fault. */
async function rebuildOne(bundle: BundleReader, delta: BundleDelta, refs: readonly ReferenceFile[], path: string, verb: string): Promise<void> {
  const entry = blobPath(delta.blob);
  const blob = bundle.blob(delta.blob as Digest);
  const fault = (what: string): FerryError => bundleError(bundle.path, entry, `delta of layer ${delta.diffId}: ${what}; nothing was ${verb}`);
  if (!blob) throw fault('its delta blob is not in the bundle');
  const handles = await Promise.all(refs.map((r) => open(r.path, 'r')));
  const out = await open(path, 'w');
  try {
    const reader = new ExactReader(verified(bundle.stream(entry), { digest: blob.digest, size: blob.size, what: entry }));
    const recipe = await readRecipe(reader, blob.size);
    const named = (rs: readonly { diffId: string; size: number }[]): string => rs.map((r) => `${r.diffId}/${r.size}`).join(', ');
    if (named(recipe.references) !== named(delta.references)) throw new DeltaError(`its recipe names references ${named(recipe.references) || 'none'}, ferry.json names ${named(delta.references) || 'none'}`);
    if (recipe.layerSize !== delta.size) throw new DeltaError(`its recipe makes ${recipe.layerSize} bytes, ferry.json says ${delta.size}`);
    const h = new Sha256Counter();
    for await (const chunk of rebuild(reader, recipe, handles)) {
      h.update(chunk);
      await out.write(chunk);
    }
    const got = h.digest();
    if (got !== (delta.diffId as string)) throw new DeltaError(`rebuilt, it is ${got}, not the layer it names`);
  } catch (err) {
    await rm(path, { force: true });
    if (err instanceof DeltaError || err instanceof DigestMismatchError) throw fault(err.message);
    throw err;
  } finally {
    await out.close();
    for (const h of handles) await h.close();
  }
}

/** What verify learned of a bundle's deltas: rebuilt and checked, or left unchecked for want of their references. */
export interface DeltaCheck {
  rebuilt: number;
  unchecked: string[];
  faults: { entry: string; problem: string }[];
}

/**
 * checkDeltas rebuilds every delta of the bundles whose references the bundles themselves or the --have bundles hold
 * (an earlier bundle carried them), checking each against its diffID; the rebuilt layers are then removed.
 */
export async function checkDeltas(bundles: readonly BundleReader[], haves: readonly BundleReader[], signal?: AbortSignal): Promise<DeltaCheck> {
  const out: DeltaCheck = { rebuilt: 0, unchecked: [], faults: [] };
  const all = bundles.flatMap((bundle) => (bundle.index.deltas ?? []).map((delta) => ({ bundle, delta })));
  if (all.length === 0) return out;
  const refs = new ReferenceLayers([...haves, ...bundles].map(bundleOrigin));
  try {
    for (const { bundle, delta } of all) {
      const files = await refs.files(delta.references.map((r) => ({ diffId: r.diffId })), signal);
      if (files.length < delta.references.length) {
        out.unchecked.push(delta.diffId);
        continue;
      }
      const path = join(await refs.workDir(), `${hex(delta.diffId)}.layer`);
      try {
        await rebuildOne(bundle, delta, files, path, 'changed');
        out.rebuilt++;
      } catch (err) {
        if (!(err instanceof FerryError) || err.code !== 'BUNDLE_INVALID') throw err;
        out.faults.push({ entry: blobPath(delta.blob), problem: err.message.replace(`${bundle.path}: ${blobPath(delta.blob)}: `, '') });
      } finally {
        await rm(path, { force: true });
      }
    }
    return out;
  } finally {
    await refs.close();
  }
}

/**
 * rebuildBeside rebuilds every delta of the bundles into `dir` from the layers the bundles themselves hold (for
 * `ferry serve`), and tells each bundle where; a file already there from an earlier run is reused (whoever serves it
 * checks its diffID first). A delta whose references no bundle holds is refused (exit 4) before any is rebuilt.
 */
export async function rebuildBeside(bundles: readonly BundleReader[], dir: string, signal?: AbortSignal): Promise<number> {
  const all = bundles.flatMap((bundle) => (bundle.index.deltas ?? []).map((delta) => ({ bundle, delta, path: join(dir, `${hex(delta.diffId)}.tar`) })));
  const todo = [];
  for (const d of all) {
    if ((await stat(d.path).catch(() => undefined))?.size === d.delta.size) d.bundle.useRebuilt(d.delta.diffId, d.path);
    else todo.push(d);
  }
  if (todo.length === 0) return 0;
  const refs = new ReferenceLayers(bundles.map(bundleOrigin));
  try {
    const found = new Map((await refs.files(todo.flatMap((d) => d.delta.references.map((r) => ({ diffId: r.diffId, size: r.size }))), signal)).map((f) => [f.diffId as string, f]));
    const lacking = todo.flatMap(({ delta, bundle }) => delta.references.filter((r) => !found.has(r.diffId)).map((r) => `${r.diffId}: reference of delta layer ${delta.diffId} (in ${bundle.path})`));
    if (lacking.length) {
      throw new FerryError('MISSING_LAYERS', `the bundles given lack ${lacking.length} reference layer(s) their deltas are rebuilt from; nothing is served`, {
        details: lacking,
        hint: 'give the bundles that carried those layers beside this one, or pack it again with --no-delta',
      });
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new FerryError('RUNTIME', `cannot rebuild delta layers into ${dir}: ${(err as NodeJS.ErrnoException).code}`, { hint: 'the bundles are on read-only media: give --rebuild-dir on a writable disk' });
    }
    for (const { bundle, delta, path } of todo) {
      const part = `${path}.${process.pid}.part`;
      await rebuildOne(bundle, delta, delta.references.map((r) => found.get(r.diffId)!), part, 'served');
      await rename(part, path);
      bundle.useRebuilt(delta.diffId, path);
    }
    return todo.length;
  } finally {
    await refs.close();
  }
}
