// BundleReader: opens a bundle by walking its tar headers (no layer content read), refuses anything a bundle
// cannot hold (links, devices, traversal, duplicates, truncation), and validates ferry.json against its schema.
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isSha256, type DiffId, type Digest } from '../image/digest.js';
import { OCI_LAYER_TAR } from '../image/media-types.js';
import { parseReference } from '../image/reference.js';
import { bundleError, FerryError } from '../ui/errors.js';
import { walkTarFile } from '../tar/offset-walk.js';
import { blobPath, BUNDLE_MEDIA_TYPE, BUNDLE_MEDIA_TYPE_V2, BUNDLE_VERSION, BUNDLE_VERSION_V2, FERRY_INDEX, type BundleDelta, type BundleBlob, type BundleIndex } from './format.js';
import { recogniseNotBundle } from './recognise.js';
import { validateBundleIndex } from './schema.js';
import { BUNDLE_SIGNATURE, checkSignature, type Verifier } from '../sign/signature.js';

/** Where a stretch of an entry's bytes lies in a file (a length of Infinity: to the file's end). */
export interface FileExtent {
  path: string;
  start: number;
  length: number;
}

export interface TarEntry {
  name: string;
  /** Offset of the content, after the header. */
  offset: number;
  size: number;
}

const MAX_ENTRIES = 200_000;
const MAX_JSON = 64 << 20;
// No `repositories`: ferry never writes one, and docker load would tag images by it that ferry.json does not name.
const TOP_LEVEL = new Set(['oci-layout', 'index.json', 'manifest.json', FERRY_INDEX, BUNDLE_SIGNATURE]);
const BLOB = /^blobs\/sha256\/[a-f0-9]{64}(?:\.part[0-9]{3,4})?$/;

export class BundleReader {
  readonly path: string;
  readonly entries: ReadonlyMap<string, TarEntry>;
  readonly index: BundleIndex;
  private readonly fh: FileHandle;
  private readonly byDigest = new Map<string, BundleBlob>();
  private readonly deltas = new Map<string, BundleDelta>();
  /** Delta layers rebuilt into files (transfer/deltas.ts), by the entry name their uncompressed form would have. */
  private readonly rebuilt = new Map<string, string>();

  private constructor(path: string, fh: FileHandle, entries: Map<string, TarEntry>, index: BundleIndex) {
    this.path = path;
    this.fh = fh;
    this.entries = entries;
    this.index = index;
    for (const b of index.blobs) {
      this.byDigest.set(b.digest, b);
    }
    for (const d of index.deltas ?? []) this.deltas.set(d.diffId, d);
  }

  static async open(path: string): Promise<BundleReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FerryError('USAGE', `cannot open bundle ${path}: ${code === 'ENOENT' ? 'no such file' : code}`, { hint: 'check the path' });
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new FerryError('USAGE', `cannot read bundle ${path}: it is a directory`, { hint: 'name the bundle file itself' });
      if (!st.isFile()) throw new FerryError('USAGE', `cannot read bundle ${path}: not a regular file (a bundle is read by offset)`, { hint: 'copy it to a file first' });
      // A file that is no bundle at all (a docker save archive, an inventory) is named for what it is.
      const entries = await walk(fh, path).catch(async (err: unknown) => {
        throw (await recogniseNotBundle(fh, path)) ?? err;
      });
      const ferry = entries.get(FERRY_INDEX);
      if (!ferry) throw (await recogniseNotBundle(fh, path)) ?? bundleError(path, undefined, 'no ferry.json: this is not a ferry bundle, or it was cut short');
      const raw = await readEntry(fh, path, ferry, MAX_JSON);
      const index = parseIndex(path, raw);
      return new BundleReader(path, fh, entries, index);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** readJson reads a small entry and parses it; size is capped so a hostile entry cannot exhaust memory. */
  async readJson(name: string, cap = MAX_JSON): Promise<unknown> {
    const e = this.entries.get(name);
    if (!e) throw bundleError(this.path, name, 'entry is missing');
    const bytes = await readEntry(this.fh, this.path, e, cap);
    const shape = jsonShapeFault(bytes);
    if (shape) throw bundleError(this.path, name, shape);
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      throw bundleError(this.path, name, 'is not valid JSON');
    }
  }

  async readBytes(name: string, cap = MAX_JSON): Promise<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw bundleError(this.path, name, 'entry is missing');
    return readEntry(this.fh, this.path, e, cap);
  }

  /** stream opens an entry's content as stored, from byte `from` on (to resume an upload); the caller verifies it. */
  stream(name: string, from = 0): AsyncIterable<Buffer> {
    const rebuilt = this.rebuilt.get(name);
    if (rebuilt) return createReadStream(rebuilt, { start: from, highWaterMark: 1 << 20 });
    const e = this.entries.get(name);
    if (!e) throw bundleError(this.path, name, 'entry is missing');
    if (e.size - from <= 0) return (async function* () {})();
    // Not through the handle itself: a stream destroyed early closes the handle it reads, whatever autoClose says.
    return createReadStream(this.openPath, { start: e.offset + from, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
  }

  /** extents says where an entry's bytes from `from` on lie, for reads into buffers the caller reuses. */
  extents(name: string, from = 0): FileExtent[] {
    const rebuilt = this.rebuilt.get(name);
    if (rebuilt) return [{ path: rebuilt, start: from, length: Infinity }];
    const e = this.entries.get(name);
    if (!e) throw bundleError(this.path, name, 'entry is missing');
    return e.size - from <= 0 ? [] : [{ path: this.openPath, start: e.offset + from, length: e.size - from }];
  }

  /** checkSignature refuses the bundle unless ferry.sig signs its ferry.json with the verifier's key. */
  async checkSignature(verifier: Verifier): Promise<void> {
    const sig = this.entries.has(BUNDLE_SIGNATURE) ? await this.readBytes(BUNDLE_SIGNATURE, 64 << 10) : undefined;
    checkSignature(verifier, await this.readBytes(FERRY_INDEX), sig, this.path, BUNDLE_SIGNATURE);
  }

  /**
   * blob describes a blob of the bundle. A layer carried as a delta is described by its uncompressed form (its
   * digest is its diffID), which stream reads once it has been rebuilt (see useRebuilt).
   */
  blob(digest: Digest): BundleBlob | undefined {
    const b = this.byDigest.get(digest);
    if (b) return b;
    const d = this.deltas.get(digest);
    return d && { digest, size: d.size, mediaType: OCI_LAYER_TAR, diffId: d.diffId, uncompressedSize: d.size };
  }

  /** deltaOf is the delta a layer (named by its uncompressed form) is carried as, if it is. */
  deltaOf(digest: Digest): BundleDelta | undefined {
    return this.deltas.get(digest);
  }

  /** useRebuilt says where a delta layer was rebuilt: stream reads it from there. */
  useRebuilt(diffId: DiffId, path: string): void {
    this.rebuilt.set(blobPath(diffId), path);
  }

  /**
   * openPath opens this same file from any thread (blob checks run on workers) even once its name is gone: a bundle
   * spooled from a pipe is unlinked as soon as it is open, so nothing is left behind whatever ends the process.
   */
  get openPath(): string {
    return process.platform === 'linux' ? `/proc/self/fd/${this.fh.fd}` : this.path;
  }

  /** rebuiltAt is the file a delta layer was rebuilt in, if it was. */
  rebuiltAt(diffId: DiffId): string | undefined {
    return this.rebuilt.get(blobPath(diffId));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readEntry(fh: FileHandle, path: string, e: TarEntry, cap: number): Promise<Buffer> {
  if (e.size > cap) throw bundleError(path, e.name, `is ${e.size} bytes, more than the ${cap} a metadata file may have`);
  const buf = Buffer.alloc(e.size);
  const { bytesRead } = await fh.read(buf, 0, e.size, e.offset);
  if (bytesRead !== e.size) throw bundleError(path, e.name, 'is cut short (truncated bundle)');
  return buf;
}

/** walk reads every header by offset and returns the entries; anything a bundle never holds is refused by name. */
async function walk(fh: FileHandle, path: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  await walkTarFile(fh, {
    kind: 'bundle',
    // GNU tar and Python's tarfile apply a global header's path to every later entry: they would read another archive.
    visitGlobalHeaders: true,
    fail: (entry, what) => bundleError(path, entry, what),
    visit: (h) => {
      const name = h.name;
      const clean = name.replace(/^\.\//, '');
      if (h.type === 'directory' && (clean === 'blobs/' || clean === 'blobs/sha256/' || clean === 'blobs' || clean === 'blobs/sha256')) return undefined;
      if (h.type !== 'file') throw bundleError(path, name, `is ${describeType(h.type, h.typeflag, h.linkname)}; a bundle holds only regular files`);
      if (!TOP_LEVEL.has(clean) && !BLOB.test(clean)) {
        const why = clean.startsWith('/')
          ? 'an absolute path'
          : clean.split('/').includes('..')
            ? 'a path that climbs out of the bundle'
            : clean === 'repositories'
              ? "docker's legacy tag list, which ferry never writes (plain docker load would tag images by it, unchecked)"
              : 'not a name a bundle uses';
        throw bundleError(path, name, `is ${why}`);
      }
      if (entries.has(clean)) throw bundleError(path, name, 'appears twice; a later copy would override the first');
      if (entries.size >= MAX_ENTRIES) throw bundleError(path, name, `more than ${MAX_ENTRIES} entries`);
      entries.set(clean, { name: clean, offset: h.offset, size: h.size });
      return clean;
    },
  });
  return entries;
}

/** describeType names an entry type a bundle never holds, with a link's target. */
function describeType(type: string, typeflag: string, linkname: string): string {
  const target = linkname ? ` to ${JSON.stringify(linkname)}` : '';
  switch (type) {
    case 'symlink':
      return `a symbolic link${target}`;
    case 'hardlink':
      return `a hard link${target}`;
    case 'directory':
      return 'a directory';
    case 'gnu-longname':
    case 'gnu-longlink':
      return `a GNU long-name header (type '${typeflag}')`;
    case 'pax-global':
      return "a PAX global header (type 'g'), which GNU tar and Python's tarfile apply to every later entry";
  }
  const names: Record<string, string> = { '3': 'a character device', '4': 'a block device', '6': 'a FIFO (named pipe)' };
  const flag = typeflag.replace(/[^\x21-\x7e]/g, '?');
  return `${names[typeflag] ?? 'an entry of unknown type'} (tar type '${flag}')`;
}

/** ferry's documents and OCI's nest a few levels deep; past this a document is hostile (and would overflow the stack when shown). */
const MAX_JSON_DEPTH = 64;

/**
 * jsonShapeFault says what is wrong with JSON text that would cost far more once parsed than its size: nesting
 * deeper than MAX_JSON_DEPTH, or more values than the text has room for in any document ferry reads (its own records
 * take over 40 bytes a value; ten million "[]," in 30 MB parse into gigabytes). A scan of the bytes, before parsing.
 */
function jsonShapeFault(bytes: Uint8Array): string | undefined {
  let depth = 0;
  let values = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 0x22) {
      // Skip the string: a backslash escapes the byte after it.
      for (i++; i < bytes.length && bytes[i] !== 0x22; i++) if (bytes[i] === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      values++;
      if (++depth > MAX_JSON_DEPTH) return `nests lists or objects more than ${MAX_JSON_DEPTH} deep`;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c) values++;
  }
  const room = 100_000 + Math.floor(bytes.length / 16);
  if (values > room) return `holds ${values} values in ${bytes.length} bytes, more than any document of a bundle (at most ${room})`;
  return undefined;
}

function parseIndex(path: string, raw: Buffer): BundleIndex {
  const shape = jsonShapeFault(raw);
  if (shape) throw bundleError(path, FERRY_INDEX, shape);
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw bundleError(path, FERRY_INDEX, 'is not valid JSON');
  }
  const o = doc as { mediaType?: unknown; version?: unknown };
  // A later format announces itself by its media type (…bundle.v2+json) and version; either one not ours is refused by name.
  const family = o && typeof o === 'object' && typeof o.mediaType === 'string' ? /^application\/vnd\.ferry\.bundle\.v([^+]*)\+json$/.exec(o.mediaType) : null;
  const known = (o.mediaType === BUNDLE_MEDIA_TYPE && o.version === BUNDLE_VERSION) || (o.mediaType === BUNDLE_MEDIA_TYPE_V2 && o.version === BUNDLE_VERSION_V2);
  if (family && !known) {
    const what =
      o.version !== undefined && o.version !== BUNDLE_VERSION && o.version !== BUNDLE_VERSION_V2
        ? `version ${JSON.stringify(o.version).slice(0, 40)}`
        : `version ${JSON.stringify(family[1]!.slice(0, 40))} (media type ${JSON.stringify(o.mediaType).slice(0, 80)})`;
    throw new FerryError('BUNDLE_VERSION', `${path}: ${FERRY_INDEX}: bundle format ${what} is not one this ferry reads (it reads versions ${BUNDLE_VERSION} and ${BUNDLE_VERSION_V2})`, {
      hint: 'use a newer ferry to read this bundle',
    });
  }
  const errors = validateBundleIndex(doc);
  if (errors) throw bundleError(path, FERRY_INDEX, 'does not match the bundle schema', errors);
  const index = doc as BundleIndex;
  for (const b of index.blobs) if (!isSha256(b.digest)) throw bundleError(path, FERRY_INDEX, `bad digest ${b.digest}`);
  // What every command shows of a bundle (inspect, messages): references that parse, free text without control characters.
  for (const r of [...index.images, ...(index.indexes ?? [])].flatMap((x) => x.refs)) {
    try {
      parseReference(r);
    } catch {
      throw bundleError(path, FERRY_INDEX, `invalid reference ${JSON.stringify(r)}`);
    }
  }
  const control = /[\u0000-\u001f\u007f-\u009f]/;
  if (control.test(index.creator)) throw bundleError(path, FERRY_INDEX, 'creator holds control characters');
  for (const r of index.reliesOn) {
    if (r.carriedBy !== undefined && control.test(r.carriedBy)) throw bundleError(path, FERRY_INDEX, `carriedBy of relied-on layer ${r.digest} holds control characters`);
  }
  return index;
}
