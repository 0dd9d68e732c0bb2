// What every OCI image layout shares, in a directory or in a tar: the oci-layout marker, index.json, blobs by
// digest, and what a name means in it. Picking platforms and checking digests is ManifestStoreSource's job.
import { MAX_MANIFEST_BYTES } from '../image/media-types.js';
import { isSha256, hex, type Digest } from '../image/digest.js';
import { formatReference, parseReference } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import { splitLocation } from './location.js';
import { ManifestStoreSource, type Located, type ManifestStore } from './manifest-store.js';
import type { BlobDescriptor, KeptManifest } from '../image/descriptor.js';

/** LayoutFiles is the few files of a layout, by their names inside it (oci-layout, index.json, blobs/sha256/HEX). */
export interface LayoutFiles {
  /** Where the layout is, for messages: oci:DIR, oci-archive:FILE. */
  readonly where: string;
  /** read returns a small file, undefined if absent; more than cap bytes is an error. */
  read(name: string, cap: number): Promise<Buffer | undefined>;
  /** stream opens a file's bytes as stored, undefined if absent; the caller verifies them. */
  stream(name: string): Promise<AsyncIterable<Buffer> | undefined>;
  exists(name: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface LayoutSourceOptions {
  /** warn reports something the user should know but that does not stop the copy (default: a line on stderr). */
  warn?: (message: string) => void;
}

const CONTAINERD_NAME = 'io.containerd.image.name';
const OCI_REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_INDEX = 16 << 20;
/** A bare tag, as Docker 25 and skopeo write org.opencontainers.image.ref.name: no repository in it. */
const BARE_TAG = /^[\w][\w.-]{0,127}$/;

/** IndexEntry is one descriptor of index.json and the names it carries. */
interface IndexEntry {
  mediaType: string;
  digest: Digest;
  /** The annotation values, verbatim (a bare tag or a full reference). */
  names: string[];
  /** The full references among them, docker-normalised. */
  full: string[];
  /** Its bare tags: names no repository can be found for. */
  bare: string[];
}

export function blobName(digest: string): string {
  return `blobs/sha256/${hex(digest)}`;
}

/** OciLayoutStore is one opened layout as a ManifestStore; manifests and blobs are asked for by digest. */
export class OciLayoutStore implements ManifestStore {
  readonly where: string;

  private constructor(
    private readonly files: LayoutFiles,
    readonly entries: readonly IndexEntry[],
  ) {
    this.where = files.where;
  }

  /** open checks the oci-layout marker and reads index.json; every descriptor's digest must be sha256:<64 hex>. */
  static async open(files: LayoutFiles): Promise<OciLayoutStore> {
    try {
      const hint = 'name an OCI image layout (as `skopeo copy … oci:DIR:TAG` writes one), or use the transport that fits the file';
      const marker = await files.read('oci-layout', 64 << 10);
      if (!marker) throw new FerryError('USAGE', `${files.where} is not an OCI image layout: it has no oci-layout file`, { hint });
      const layout = parseJson(marker, files.where, 'oci-layout') as { imageLayoutVersion?: unknown };
      if (typeof layout?.imageLayoutVersion !== 'string') throw invalid(files.where, 'oci-layout has no imageLayoutVersion');
      const raw = await files.read('index.json', MAX_INDEX);
      if (!raw) throw new FerryError('USAGE', `${files.where} is not an OCI image layout: it has no index.json`, { hint });
      const index = parseJson(raw, files.where, 'index.json') as { manifests?: unknown };
      if (!Array.isArray(index?.manifests)) throw invalid(files.where, 'index.json has no manifests list');
      return new OciLayoutStore(files, index.manifests.map((d: unknown, i) => indexEntry(d, files.where, i)));
    } catch (err) {
      await files.close();
      throw err;
    }
  }

  async manifest(ref: string): Promise<KeptManifest> {
    if (!isSha256(ref)) throw new Error(`OciLayoutStore.manifest: ${ref} is not a digest`);
    const bytes = await this.files.read(blobName(ref), MAX_MANIFEST_BYTES);
    if (!bytes) throw missingBlob(this.where, ref);
    // The digest returned is the one asked for: ManifestStoreSource compares it with what the bytes hash to.
    return { bytes, mediaType: this.entries.find((e) => e.digest === ref)?.mediaType ?? '', digest: ref as Digest };
  }

  async blob(desc: BlobDescriptor): Promise<AsyncIterable<Buffer>> {
    if (!isSha256(desc.digest)) throw new Error(`OciLayoutStore.blob: ${desc.digest} is not a digest`);
    const body = await this.files.stream(blobName(desc.digest));
    if (!body) throw missingBlob(this.where, desc.digest);
    return body;
  }

  /**
   * locate says what ref means here: index.json descriptors named by it (a full reference, or the bare tag
   * as written), a manifest by digest, or every descriptor when ref is absent. Names that are bare tags give
   * no repository: those images travel untagged, and bareTags lists them for a warning.
   */
  async locate(ref: string | undefined): Promise<{ located: Located[]; bareTags: string[] }> {
    const bareTags = new Set<string>();
    const travel = (es: readonly IndexEntry[], named?: string): string[] => {
      if (named !== undefined && es.some((e) => e.full.includes(named))) return [named];
      const full = [...new Set(es.flatMap((e) => e.full))];
      if (full.length === 0) for (const e of es) for (const b of e.bare) bareTags.add(b);
      return full;
    };
    const at = (digest: Digest, refs: string[]): Located => ({ store: this, ref: digest, refs });
    if (ref === undefined) {
      if (this.entries.length === 0) throw new FerryError('IMAGE_NOT_FOUND', `${this.where} holds no images (its index.json lists none)`);
      return { located: this.entries.map((e) => at(e.digest, travel([e]))), bareTags: [...bareTags] };
    }
    const digest = ref.replace(/^@/, '');
    if (isSha256(digest)) {
      // By digest: a descriptor of index.json, or a manifest among the blobs (a platform's manifest of an index).
      if (!this.entries.some((e) => e.digest === digest) && !(await this.files.exists(blobName(digest)))) throw this.notFound(ref);
      return { located: [at(digest as Digest, [])], bareTags: [] };
    }
    let normal: string | undefined;
    try {
      normal = formatReference(parseReference(ref));
    } catch {
      normal = undefined;
    }
    const hits = this.entries.filter((e) => e.names.includes(ref) || (normal !== undefined && e.full.includes(normal)));
    if (hits.length === 0) throw this.notFound(ref);
    const digests = [...new Set(hits.map((e) => e.digest))];
    if (digests.length > 1) {
      throw new FerryError('USAGE', `${this.where}:${ref} is ambiguous: it names ${digests.length} different images (${digests.join(', ')})`, {
        hint: `name one by digest: ${this.where}:@sha256:…`,
      });
    }
    return { located: [at(digests[0]!, travel(hits, normal))], bareTags: [...bareTags] };
  }

  async close(): Promise<void> {
    await this.files.close();
  }

  private notFound(ref: string): FerryError {
    const names = [...new Set(this.entries.flatMap((e) => e.names))];
    const unnamed = this.entries.filter((e) => e.names.length === 0).map((e) => e.digest);
    const holds = [...names, ...(unnamed.length ? [`unnamed ${unnamed.join(', ')}`] : [])];
    return new FerryError('IMAGE_NOT_FOUND', `${this.where} holds no image "${ref}" (it holds: ${holds.join(', ') || 'nothing'})`, {
      hint: 'name an image by the name index.json gives it, or by digest (sha256:…)',
    });
  }
}

/**
 * layoutSource is a ManifestStoreSource over OCI layouts named `PREFIX LOCATION[:REF]`; each location is
 * opened once, on first use, and closed with the source. A layout that names images by bare tag only is
 * warned about once.
 */
export function layoutSource(transport: string, prefix: string, openFiles: (location: string) => Promise<LayoutFiles>, opts: LayoutSourceOptions = {}): ManifestStoreSource {
  const warn = opts.warn ?? ((m: string) => void process.stderr.write(`ferry: warning: ${m}\n`));
  const layouts = new Map<string, Promise<OciLayoutStore>>();
  const warned = new Set<string>();
  const locate = async (asked: string): Promise<Located[]> => {
    const { location, ref } = splitLocation(asked, prefix);
    let layout = layouts.get(location);
    if (!layout) layouts.set(location, (layout = openFiles(location).then((f) => OciLayoutStore.open(f))));
    const store = await layout;
    const { located, bareTags } = await store.locate(ref);
    if (bareTags.length > 0 && !warned.has(store.where)) {
      warned.add(store.where);
      const shown = bareTags.slice(0, 5).join(', ') + (bareTags.length > 5 ? ', …' : '');
      warn(`${store.where} names images by tag only (${shown}), without a repository: they travel untagged; tag them after loading`);
    }
    return located;
  };
  return new ManifestStoreSource(transport, locate, async () => {
    const opened = await Promise.allSettled(layouts.values());
    layouts.clear();
    await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
  });
}

function indexEntry(v: unknown, where: string, i: number): IndexEntry {
  const d = v as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: Record<string, unknown> };
  if (!d || typeof d !== 'object') throw invalid(where, `index.json entry ${i + 1} is not a descriptor`);
  if (!isSha256(d.digest)) throw invalid(where, `index.json entry ${i + 1} has digest ${JSON.stringify(d.digest)?.slice(0, 120)}, not sha256:<64 lowercase hex>`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(where, `index.json entry ${i + 1} has no valid size`);
  const a = d.annotations && typeof d.annotations === 'object' ? d.annotations : {};
  const names = [a[CONTAINERD_NAME], a[OCI_REF_NAME]].filter((n): n is string => typeof n === 'string' && n !== '');
  const full: string[] = [];
  const bare: string[] = [];
  for (const n of new Set(names)) {
    if (BARE_TAG.test(n)) {
      bare.push(n);
      continue;
    }
    try {
      const r = formatReference(parseReference(n));
      if (!full.includes(r)) full.push(r);
    } catch {
      /* a name that is no reference: it can still be asked for verbatim */
    }
  }
  return { mediaType: typeof d.mediaType === 'string' ? d.mediaType : '', digest: d.digest as Digest, names: [...new Set(names)], full, bare };
}

function parseJson(bytes: Buffer, where: string, name: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(where, `${name} is not valid JSON`);
  }
}

function missingBlob(where: string, digest: string): FerryError {
  return new FerryError('RUNTIME', `${where} lacks blob ${digest}`, { hint: 'the layout is incomplete; copy it again' });
}

export function invalid(where: string, what: string): FerryError {
  return new FerryError('RUNTIME', `${where}: ${what}`, { hint: 'the layout is damaged or was not written by an OCI tool' });
}
