// What `ferry serve` answers from, built from the bundles' indexes alone: repositories and their tags, every manifest
// and blob by digest with the bundle that holds it. A set that cannot serve every layer of its images is refused.
import { blobPath, type BundleBlob } from '../bundle/format.js';
import { pooled } from '../bundle/pool.js';
import type { BundleReader, FileExtent } from '../bundle/reader.js';
import type { Digest } from '../image/digest.js';
import { compressionOf, OCI_LAYER_TAR } from '../image/media-types.js';
import { decompress } from '../stream/decompress.js';
import { parseReference } from '../image/reference.js';
import { applyRetag, type RetagRule } from '../image/retag.js';
import { FerryError } from '../ui/errors.js';

/** A repository as clients name it: its path (library/nginx), from the registry its images are named under. */
export interface ServedRepository {
  /** docker.io, registry.example:5000: what a mirror request's `ns` names. */
  domain: string;
  path: string;
  /** Tag → manifest digest. */
  tags: Map<string, Digest>;
  /** Manifests served under this repository (its images and indexes, and what they list). */
  manifests: Set<Digest>;
}

export interface ServedBlob {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Where it is, for messages. */
  where: string;
  /** Its bytes from `from` on (a view of the whole set, so a blob spanning volumes reads across them). */
  stream(from: number): AsyncIterable<Buffer>;
  /** Where those bytes lie in files, when they are stored as they are served (not unpacked as they go). */
  extents?(from: number): FileExtent[];
}

export class ServedSet {
  /** By path; several registries may name the same path (docker.io/team/app, quay.io/team/app). */
  private readonly byPath = new Map<string, ServedRepository[]>();
  private readonly blobs = new Map<string, ServedBlob>();
  private readonly views: BundleReader[];
  /** Compressed layers by diffID: a thin bundle's manifest may name a layer another bundle holds by its tar. */
  private readonly byDiffId = new Map<string, { view: BundleReader; blob: BundleBlob }>();
  readonly images: number;

  constructor(
    private readonly bundles: readonly BundleReader[],
    retag: readonly RetagRule[] = [],
  ) {
    this.views = bundles.map((b) => pooled(b, bundles));
    this.views.forEach((v, k) => {
      for (const b of bundles[k]!.index.blobs) if (b.diffId && compressionOf(b.mediaType) && compressionOf(b.mediaType) !== 'none' && !this.byDiffId.has(b.diffId)) this.byDiffId.set(b.diffId, { view: v, blob: b });
    });
    const lacking: string[] = [];
    for (const b of bundles) {
      for (const img of b.index.images) {
        for (const [d, what] of [...img.layers.map((l) => [l.digest, 'layer'] as const), [img.config.digest, 'config'] as const, [img.manifest.digest, 'manifest'] as const]) {
          if (!this.blob(d)) lacking.push(`${d}: ${what} of ${img.refs[0] ?? img.imageId}, not in the bundles given`);
        }
      }
    }
    if (lacking.length) {
      throw new FerryError('MISSING_LAYERS', `the bundles given lack ${lacking.length} blob(s) their images need, so clients could not pull them`, {
        details: [...new Set(lacking)],
        hint: 'give the bundles a thin bundle builds on (the whole chain, every volume of a set) beside it',
      });
    }
    const images = new Set<string>();
    for (const b of bundles) {
      for (const img of b.index.images) {
        images.add(img.manifest.digest);
        for (const ref of img.refs) this.tag(applyRetag(ref, retag), img.manifest.digest, [img.manifest.digest]);
      }
      for (const ix of b.index.indexes ?? []) {
        for (const ref of ix.refs) this.tag(applyRetag(ref, retag), ix.digest, [ix.digest, ...ix.images, ...(ix.artifacts ?? [])]);
      }
    }
    this.images = images.size;
  }

  /** blob finds a blob of the set by digest (a layer, config or manifest; a delta layer once rebuilt). */
  /** pulledBlobs are the layers and configs of every image served, once each: what clients fetch as blobs. */
  pulledBlobs(): ServedBlob[] {
    const digests = new Set(this.bundles.flatMap((b) => b.index.images.flatMap((img) => [img.config.digest, ...img.layers.map((l) => l.digest)])));
    return [...digests].flatMap((d) => this.blob(d) ?? []);
  }

  blob(digest: string): ServedBlob | undefined {
    const known = this.blobs.get(digest);
    if (known) return known;
    for (const v of this.views) {
      const b = v.blob(digest as Digest);
      if (!b) continue;
      const served: ServedBlob = { digest: b.digest, size: b.size, mediaType: b.mediaType, where: `${blobPath(b.digest)} in ${v.path}`, stream: (from) => v.stream(blobPath(b.digest), from), extents: (from) => v.extents(blobPath(b.digest), from) };
      this.blobs.set(digest, served);
      return served;
    }
    // Asked by its uncompressed form, a layer held compressed is unpacked as it is sent (a range skips to its start).
    const c = this.byDiffId.get(digest);
    if (!c || c.blob.uncompressedSize === undefined) return undefined;
    const { view, blob } = c;
    const size = blob.uncompressedSize!;
    const served: ServedBlob = { digest: digest as Digest, size, mediaType: OCI_LAYER_TAR, where: `${blobPath(blob.digest)} (unpacked) in ${view.path}`, stream: (from) => skip(decompress(view.stream(blobPath(blob.digest)), compressionOf(blob.mediaType)!, size), from) };
    this.blobs.set(digest, served);
    return served;
  }

  /** repository finds what a client names: by path, the one of registry `ns` when a mirror request says (else docker.io's, else the first). */
  repository(path: string, ns?: string): ServedRepository | undefined {
    // `docker pull HOST/nginx` asks for nginx: docker.io's official images answer to their short name too.
    const found = this.byPath.get(path) ?? (path.includes('/') ? undefined : this.byPath.get(`library/${path}`)?.filter((r) => r.domain === 'docker.io'));
    if (!found?.length) return undefined;
    if (ns) return found.find((r) => r.domain === ns);
    return found.find((r) => r.domain === 'docker.io') ?? found[0];
  }

  /** repositories lists every repository path, sorted (the catalog). */
  repositoryPaths(): string[] {
    return [...this.byPath.keys()].sort();
  }

  private tag(ref: string, manifest: Digest, served: readonly Digest[]): void {
    const r = parseReference(ref);
    const list = this.byPath.get(r.path) ?? [];
    let repo = list.find((x) => x.domain === r.domain);
    if (!repo) {
      repo = { domain: r.domain, path: r.path, tags: new Map(), manifests: new Set() };
      list.push(repo);
      this.byPath.set(r.path, list);
    }
    if (r.tag && !repo.tags.has(r.tag)) repo.tags.set(r.tag, manifest);
    for (const d of served) repo.manifests.add(d);
  }
}

/** skip drops the first `n` bytes of a stream. */
async function* skip(src: AsyncIterable<Buffer>, n: number): AsyncGenerator<Buffer> {
  let left = n;
  for await (const chunk of src) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}
