// RegistryTarget: images into an OCI distribution registry under --to HOST[:PORT][/PREFIX]. Each blob the
// repository lacks is mounted from another repository of this push or uploaded (resuming a cut upload), manifests
// and indexes go by digest, and commit tags them.
import type { Digest } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import { formatReference, parseReference, ReferenceError } from '../image/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { FerryError } from '../ui/errors.js';
import type { BlobOutcome, BlobToWrite, ImageTarget, ImageToPut, IndexToPut, LayerKeeper, LayerQuestion, NamedRef, PutImage, PutOptions, WantedLayer } from './target.js';
import { decompress } from '../stream/decompress.js';
import { verified } from '../stream/hash.js';

/** keep: push blobs as stored. gzip: zstd layers become gzip (what Docker 20.10 can pull); gzip and plain ones stay. */
export type PushCompression = 'gzip' | 'keep';

export interface PushPlace {
  registry: string;
  prefix: string;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

/** parsePushPlace reads --to HOST[:PORT][/PREFIX]. */
export function parsePushPlace(to: string): PushPlace {
  const s = to.replace(/^docker:\/\//, '').replace(/\/+$/, '');
  const slash = s.indexOf('/');
  const registry = slash < 0 ? s : s.slice(0, slash);
  const prefix = slash < 0 ? '' : s.slice(slash + 1);
  if (!HOST.test(registry)) throw new FerryError('USAGE', `--to ${to}: "${registry}" is not a registry host`, { hint: 'write --to HOST[:PORT][/PREFIX], e.g. --to registry.local:5000/mirror' });
  if (prefix !== '' && !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(prefix)) {
    throw new FerryError('USAGE', `--to ${to}: "${prefix}" is not a valid repository prefix (lower case, / between parts)`, { hint: 'e.g. --to registry.local:5000/mirror' });
  }
  return { registry, prefix };
}

/** A name placed on the registry: its repository, and its tag or digest. */
export interface Placed {
  repo: string;
  /** A tag, or a digest for a name that pins one. */
  ref: string;
}

export class RegistryTarget implements ImageTarget {
  readonly reuse = 'blob';
  readonly needsNames = true;
  /** Repositories of this registry known to hold a blob: pushed or found there during this run. */
  private readonly holders = new Map<Digest, string>();
  /** Blobs asked about and found absent from a repository, so a write does not ask again. */
  private readonly absent = new Set<string>();
  /** Every repository this push puts images in: where a blob one of them lacks may be mounted from. */
  private readonly repos = new Set<string>();
  private readonly toTag: { repo: string; tag: string; manifest: ImageToPut['manifest']; imageId?: Digest }[] = [];

  constructor(
    readonly client: RegistryClient,
    readonly place: PushPlace,
    private readonly compression: PushCompression,
  ) {}

  get registry(): string {
    return this.client.registry;
  }

  get description(): string {
    return `registry ${this.client.registry}`;
  }

  get inventoryCommand(): string {
    return `ferry inventory --registry ${this.client.registry}${this.place.prefix ? `/${this.place.prefix}` : ''}`;
  }

  async platform(): Promise<undefined> {
    return undefined;
  }

  /**
   * layerForm: zstd layers become gzip unless kept; uncompressed ones (a delta layer rebuilt, a --compression none
   * bundle) always do, as docker push compresses every layer it sends.
   */
  layerForm(mediaType: string): 'gzip' | 'stored' {
    const c = compressionOf(mediaType);
    return c === 'none' || (this.compression === 'gzip' && c === 'zstd') ? 'gzip' : 'stored';
  }

  /** placed says where a name goes: the registry of --to, its prefix before the repository path. */
  placed(name: string): Placed {
    const r = parseReference(name);
    const path = this.place.prefix ? `${this.place.prefix}/${r.path}` : r.path;
    try {
      parseReference(`${this.place.registry}/${path}:probe`);
    } catch (err) {
      throw new FerryError('USAGE', `cannot push ${formatReference(r)} to ${this.place.registry}: ${(err as ReferenceError).message}`);
    }
    return { repo: path, ref: r.digest ?? r.tag ?? 'latest' };
  }

  /** fullName is a placed name as a reference: host/repo:tag or host/repo@digest. */
  fullName(p: Placed): string {
    return `${this.client.registry}/${p.repo}${p.ref.startsWith('sha256:') ? '@' : ':'}${p.ref}`;
  }

  willPut(names: readonly string[]): void {
    for (const n of names) this.repos.add(this.placed(n).repo);
  }

  /** holds: every repository the image goes to has the blob, or can mount it from another of this push. */
  async holds(layer: LayerQuestion, names: readonly string[], signal?: AbortSignal): Promise<boolean> {
    for (const repo of this.reposOf(names)) if ((await this.find(repo, layer.digest, signal)) === undefined) return false;
    return true;
  }

  /** find says whether repo holds a blob, or one of the other repositories of this push does; undefined when none. */
  async find(repo: string, digest: Digest, signal?: AbortSignal): Promise<'present' | 'mountable' | undefined> {
    if (await this.has(repo, digest, signal)) return 'present';
    const known = this.holders.get(digest);
    if (known !== undefined && known !== repo) return 'mountable';
    for (const other of this.repos) {
      if (other !== repo && (await this.has(other, digest, signal))) {
        this.holders.set(digest, other);
        return 'mountable';
      }
    }
    return undefined;
  }

  /** check says what writing a blob would do, writing nothing (for --dry-run). */
  async check(repo: string, digest: Digest, signal?: AbortSignal): Promise<'present' | 'mount' | 'upload'> {
    if (await this.has(repo, digest, signal)) return 'present';
    return this.holders.has(digest) ? 'mount' : 'upload';
  }

  async writeBlob(blob: BlobToWrite, names: readonly string[], signal?: AbortSignal): Promise<BlobOutcome[]> {
    const out: BlobOutcome[] = [];
    for (const repo of this.reposOf(names)) {
      let outcome: BlobOutcome;
      const from = this.holders.get(blob.digest);
      if (!this.absent.has(`${repo} ${blob.digest}`) && (await this.client.hasBlob(repo, blob.digest, signal)) !== undefined) outcome = 'present';
      else if (from !== undefined && from !== repo && (await this.client.mountBlob(repo, blob.digest, from, signal))) outcome = 'mounted';
      else {
        await this.client.uploadBlob(repo, blob.digest, blob.size, blob.open, signal);
        outcome = 'written';
      }
      this.absent.delete(`${repo} ${blob.digest}`);
      if (!this.holders.has(blob.digest)) this.holders.set(blob.digest, repo);
      out.push(outcome);
    }
    return out;
  }

  /** putImages makes held layers present in each repository (mounting them), then puts manifests and indexes by digest. */
  async putImages(images: readonly ImageToPut[], indexes: readonly IndexToPut[], opts: PutOptions = {}): Promise<PutImage[]> {
    const { signal } = opts;
    const out: PutImage[] = [];
    for (const img of images) {
      for (const repo of this.reposOf([...img.names, ...img.within])) {
        for (const l of img.layers) if (l.held && l.blob) await this.mountInto(repo, l.blob.digest, signal);
        await this.client.putManifest(repo, img.manifest.digest, img.manifest.bytes, img.manifest.mediaType, signal);
      }
      for (const n of img.names) {
        const p = this.placed(n);
        if (!p.ref.startsWith('sha256:')) this.toTag.push({ repo: p.repo, tag: p.ref, manifest: img.manifest, imageId: img.imageId });
      }
      const sent = img.layers.filter((l) => !l.held).length;
      out.push({ imageId: img.imageId, status: 'put', layersSent: sent, layersPresent: img.layers.length - sent });
    }
    for (const ix of indexes) {
      for (const repo of this.reposOf(ix.names)) {
        for (const a of ix.artifacts) await this.client.putManifest(repo, a.manifest.digest, a.manifest.bytes, a.manifest.mediaType, signal);
        await this.client.putManifest(repo, ix.manifest.digest, ix.manifest.bytes, ix.manifest.mediaType, signal);
      }
      for (const n of ix.names) {
        const p = this.placed(n);
        if (!p.ref.startsWith('sha256:')) this.toTag.push({ repo: p.repo, tag: p.ref, manifest: ix.manifest });
      }
    }
    return out;
  }

  /** commit tags: each manifest again under its tag (a small PUT; every blob and child is in the registry by now). */
  async commit(signal?: AbortSignal): Promise<NamedRef[]> {
    const out: NamedRef[] = [];
    for (const t of this.toTag) {
      const digest = await this.client.putManifest(t.repo, t.tag, t.manifest.bytes, t.manifest.mediaType, signal);
      out.push({ name: this.fullName({ repo: t.repo, ref: t.tag }), digest, ...(t.imageId ? { imageId: t.imageId } : {}) });
    }
    return out;
  }

  /** abort names nothing: blobs and untagged manifests already pushed stay, and a re-run finds them there. */
  async abort(): Promise<void> {
    this.toTag.length = 0;
  }

  /** layerTars reads reference layers back as the blobs the registry holds them as, from the repositories of this push. */
  async layerTars(wanted: readonly WantedLayer[], keeper: LayerKeeper, signal?: AbortSignal): Promise<void> {
    for (const w of wanted) {
      const compression = w.blob && compressionOf(w.blob.mediaType);
      if (!w.blob || !compression) continue;
      const blob = w.blob;
      const repo = (await Promise.all([...this.repos].map(async (r) => ((await this.has(r, blob.digest, signal)) ? r : undefined)))).find((r) => r !== undefined);
      if (repo === undefined) continue;
      const body = await this.client.blob(repo, blob.digest, blob.size, signal);
      await keeper.put(w.diffId, decompress(verified(body, { digest: blob.digest, size: blob.size, what: `${repo}@${blob.digest}` }), compression, Number.MAX_SAFE_INTEGER));
    }
  }

  reposOf(names: readonly string[]): string[] {
    return [...new Set(names.map((n) => this.placed(n).repo))];
  }

  private async has(repo: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const there = (await this.client.hasBlob(repo, digest, signal)) !== undefined;
    if (!there) this.absent.add(`${repo} ${digest}`);
    return there;
  }

  /** mountInto makes a blob this push does not write available in repo: already there, or mounted from where find saw it. */
  private async mountInto(repo: string, digest: Digest, signal?: AbortSignal): Promise<void> {
    if ((await this.client.hasBlob(repo, digest, signal)) !== undefined) return;
    const from = this.holders.get(digest);
    if (from !== undefined && from !== repo && (await this.client.mountBlob(repo, digest, from, signal))) return;
    throw new FerryError('MISSING_LAYERS', `registry ${this.registry} no longer has ${digest}, which ${repo} relies on`, { hint: 'push the bundle that carried it, then push this one again' });
  }
}
