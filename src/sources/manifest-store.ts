// ManifestStoreSource: images from any place that keeps manifests and blobs by digest (a registry, an OCI
// layout, a bundle). It picks platforms from indexes and hands layers over byte for byte, so digests hold.
import { isSha256, sha256Of, type DiffId, type Digest } from '../image/digest.js';
import { compressionOf, isImageManifestType, isIndexType, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST } from '../image/media-types.js';
import type { ImageConfig } from '../image/model.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../image/platform.js';
import { FerryError } from '../ui/errors.js';
import { collect, verified } from '../stream/hash.js';
import type { BlobDescriptor, KeptImageManifest, KeptManifest } from '../image/descriptor.js';
import type { ExportedImage, ImageSource, LayerSink, Resolved, ResolveOptions, SourceImage, SourceIndex } from './source.js';

/** A place that stores manifests and blobs by digest. Transports implement only this. */
export interface ManifestStore {
  /** Where the store is, for messages: docker://host/repo, oci:DIR. */
  readonly where: string;
  /** manifest reads a manifest or index by tag (or ref name) or by digest. mediaType may be '' if the store does not know it. */
  manifest(ref: string, signal?: AbortSignal): Promise<KeptManifest>;
  /** blob streams a blob's stored bytes; the caller checks them against desc unless the store says it does. */
  blob(desc: BlobDescriptor, signal?: AbortSignal): Promise<AsyncIterable<Buffer>>;
  /** True when blob() itself fails on bytes that do not match the descriptor (a registry client checks as it pulls). */
  readonly checksBlobs?: boolean;
}

/** Located is a name resolved to its store, the tag or digest to ask it for, and the references it travels under. */
export interface Located {
  store: ManifestStore;
  ref: string;
  refs: string[];
  /** For an image asked for by digest: the repository, so a platform picked from an index keeps an honest pin. */
  repository?: string;
}

const MAX_CONFIG = 16 << 20;
const ATTESTATION = 'vnd.docker.reference.type';

interface RawDescriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
  annotations?: Record<string, unknown>;
}

/** Names asked of a source for a delta's references, at most: each costs a manifest and a config request. */
const MAX_REFERENCE_IMAGES = 8;

export class ManifestStoreSource implements ImageSource {
  readonly transport: string;
  private readonly locate: (asked: string) => Promise<Located[]>;
  private readonly onClose: (() => Promise<void>) | undefined;
  /** Which store each resolved image comes from, and its config bytes (small, read while resolving). */
  private readonly origin = new Map<Digest, { store: ManifestStore; config: Buffer }>();
  private readonly artifactStores = new Map<Digest, ManifestStore>();

  /**
   * locate turns one name into what it stands for: usually one image, or every image of an archive named without a
   * reference. mayHold says whether a name is worth asking for as a delta's reference (a registry: on a host this
   * source already reads from; never another, which could be the internet).
   */
  constructor(transport: string, locate: (asked: string) => Promise<Located[]>, onClose?: () => Promise<void>, private readonly mayHold?: (name: string) => boolean) {
    this.transport = transport;
    this.locate = locate;
    this.onClose = onClose;
  }

  /** imagesWithLayers: of the candidates this source may hold (at most a few, each a manifest and config fetched), those holding any of the layers. */
  async imagesWithLayers(diffIds: readonly DiffId[], candidates: readonly string[], signal?: AbortSignal): Promise<string[]> {
    const wanted = new Set(diffIds);
    const out: string[] = [];
    for (const name of candidates.filter((c) => this.mayHold?.(c)).slice(0, MAX_REFERENCE_IMAGES)) {
      // A name the source does not have (deleted, never pushed there, refused) simply holds nothing.
      const r = await this.resolve([name], signal ? { signal } : {}).catch(() => undefined);
      if (r?.images.some((i) => i.diffIds.some((d) => wanted.has(d)))) out.push(name);
    }
    return out;
  }

  async resolve(names: readonly string[], opts: ResolveOptions = {}): Promise<Resolved> {
    const images = new Map<Digest, SourceImage>();
    const indexes = new Map<Digest, SourceIndex>();
    const keep = (img: SourceImage): void => {
      const known = images.get(img.manifest!.digest);
      if (known) for (const r of img.refs) !known.refs.includes(r) && known.refs.push(r);
      else images.set(img.manifest!.digest, img);
    };
    for (const asked of names) for (const loc of await this.locate(asked)) {
      const top = await this.readManifest(loc.store, loc.ref, opts.signal);
      if (isIndexType(top.mediaType)) {
        const picked = await this.fromIndex(asked, loc, top, opts);
        for (const img of picked.images) keep(img);
        if (picked.index) {
          const known = indexes.get(picked.index.manifest.digest);
          if (known) for (const r of picked.index.refs) !known.refs.includes(r) && known.refs.push(r);
          else indexes.set(picked.index.manifest.digest, picked.index);
        }
      } else {
        const img = await this.image(asked, loc.store, top, loc.refs, opts.signal);
        const wanted = opts.platforms ?? [];
        if (wanted.length > 0 && !wanted.some((p) => platformMatches(p, img.platform))) {
          throw new FerryError('IMAGE_NOT_FOUND', `${loc.store.where}:${loc.ref} is a single ${formatPlatform(img.platform)} image, not ${wanted.map(formatPlatform).join(' or ')}`, {
            hint: 'leave out --platform to take it as it is',
          });
        }
        keep(img);
      }
    }
    return { images: [...images.values()], indexes: [...indexes.values()] };
  }

  async export(images: readonly SourceImage[], sink: LayerSink, signal?: AbortSignal): Promise<ExportedImage[]> {
    const out: ExportedImage[] = [];
    for (const img of images) {
      const m = img.manifest;
      const origin = m && this.origin.get(m.digest);
      if (!m || !origin) throw new Error(`ManifestStoreSource.export: ${img.asked} was not resolved by this source`);
      for (const [i, layer] of m.layers.entries()) {
        if (!sink.wantsBlob({ ...layer, diffId: img.diffIds[i]! })) continue;
        signal?.throwIfAborted();
        const stored = await origin.store.blob(layer, signal);
        // Hashing megabytes twice on this thread would cost time the copy needs; one check is enough.
        const body = origin.store.checksBlobs ? stored : verified(stored, { digest: layer.digest, size: layer.size, what: `${origin.store.where} layer ${layer.digest}` });
        await sink.putBlob({ ...layer, diffId: img.diffIds[i]! }, body);
      }
      out.push({ ...img, config: origin.config });
    }
    return out;
  }

  async exportArtifacts(indexes: readonly SourceIndex[], sink: LayerSink, signal?: AbortSignal): Promise<void> {
    for (const ix of indexes) {
      for (const a of ix.artifacts) {
        const store = this.artifactStores.get(a.digest);
        if (!store) throw new Error(`ManifestStoreSource.exportArtifacts: ${a.digest} was not resolved by this source`);
        for (const b of [a.config, ...a.layers]) {
          if (sink.hasOpaque(b.digest)) continue;
          signal?.throwIfAborted();
          await sink.putOpaque(b, verified(await store.blob(b, signal), { digest: b.digest, size: b.size, what: `${store.where} blob ${b.digest}` }));
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.onClose?.();
  }

  /** readManifest fetches a manifest, checks its bytes against the digest asked for and settles its media type. */
  private async readManifest(store: ManifestStore, ref: string, signal?: AbortSignal): Promise<KeptManifest & { json: Record<string, unknown> }> {
    const m = await store.manifest(ref, signal);
    const where = `${store.where}${ref.startsWith('sha256:') ? '@' : ':'}${ref}`;
    if (m.bytes.length > MAX_MANIFEST_BYTES) throw invalid(where, `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const digest = sha256Of(m.bytes);
    if (m.digest !== digest || (isSha256(ref) && ref !== digest)) throw invalid(where, `manifest content does not match its digest ${isSha256(ref) ? ref : m.digest} (got ${digest})`);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(m.bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw invalid(where, 'manifest is not JSON');
    }
    if (typeof json !== 'object' || json === null) throw invalid(where, 'manifest is not a JSON object');
    if (json.schemaVersion === 1) throw invalid(where, 'is a Docker schema 1 manifest, which ferry does not read', 'push it again with a current Docker or skopeo');
    const declared = typeof json.mediaType === 'string' ? json.mediaType : '';
    const mediaType = m.mediaType && (isIndexType(m.mediaType) || isImageManifestType(m.mediaType)) ? m.mediaType : declared || (Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST);
    if (!isIndexType(mediaType) && !isImageManifestType(mediaType)) throw invalid(where, `has media type ${mediaType}, which is not an image manifest or index`);
    return { bytes: m.bytes, mediaType, digest, json };
  }

  private async fromIndex(asked: string, loc: Located, top: KeptManifest & { json: Record<string, unknown> }, opts: ResolveOptions): Promise<{ images: SourceImage[]; index?: SourceIndex }> {
    const where = `${loc.store.where}:${loc.ref}`;
    const all = Array.isArray(top.json.manifests) ? (top.json.manifests as RawDescriptor[]) : undefined;
    if (!all) throw invalid(where, 'index has no manifests list');
    const children = all.map((d, i) => {
      if (typeof d?.digest !== 'string' || !isSha256(d.digest) || typeof d.size !== 'number') throw invalid(where, `index entry ${i + 1} is not a valid descriptor`);
      return d;
    });
    const imagesOnly = children.filter((d) => d.annotations?.[ATTESTATION] === undefined && isImageManifestType(typeof d.mediaType === 'string' ? d.mediaType : OCI_MANIFEST));
    const platformOf = (d: RawDescriptor): Platform | undefined =>
      typeof d.platform?.os === 'string' && typeof d.platform.architecture === 'string'
        ? { os: d.platform.os, architecture: d.platform.architecture, ...(typeof d.platform.variant === 'string' ? { variant: d.platform.variant } : {}) }
        : undefined;

    let chosen: RawDescriptor[];
    let artifacts: KeptImageManifest[] = [];
    if (opts.allPlatforms) {
      chosen = imagesOnly;
      // Attestations and the like ride along as opaque blobs, so the index is kept whole and its digest holds.
      artifacts = await Promise.all(children.filter((d) => !imagesOnly.includes(d)).map((d) => this.artifact(loc.store, d.digest as string, opts.signal)));
    }
    else {
      const wanted = opts.platforms?.length ? opts.platforms : [hostPlatform()];
      chosen = wanted.map((w) => {
        const hit = imagesOnly.find((d) => {
          const p = platformOf(d);
          return p !== undefined && platformMatches(w, p);
        });
        if (!hit) {
          const has = imagesOnly.map((d) => platformOf(d)).filter((p): p is Platform => p !== undefined).map(formatPlatform);
          throw new FerryError('IMAGE_NOT_FOUND', `${where} has no ${formatPlatform(w)} image (it has ${has.join(', ') || 'none'})`, {
            hint: 'choose one with --platform os/arch[/variant], or keep them all with --all-platforms',
          });
        }
        return hit;
      });
      chosen = [...new Set(chosen)];
    }
    if (chosen.length === 0) throw invalid(where, 'index lists no images');
    const images: SourceImage[] = [];
    for (const d of chosen) {
      const m = await this.readManifest(loc.store, d.digest as string, opts.signal);
      if (!isImageManifestType(m.mediaType)) throw invalid(where, `index entry ${d.digest as string} is not an image manifest`);
      images.push(await this.image(asked, loc.store, m, [], opts.signal));
    }
    if (!opts.allPlatforms && chosen.length === 1) {
      // One platform taken from an index is the image itself, as `docker pull` makes it; a digest pin names the child.
      const img = images[0]!;
      const pinned = loc.refs.some((r) => r.includes('@'));
      img.refs = pinned ? (loc.repository ? [`${loc.repository}@${img.manifest!.digest}`] : []) : [...loc.refs];
      return { images };
    }
    const whole = chosen.length + artifacts.length === children.length;
    const bytes = whole ? top.bytes : Buffer.from(JSON.stringify({ ...top.json, manifests: chosen }));
    const manifest: KeptManifest = { bytes, mediaType: top.mediaType, digest: whole ? top.digest : sha256Of(bytes) };
    const refs = whole ? loc.refs : loc.refs.map((r) => (r.includes('@') && loc.repository ? `${loc.repository}@${manifest.digest}` : r));
    return { images, index: { asked, refs, manifest, images: images.map((i) => i.manifest!.digest), filtered: !whole, artifacts } };
  }

  /** artifact reads a manifest that is not a runnable image; its blobs are carried without looking inside. */
  private async artifact(store: ManifestStore, digest: string, signal?: AbortSignal): Promise<KeptImageManifest> {
    const m = await this.readManifest(store, digest, signal);
    const where = `${store.where}@${m.digest}`;
    if (!isImageManifestType(m.mediaType)) throw invalid(where, `index entry of type ${m.mediaType} cannot be carried`, 'pick platforms with --platform instead of --all-platforms');
    const layers = Array.isArray(m.json.layers) ? (m.json.layers as unknown[]).map((l, i) => descriptor(l, where, `layer ${i + 1}`)) : [];
    const kept: KeptImageManifest = { bytes: m.bytes, mediaType: m.mediaType, digest: m.digest, config: descriptor(m.json.config, where, 'config'), layers };
    this.artifactStores.set(kept.digest, store);
    return kept;
  }

  /** image reads an image manifest's config and checks that its layers and diffIDs line up. */
  private async image(asked: string, store: ManifestStore, m: KeptManifest & { json: Record<string, unknown> }, refs: string[], signal?: AbortSignal): Promise<SourceImage> {
    const where = `${store.where}@${m.digest}`;
    const config = descriptor(m.json.config, where, 'config');
    const layers = Array.isArray(m.json.layers) ? (m.json.layers as unknown[]).map((l, i) => descriptor(l, where, `layer ${i + 1}`)) : undefined;
    if (!layers) throw invalid(where, 'manifest has no layers list');
    for (const l of layers) {
      if (compressionOf(l.mediaType) === undefined) throw invalid(where, `layer ${l.digest} has media type ${l.mediaType}, which ferry cannot unpack`, 'only tar layers (plain, gzip or zstd) can travel');
    }
    const configBytes = await collect(verified(await store.blob(config, signal), { digest: config.digest, size: config.size, what: `${where} config` }), MAX_CONFIG);
    let cfg: ImageConfig;
    try {
      cfg = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    } catch {
      throw invalid(where, 'image config is not JSON');
    }
    const diffIds = Array.isArray(cfg.rootfs?.diff_ids) ? (cfg.rootfs!.diff_ids as unknown[]) : [];
    if (!diffIds.every(isSha256) || diffIds.length !== layers.length) {
      throw invalid(where, `config lists ${diffIds.length} layer diffIDs for the manifest's ${layers.length} layers`);
    }
    const kept: KeptImageManifest = { bytes: m.bytes, mediaType: m.mediaType, digest: m.digest, config, layers };
    this.origin.set(m.digest, { store, config: configBytes });
    return {
      asked,
      refs: [...refs],
      id: config.digest,
      platform: { os: cfg.os ?? 'linux', architecture: cfg.architecture ?? 'amd64', ...(cfg.variant ? { variant: cfg.variant } : {}) },
      diffIds: diffIds as DiffId[],
      size: layers.reduce((s, l) => s + l.size, 0),
      manifest: kept,
    };
  }
}

function descriptor(v: unknown, where: string, what: string): BlobDescriptor {
  const d = v as RawDescriptor;
  if (!d || typeof d.digest !== 'string' || !isSha256(d.digest) || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0 || typeof d.mediaType !== 'string') {
    throw invalid(where, `${what} is not a valid descriptor`);
  }
  return { mediaType: d.mediaType, digest: d.digest as Digest, size: d.size };
}

function invalid(where: string, what: string, hint?: string): FerryError {
  return new FerryError('RUNTIME', `${where}: ${what}`, hint ? { hint } : {});
}
