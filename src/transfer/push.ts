// push: the pipeline from a bundle into a registry. Names are mapped (retag rules, then --to), each blob the
// registry lacks is mounted or uploaded, then configs, manifests and indexes, each after everything it names.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { blobPath, type BundleImage, type BundleImageIndex } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { checkReferences } from '../bundle/verify.js';
import { lookup } from '../bundle/lookup.js';
import { sha256Of, type Digest } from '../image/digest.js';
import { compressionOf, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_LAYER_GZIP } from '../image/media-types.js';
import type { OciIndex, OciManifest } from '../image/model.js';
import { formatReference, parseReference, ReferenceError } from '../image/reference.js';
import { applyRetag, type RetagRule } from '../image/retag.js';
import type { BlobOutcome, BlobToPush, RegistrySink } from '../targets/registry.js';
import { bundleError, FerryError } from '../ui/errors.js';
import { decompress } from '../stream/decompress.js';
import { failingAs } from './bundle-faults.js';
import { Sha256Counter, verified } from '../stream/hash.js';

const STOPPED = 'the push was stopped before this blob was committed';

/** keep: push blobs as stored. gzip: zstd layers become gzip (what Docker 20.10 can pull); gzip and plain ones stay. */
export type PushCompression = 'gzip' | 'keep';

export interface PushTarget {
  registry: string;
  prefix: string;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

/** parsePushTarget reads --to HOST[:PORT][/PREFIX]. */
export function parsePushTarget(to: string): PushTarget {
  const s = to.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const slash = s.indexOf('/');
  const registry = slash < 0 ? s : s.slice(0, slash);
  const prefix = slash < 0 ? '' : s.slice(slash + 1);
  if (!HOST.test(registry)) throw new FerryError('USAGE', `--to ${to}: "${registry}" is not a registry host`, { hint: 'write --to HOST[:PORT][/PREFIX], e.g. --to registry.local:5000/mirror' });
  if (prefix !== '' && !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(prefix)) {
    throw new FerryError('USAGE', `--to ${to}: "${prefix}" is not a valid repository prefix (lower case, / between parts)`);
  }
  return { registry, prefix };
}

/** pushName is where a reference goes: retag rules first, then the registry of --to with its prefix before the path. */
export function pushName(ref: string, target: PushTarget, retag: readonly RetagRule[]): string {
  const r = parseReference(applyRetag(ref, retag));
  const path = target.prefix ? `${target.prefix}/${r.path}` : r.path;
  try {
    return formatReference(parseReference(`${target.registry}/${path}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`));
  } catch (err) {
    throw new FerryError('USAGE', `cannot push ${ref} to ${target.registry}: ${(err as ReferenceError).message}`);
  }
}

/** What one repository gets: images (by tag, or by digest only) and indexes (after their images). */
interface RepoPlan {
  repo: string;
  images: { image: BundleImage; tags: string[] }[];
  indexes: { index: BundleImageIndex; tags: string[] }[];
}

export interface PushPlan {
  registry: string;
  repos: RepoPlan[];
  /** Images left out because they have no name to be pushed under. */
  untagged: BundleImage[];
}

export interface PushOptions {
  target: PushTarget;
  retag?: readonly RetagRule[];
  /** Names or image IDs to push; all named images and indexes when empty. */
  select?: readonly string[];
  compression?: PushCompression;
  events?: {
    blob?(info: { digest: string; size: number; outcome: BlobOutcome; repo: string }): void;
    manifest?(info: { name: string; digest: string }): void;
    /** image: one image is in the registry under name, with the blobs its converted layers became (for receipts). */
    image?(info: { image: BundleImage; name: string; digest: Digest; storedAs: ReadonlyMap<string, { digest: Digest; size: number; mediaType: string }> }): void;
  };
  signal?: AbortSignal;
}

export interface PushedImage {
  name: string;
  digest: Digest;
  mediaType: string;
  platform?: string;
}

export interface PushResult {
  images: PushedImage[];
  blobs: Record<BlobOutcome, number>;
  bytesUploaded: number;
  untagged: string[];
}

/** planPush maps every chosen name to its target repository and tag, without touching the registry. */
export async function planPush(bundle: BundleReader, opts: PushOptions): Promise<PushPlan> {
  const faults: string[] = [];
  await checkReferences(bundle, (entry, problem) => faults.push(`${entry}: ${problem}`));
  if (faults.length) throw bundleError(bundle.path, undefined, `${faults.length} inconsistenc${faults.length === 1 ? 'y' : 'ies'} found; nothing was pushed`, faults);
  const idx = bundle.index;
  const indexes = idx.indexes ?? [];
  const select = opts.select ?? [];
  const retag = opts.retag ?? [];
  const chosenImages = new Map<BundleImage, string[]>();
  const chosenIndexes = new Map<BundleImageIndex, string[]>();
  const untagged: BundleImage[] = [];
  if (select.length === 0) {
    const inIndex = new Set<string>(indexes.flatMap((x) => x.images));
    for (const img of idx.images) {
      if (img.refs.length > 0) chosenImages.set(img, img.refs);
      else if (!inIndex.has(img.manifest.digest)) untagged.push(img);
    }
    for (const ix of indexes) if (ix.refs.length > 0) chosenIndexes.set(ix, ix.refs);
  } else {
    for (const n of select) {
      const found = lookup(idx, n);
      if (found.kind === 'index') chosenIndexes.set(found.index, [...new Set([...(chosenIndexes.get(found.index) ?? []), ...found.refs])]);
      else if (found.image.refs.length === 0) untagged.push(found.image);
      else chosenImages.set(found.image, [...new Set([...(chosenImages.get(found.image) ?? []), ...found.refs])]);
    }
  }
  const repos = new Map<string, RepoPlan>();
  const repoOf = (name: string): { plan: RepoPlan; tag: string } => {
    const r = parseReference(name);
    const key = r.path;
    let plan = repos.get(key);
    if (!plan) repos.set(key, (plan = { repo: key, images: [], indexes: [] }));
    return { plan, tag: r.digest ?? r.tag ?? 'latest' };
  };
  const addImage = (plan: RepoPlan, image: BundleImage, tag: string | undefined): void => {
    let entry = plan.images.find((e) => e.image === image);
    if (!entry) plan.images.push((entry = { image, tags: [] }));
    if (tag !== undefined && !tag.startsWith('sha256:') && !entry.tags.includes(tag)) entry.tags.push(tag);
  };
  for (const [img, refs] of chosenImages) {
    for (const ref of refs) {
      const { plan, tag } = repoOf(pushName(ref, opts.target, retag));
      addImage(plan, img, tag);
    }
  }
  for (const [ix, refs] of chosenIndexes) {
    for (const ref of refs) {
      const { plan, tag } = repoOf(pushName(ref, opts.target, retag));
      for (const d of ix.images) addImage(plan, idx.images.find((i) => i.manifest.digest === d)!, undefined);
      let entry = plan.indexes.find((e) => e.index === ix);
      if (!entry) plan.indexes.push((entry = { index: ix, tags: [] }));
      if (!tag.startsWith('sha256:') && !entry.tags.includes(tag)) entry.tags.push(tag);
    }
  }
  return { registry: opts.target.registry, repos: [...repos.values()].sort((a, b) => a.repo.localeCompare(b.repo)), untagged };
}

/** What travels for one image: its manifest as pushed (rewritten only when layers were recompressed) and its blobs. */
interface PushableImage {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
  blobs: BlobToPush[];
  /** Layers pushed as another blob than the bundle's (zstd converted to gzip), by diffID. */
  storedAs: Map<string, { digest: Digest; size: number; mediaType: string }>;
}

/** executePush pushes a plan: per repository, blobs (a few at once), then manifests, then indexes. */
export async function executePush(bundle: BundleReader, plan: PushPlan, sink: RegistrySink, opts: PushOptions): Promise<PushResult> {
  const { signal, events = {} } = opts;
  const compression = opts.compression ?? 'gzip';
  const work = await mkdtemp(join(tmpdir(), 'ferry-push-'));
  const result: PushResult = { images: [], blobs: { present: 0, mounted: 0, uploaded: 0 }, bytesUploaded: 0, untagged: plan.untagged.map((i) => i.imageId) };
  const converted = new Map<Digest, Promise<{ digest: Digest; size: number; path: string }>>();
  const prepared = new Map<Digest, Promise<PushableImage>>();
  const newDigestOf = new Map<Digest, Digest>();

  // gzip keeps a core busy: one conversion per core at a time.
  const converting = limiter(availableParallelism());
  const storedBlob = (digest: Digest, size: number): BlobToPush => {
    const entry = blobPath(digest);
    return {
      digest,
      size,
      open: (offset) => (offset === 0 ? failingAs(verified(bundle.stream(entry), { digest, size, what: entry }), bundle.path, entry, STOPPED) : bundle.stream(entry, offset)),
    };
  };
  const toGzip = (digest: Digest): Promise<{ digest: Digest; size: number; path: string }> => {
    let p = converted.get(digest);
    if (!p) {
      const blob = bundle.blob(digest)!;
      const entry = blobPath(digest);
      const path = join(work, digest.slice(7));
      const h = new Sha256Counter();
      const raw = verified(decompress(verified(bundle.stream(entry), { digest, size: blob.size, what: entry }), 'zstd', blob.uncompressedSize ?? 0), {
        digest: blob.diffId!,
        size: blob.uncompressedSize ?? 0,
        what: `${entry} (uncompressed)`,
      });
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          h.update(chunk);
          cb(null, chunk);
        },
      });
      p = converting(() =>
        pipeline(Readable.from(failingAs(raw, bundle.path, entry, STOPPED)), createGzip(), hashing, createWriteStream(path), { signal: signal ?? new AbortController().signal }).then(() => ({ digest: h.digest(), size: h.bytes, path })),
      );
      converted.set(digest, p);
    }
    return p;
  };
  const prepare = (img: BundleImage): Promise<PushableImage> => {
    let p = prepared.get(img.manifest.digest);
    if (!p) {
      p = (async (): Promise<PushableImage> => {
        const manifestBytes = await bundle.readBytes(blobPath(img.manifest.digest), MAX_MANIFEST_BYTES);
        // Relied-on layers are already in the registry (checked before anything was pushed): named, not pushed.
        const layers = img.layers.map((l) => bundle.blob(l.digest)).filter((b): b is NonNullable<typeof b> => b !== undefined);
        const config = storedBlob(img.config.digest, img.config.size);
        const recompress = compression === 'gzip' && layers.some((b) => compressionOf(b.mediaType) === 'zstd');
        if (!recompress) {
          return { bytes: manifestBytes, mediaType: img.manifest.mediaType, digest: img.manifest.digest, blobs: [...layers.map((b) => storedBlob(b.digest, b.size)), config], storedAs: new Map() };
        }
        const m = JSON.parse(manifestBytes.toString('utf8')) as OciManifest;
        const gzipType = img.manifest.mediaType === DOCKER_MANIFEST ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP;
        const blobs: BlobToPush[] = [];
        const storedAs = new Map<string, { digest: Digest; size: number; mediaType: string }>();
        // Every layer's conversion starts now (a few run at once, see toGzip); the blobs keep the layers' order.
        const gzipped = img.layers.map((l) => {
          const b = bundle.blob(l.digest);
          return b && compressionOf(b.mediaType) === 'zstd' ? toGzip(b.digest) : undefined;
        });
        gzipped.forEach((g) => g?.catch(() => undefined));
        for (const [i, l] of img.layers.entries()) {
          const b = bundle.blob(l.digest);
          if (!b) continue;
          if (compressionOf(b.mediaType) !== 'zstd') {
            blobs.push(storedBlob(b.digest, b.size));
            continue;
          }
          const g = await gzipped[i]!;
          m.layers[i] = { ...m.layers[i]!, mediaType: gzipType, digest: g.digest, size: g.size };
          storedAs.set(l.diffId, { digest: g.digest, size: g.size, mediaType: gzipType });
          blobs.push({ digest: g.digest, size: g.size, open: (offset) => createReadStream(g.path, { start: offset, highWaterMark: 1 << 20 }) });
        }
        blobs.push(config);
        const bytes = Buffer.from(JSON.stringify(m));
        const digest = sha256Of(bytes);
        newDigestOf.set(img.manifest.digest, digest);
        return { bytes, mediaType: img.manifest.mediaType, digest, blobs, storedAs };
      })();
      prepared.set(img.manifest.digest, p);
    }
    return p;
  };

  try {
    await checkRelied(bundle, plan, sink, signal);
    // The first failure stops the rest (nothing new starts) and is what the push fails with.
    let failure: { err: unknown } | undefined;
    const lanes = new BlobLanes(BLOB_LANES, (err) => void (failure ??= { err }));
    const failing = (err: unknown): never => {
      failure ??= { err };
      lanes.stop();
      throw err;
    };
    const going = (): void => {
      if (failure) throw new Error('the push stopped after a failure');
    };
    const pushBlob = (repo: string, b: BlobToPush, counted: boolean) => async (): Promise<void> => {
      const outcome = await sink.pushBlob(repo, b, signal);
      result.blobs[outcome]++;
      if (outcome === 'uploaded') result.bytesUploaded += b.size;
      if (counted) events.blob?.({ digest: b.digest, size: b.size, outcome, repo });
    };
    // Every image's blobs go into shared lanes as soon as it is prepared, so one image's big layer does not hold
    // back the next image's; each image's manifests follow its own blobs, each repository's indexes its images.
    // Results are listed in the plan's order, whatever order they finish in.
    const pushed = plan.repos.map((repo) => Array.from({ length: repo.images.length + repo.indexes.length }, (): PushedImage[] => []));
    const repoJobs = plan.repos.map(async (repo, r) => {
      const imageJobs = repo.images.map(async ({ image, tags }, k) => {
        const p = await prepare(image);
        going();
        for (const l of image.layers) {
          if (bundle.blob(l.digest)) continue;
          // Relied on: found before anything was pushed; mounted here if it lives in another repository.
          const outcome = await sink.reuse(repo.repo, l.digest, signal);
          if (!outcome) throw new FerryError('MISSING_LAYERS', `registry ${sink.registry} no longer has ${l.digest}, which ${repo.repo} relies on`, { hint: 'push the bundle that carried it, then push this one again' });
          result.blobs[outcome]++;
        }
        await settledAll(p.blobs.map((b) => lanes.run(b.digest, b.size, pushBlob(repo.repo, b, true))));
        going();
        const out = pushed[r]![k]!;
        for (const ref of tags.length ? tags : [p.digest]) {
          const digest = await sink.pushManifest(repo.repo, ref, p.bytes, p.mediaType, signal);
          const name = `${sink.registry}/${repo.repo}${ref.startsWith('sha256:') ? '@' : ':'}${ref}`;
          events.manifest?.({ name, digest });
          events.image?.({ image, name, digest, storedAs: p.storedAs });
          out.push({ name, digest, mediaType: p.mediaType, platform: `${image.platform.os}/${image.platform.architecture}${image.platform.variant ? `/${image.platform.variant}` : ''}` });
        }
      }).map((job) => job.catch(failing));
      await settledAll(imageJobs);
      for (const [j, { index, tags }] of repo.indexes.entries()) {
        going();
        // Artifacts (attestations) the index lists go first, as opaque blobs and a manifest by digest.
        for (const a of index.artifacts ?? []) {
          const body = await bundle.readBytes(blobPath(a), MAX_MANIFEST_BYTES);
          const m = JSON.parse(body.toString('utf8')) as OciManifest;
          const blobs = [m.config, ...(m.layers ?? [])].map((b) => storedBlob(b.digest as Digest, b.size));
          await settledAll(blobs.map((b) => lanes.run(b.digest, b.size, pushBlob(repo.repo, b, false))));
          await sink.pushManifest(repo.repo, a, body, bundle.blob(a)!.mediaType, signal);
        }
        let bytes = await bundle.readBytes(blobPath(index.digest), MAX_MANIFEST_BYTES);
        // Children that were recompressed have new digests: the index follows them (and so changes digest too).
        if (index.images.some((d) => newDigestOf.has(d))) {
          const body = JSON.parse(bytes.toString('utf8')) as OciIndex;
          for (const d of body.manifests) {
            const img = bundle.index.images.find((i) => i.manifest.digest === d.digest);
            if (img && newDigestOf.has(img.manifest.digest)) {
              const p = await prepare(img);
              d.digest = p.digest;
              d.size = p.bytes.length;
            }
          }
          bytes = Buffer.from(JSON.stringify(body));
        }
        const out = pushed[r]![repo.images.length + j]!;
        for (const tag of tags) {
          const digest = await sink.pushManifest(repo.repo, tag, bytes, index.mediaType, signal);
          const name = `${sink.registry}/${repo.repo}:${tag}`;
          events.manifest?.({ name, digest });
          out.push({ name, digest, mediaType: index.mediaType });
        }
      }
    }).map((job) => job.catch(failing));
    await Promise.allSettled(repoJobs);
    lanes.stop();
    if (failure) throw failure.err;
    for (const lists of pushed) for (const list of lists) result.images.push(...list);
  } finally {
    await Promise.allSettled(converted.values());
    await rm(work, { recursive: true, force: true });
  }
  return result;
}

/** dryRun says, per repository, what a push would do with each blob, asking the registry but writing nothing. */
export async function dryRun(bundle: BundleReader, plan: PushPlan, sink: RegistrySink, opts: PushOptions): Promise<{ repo: string; tags: string[]; blobs: { digest: string; size: number; action: string }[] }[]> {
  const compression = opts.compression ?? 'gzip';
  const out = [];
  for (const repo of plan.repos) {
    const blobs: { digest: string; size: number; action: string }[] = [];
    const seen = new Set<string>();
    for (const { image } of repo.images) {
      const relied = new Map(bundle.index.reliesOn.map((r) => [r.digest as string, r]));
      for (const l of [...image.layers.map((l) => bundle.blob(l.digest) ?? relied.get(l.digest)!), { digest: image.config.digest, size: image.config.size, mediaType: image.config.mediaType }]) {
        if (seen.has(l.digest)) continue;
        seen.add(l.digest);
        const action = relied.has(l.digest)
          ? `relied on: ${(await sink.find(repo.repo, l.digest, plan.repos.map((r) => r.repo), opts.signal)) ?? 'MISSING from the registry'}`
          : compression === 'gzip' && compressionOf(l.mediaType) === 'zstd'
            ? 'recompress to gzip, upload'
            : await sink.check(repo.repo, l.digest, opts.signal);
        blobs.push({ digest: l.digest, size: l.size, action });
      }
    }
    const tags = [...repo.images.flatMap((i) => i.tags), ...repo.indexes.flatMap((i) => i.tags)];
    out.push({ repo: `${plan.registry}/${repo.repo}`, tags: [...new Set(tags)], blobs });
  }
  return out;
}

/**
 * checkRelied finds every layer a thin bundle relies on in the registry (in the image's repository, or another
 * one of this push to mount from) before anything is pushed, and refuses, listing them, when some are missing.
 */
async function checkRelied(bundle: BundleReader, plan: PushPlan, sink: RegistrySink, signal?: AbortSignal): Promise<void> {
  const relied = new Map(bundle.index.reliesOn.map((r) => [r.digest as string, r]));
  if (relied.size === 0) return;
  const repos = plan.repos.map((r) => r.repo);
  const missing = new Map<string, string[]>();
  for (const repo of plan.repos) {
    for (const { image, tags } of repo.images) {
      for (const [i, l] of image.layers.entries()) {
        if (bundle.blob(l.digest) || !relied.has(l.digest)) continue;
        if ((await sink.find(repo.repo, l.digest, repos, signal)) !== undefined) continue;
        const list = missing.get(l.digest) ?? [];
        list.push(`${sink.registry}/${repo.repo}${tags[0] ? `:${tags[0]}` : ''} (layer ${i + 1} of ${image.layers.length})`);
        missing.set(l.digest, list);
      }
    }
  }
  if (missing.size === 0) return;
  throw new FerryError('MISSING_LAYERS', `registry ${sink.registry} lacks ${missing.size} layer blob(s) this bundle relies on but does not hold; nothing was pushed`, {
    details: [...missing].map(([d, needed]) => {
      const r = relied.get(d)!;
      return `${d} (layer ${r.diffId}): needed by ${needed.join(', ')}; ${r.carriedBy ? `carried by bundle ${r.carriedBy}` : 'no bundle is known to have carried it'}`;
    }),
    hint: "push the bundles that carried them first, or pack against the registry's own inventory (ferry inventory --registry) so the bundle names the blobs it holds",
  });
}

/** Blob uploads at once, across all images of a push. */
const BLOB_LANES = 4;

/**
 * BlobLanes runs a push's blob transfers a few at a time, the biggest waiting one first (so the long ones start
 * early and the lanes end together). Transfers of the same blob run one after another in the order they were
 * asked for: the first uploads it, the next ones find it there or mount it, as they would one image at a time.
 * After the first failure no new transfer starts.
 */
class BlobLanes {
  private readonly waiting: { size: number; seq: number; start: () => void }[] = [];
  private readonly last = new Map<string, Promise<unknown>>();
  private running = 0;
  private seq = 0;
  private stopped = false;

  constructor(
    private readonly limit: number,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  run(digest: string, size: number, fn: () => Promise<void>): Promise<void> {
    const before = this.last.get(digest) ?? Promise.resolve();
    const done = before.then(
      () => this.slot(size, fn),
      () => this.slot(size, fn),
    );
    this.last.set(digest, done.catch(() => undefined));
    return done;
  }

  /** stop: nothing more starts (what waits fails); transfers under way finish. */
  stop(): void {
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w.start();
  }

  private async slot(size: number, fn: () => Promise<void>): Promise<void> {
    if (this.running >= this.limit) {
      await new Promise<void>((start) => {
        this.waiting.push({ size, seq: this.seq++, start });
        this.waiting.sort((a, b) => b.size - a.size || a.seq - b.seq);
      });
    } else this.running++;
    try {
      if (this.stopped) throw new Error('the push stopped after a failure');
      try {
        await fn();
      } catch (err) {
        this.onFailure(err);
        this.stop();
        throw err;
      }
    } finally {
      const next = this.waiting.shift();
      if (next) next.start();
      else this.running--;
    }
  }
}

/** limiter runs at most n of the functions given to it at once. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    else running++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** settledAll waits for every promise, then throws the first failure (so nothing is left running behind an error). */
async function settledAll(ps: readonly Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
