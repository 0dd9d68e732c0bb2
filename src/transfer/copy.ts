// copy: the one loop that moves a bundle's images into a target (load, push, containerd). Check references, choose
// images, rename them, find what the target holds and refuse before anything moves if a relied-on layer is missing,
// write the blobs it lacks in the form it wants, put the images, then commit (names come last); abort on failure.
import type { BundleImage, BundleImageIndex } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { pooled } from '../bundle/pool.js';
import type { DiffId, Digest } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import { applyRetag, type RetagRule } from '../image/retag.js';
import type { BlobOutcome, BlobToWrite, ImageTarget, IndexToPut, NamedRef } from '../targets/target.js';
import { BlobLanes, settledAll } from './blob-lanes.js';
import { asLayerLie } from './bundle-faults.js';
import { LayerForms } from './layer-forms.js';
import { rebuildDeltas } from './deltas.js';
import { keepBundleLayers, type KeepLayers } from './keep-layers.js';
import { checkBundles, findMissing, type LayerPlan } from './preflight.js';
import { prepareImage, prepareIndex, type PreparedImage } from './prepare.js';
import { checkRetagRules } from './retag-check.js';
import { chooseAcross } from './select.js';

export interface CopyOptions {
  /** Names or image IDs to copy; all named images and indexes (and untagged ones, where the target takes them) when empty. */
  select?: readonly string[];
  retag?: readonly RetagRule[];
  /** Leave out (and report) images whose layers neither the target nor the bundles hold, instead of refusing: one volume of a set given alone. */
  skipIncomplete?: boolean;
  /** Send layers whose tar entries reach outside the image's root instead of refusing the bundle (exit 3). */
  allowUnsafeLayers?: boolean;
  /** The command, for messages: "the load was stopped: nothing was loaded". */
  verb: 'load' | 'push';
  /** Keep the layers the target took in the layer cache, as later deltas' references (a Docker daemon's site). */
  keep?: KeepLayers;
  events?: CopyEvents;
  signal?: AbortSignal;
}

export interface CopyEvents {
  /** A blob written through writeBlob (targets that store blobs), or found there. */
  blob?(info: { digest: string; size: number; outcome: BlobOutcome }): void;
  /** A layer sent inside a whole image (targets without writeBlob). */
  layer?(diffId: DiffId): void;
  /**
   * Bytes the copy expects to send, told as images are prepared: each blob to write once, or each layer tar of a
   * whole-image target; negative for a blob the target turned out to have.
   */
  planned?(bytes: number): void;
  /** Bytes sent, as they pass. */
  sent?(bytes: number): void;
}

/** What copying one image did. */
export interface CopiedImage {
  image: BundleImage;
  /** References after the retag rules, before the target places them. */
  names: string[];
  /** References of the indexes that list it. */
  within: string[];
  status: 'put' | 'present';
  /** The manifest as the target got it (another digest when layers were converted). */
  manifest: Digest;
  /** Layers the target got as another blob than the bundle's (zstd converted to gzip), by diffID. */
  storedAs: Map<string, BlobDescriptor>;
  layersSent: number;
  layersPresent: number;
}

export interface CopiedBundle {
  bundle: BundleReader;
  images: CopiedImage[];
  indexes: { index: BundleImageIndex; names: string[]; manifest: Digest }[];
  /** Images left out for lack of layers (skipIncomplete), with how many they lack. */
  skipped: { image: BundleImage; missing: number }[];
  /** Images with no name, left out because the target needs one. */
  untagged: BundleImage[];
}

export interface CopyResult {
  bundles: CopiedBundle[];
  /** What commit named: every reference as the target now holds it. */
  named: NamedRef[];
  blobs: Record<BlobOutcome, number>;
  /** The sizes of the blobs written (not found or mounted). */
  bytesWritten: number;
  /** Bytes the target read of the blobs: a resumed write reads only the rest, a retried one some twice. */
  bytesSent: number;
  /** Why the layers loaded could not be kept in the layer cache (the copy itself succeeded). */
  keepFault?: string;
}

/** Blob writes at once, across all images of a copy. */
const BLOB_LANES = 4;

/**
 * copyBundles applies bundles in order, as a chain: a thin bundle may rely on layers an earlier one holds. Every
 * bundle is checked, and every relied-on layer found (in the target or earlier in the chain), before anything moves.
 */
export async function copyBundles(bundles: readonly BundleReader[], target: ImageTarget, opts: CopyOptions): Promise<CopyResult> {
  const { signal, events = {}, verb } = opts;
  const done = `${verb}ed`;
  await checkBundles(bundles, done);
  const platform = await target.platform(signal);
  const choices = chooseAcross(
    bundles.map((b) => b.index),
    opts.select ?? [],
    platform,
  );
  const views = bundles.map((b) => pooled(b, bundles));
  const retag = opts.retag ?? [];
  checkRetagRules(retag, choices);
  const rename = (refs: readonly string[]): string[] => [...new Set(refs.map((r) => applyRetag(r, retag)))];
  const plans: LayerPlan[] = choices.map((c, k) => {
    const indexes = c.indexes.map((x) => ({ index: x.index, names: rename(x.refs) }));
    const within = (image: BundleImage): string[] => indexes.filter((x) => x.index.images.includes(image.manifest.digest)).flatMap((x) => x.names);
    return {
      bundle: views[k]!,
      images: [...c.images.map((x) => ({ image: x.image, names: rename(x.refs), within: within(x.image) })), ...(target.needsNames ? [] : c.untagged.map((image) => ({ image, names: [], within: [] })))],
      indexes,
      untagged: target.needsNames ? c.untagged : [],
      skipped: [],
      held: new Map(),
    };
  });
  target.willPut?.(plans.flatMap((p) => [...p.images.flatMap((x) => x.names), ...p.indexes.flatMap((x) => x.names)]));
  await findMissing(plans, target, { skipIncomplete: opts.skipIncomplete ?? false, verb: done, bundles: bundles.length, ...(signal ? { signal } : {}) });
  // Delta layers are rebuilt (and checked) before anything moves: a missing reference or a bad delta changes nothing.
  const deltas = await rebuildDeltas(plans, bundles, target, { verb: done, ...(opts.keep ? { cache: opts.keep.cache } : {}), ...(signal ? { signal } : {}) });

  // Layers are kept while the target is busy taking them (a daemon's load is bound by its own unpacking); a copy
  // of a layer checked against its digest is good whether or not the load then succeeds.
  const keepStop = new AbortController();
  const keeping = opts.keep ? keepApplied(plans, bundles, opts.keep, signal ? AbortSignal.any([signal, keepStop.signal]) : keepStop.signal) : undefined;
  const result: CopyResult = { bundles: [], named: [], blobs: { present: 0, mounted: 0, written: 0 }, bytesWritten: 0, bytesSent: 0 };
  const stopped = `the ${verb} was stopped: nothing was ${done}${verb === 'load' ? ' or tagged' : ''}`;
  const forms = views.map((v) => new LayerForms(v, bundles, stopped, signal, opts.allowUnsafeLayers));
  try {
    for (const [k, plan] of plans.entries()) result.bundles.push(await copyOne(plan, forms[k]!, target, result, events, signal));
    result.named = await target.commit(signal);
    const fault = await keeping;
    if (fault) result.keepFault = fault;
    return result;
  } catch (err) {
    // A layer the target refused as not its diffID is the bundle's fault: said so, and the target told so.
    const fault = asLayerLie(err, bundles, stopped) ?? err;
    keepStop.abort();
    await target.abort(fault);
    throw fault;
  } finally {
    await Promise.allSettled(forms.map((f) => f.close()));
    // The rebuilt layers it copies go with the deltas.
    await keeping;
    await deltas?.close();
  }
}

/** keepApplied keeps the layers the target lacked in the cache; a failure is told, not thrown: the copy is done. */
async function keepApplied(plans: readonly LayerPlan[], bundles: readonly BundleReader[], keep: KeepLayers, signal?: AbortSignal): Promise<string | undefined> {
  const applied = new Set(plans.flatMap((p) => p.images.flatMap(({ image }) => image.layers.filter((_, i) => !p.held.get(image)?.[i]).map((l) => l.diffId))));
  try {
    for (const b of bundles) await keepBundleLayers(b, keep, applied, signal);
    await keep.cache.prune(keep.maxBytes);
    return undefined;
  } catch (err) {
    return `the layers loaded were not kept in the layer cache ${keep.cache.dir} (${(err as Error).message}): a later delta bundle reads its references from the target instead`;
  }
}

/** copyOne writes one bundle's blobs (where the target stores blobs) and puts its images and indexes. */
async function copyOne(plan: LayerPlan, forms: LayerForms, target: ImageTarget, result: CopyResult, events: CopyEvents, signal?: AbortSignal): Promise<CopiedBundle> {
  const prepared = new Map<Digest, Promise<PreparedImage>>();
  const prepare = (image: BundleImage, names: string[], within: string[]): Promise<PreparedImage> => {
    let p = prepared.get(image.manifest.digest);
    if (!p) {
      p = prepareImage(plan.bundle, forms, target, { image, names, within }, plan.held);
      p.catch(() => undefined);
      prepared.set(image.manifest.digest, p);
    }
    return p;
  };
  const images = plan.images.map(({ image, names, within }) => prepare(image, names, within));
  const planned = new Set<string>();
  const expect = (key: string, bytes: number): void => {
    if (planned.has(key)) return;
    planned.add(key);
    events.planned?.(bytes);
  };
  // Every outcome is counted here and told once, so what progress shows and the summary says agree.
  const tally = (b: BlobToWrite, outcomes: readonly BlobOutcome[]): void => {
    for (const outcome of outcomes) {
      result.blobs[outcome]++;
      if (outcome === 'written') result.bytesWritten += b.size;
      events.blob?.({ digest: b.digest, size: b.size, outcome });
    }
  };
  if (target.writeBlob) {
    const write = target.writeBlob.bind(target);
    const lanes = new BlobLanes(BLOB_LANES);
    const stored = async (p: PreparedImage): Promise<void> => {
      const blobs = await p.put.blobs();
      for (const b of blobs) expect(b.digest, b.size);
      await settledAll(
        blobs.map((b) =>
          lanes.run(b.digest, b.size, async () => {
            const outcomes = await write(counted(b, result, events), [...p.put.names, ...p.put.within], signal);
            if (!outcomes.includes('written')) events.planned?.(-b.size);
            tally(b, outcomes);
          }),
        ),
      );
    };
    // Every image's blobs go into shared lanes as soon as it is prepared, so one image's big layer does not hold
    // back the next image's.
    await settledAll(images.map((p) => p.then(stored)));
  }
  const ready = await settledAll(images);
  const indexes: IndexToPut[] = [];
  for (const { index, names } of plan.indexes) indexes.push(await prepareIndex(plan.bundle, forms, index, names, (img) => prepare(img, [], names)));
  if (target.writeBlob) {
    for (const ix of indexes) for (const a of ix.artifacts) for (const b of a.blobs) tally(b, await target.writeBlob(counted(b, result, events), ix.names, signal));
  }
  // A whole-image target (a daemon) reads the layer tars it lacks inside putImages: those are the bytes that move.
  const toPut = ready.map((p) => {
    if (target.writeBlob || !events.sent) return p.put;
    for (const l of p.put.layers) if (!l.held) expect(l.diffId, l.uncompressedSize);
    return { ...p.put, layers: p.put.layers.map((l) => ({ ...l, tar: () => countedTar(l.tar(), events) })) };
  });
  const put = await target.putImages(
    toPut,
    indexes,
    { ...(signal ? { signal } : {}), ...(events.layer ? { onLayer: events.layer } : {}) },
  );
  return {
    bundle: plan.bundle,
    images: ready.map((p, k) => ({
      image: p.image,
      names: p.put.names,
      within: p.put.within,
      status: put[k]!.status,
      manifest: p.put.manifest.digest,
      storedAs: p.storedAs,
      layersSent: put[k]!.layersSent,
      layersPresent: put[k]!.layersPresent,
    })),
    indexes: indexes.map((ix, k) => ({ index: plan.indexes[k]!.index, names: ix.names, manifest: ix.manifest.digest })),
    skipped: plan.skipped,
    untagged: plan.untagged,
  };
}

/** counted is the blob with every byte its target reads of it added to bytesSent, and told as sent. */
function counted(b: BlobToWrite, result: CopyResult, events: CopyEvents): BlobToWrite {
  return {
    ...b,
    open: async function* (offset) {
      for await (const chunk of b.open(offset)) {
        result.bytesSent += chunk.length;
        events.sent?.(chunk.length);
        yield chunk;
      }
    },
  };
}

async function* countedTar(tar: AsyncIterable<Buffer>, events: CopyEvents): AsyncIterable<Buffer> {
  for await (const chunk of tar) {
    events.sent?.(chunk.length);
    yield chunk;
  }
}
