// TarArchive: an image archive (docker-save or OCI) opened by walking its tar headers once; entries are then read
// by byte range, so a many-GB archive is never extracted or buffered. Names that climb out are refused.
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { walkTarFile, type OffsetEntry } from '../tar/offset-walk.js';
import { FerryError } from '../ui/errors.js';

export interface TarArchiveOptions {
  /** The archive as the user named it, for messages: docker-archive:FILE. */
  where: string;
  /** What the file should be, for messages: "a docker-save archive". */
  what: string;
  /** What to do about a file that is not that. */
  hint: string;
  /** linksAllowed says whether a link (or device) may carry this name; elsewhere one is refused. */
  linksAllowed(name: string): boolean;
}

interface Range {
  offset: number;
  size: number;
}

const MAX_ENTRIES = 200_000;
const MAX_HOPS = 8;

export class TarArchive {
  readonly path: string;
  readonly where: string;
  private readonly fh: FileHandle;
  private readonly files: ReadonlyMap<string, Range>;
  /** Links by name, to the archive path they lead to. */
  private readonly links: ReadonlyMap<string, string>;

  private constructor(path: string, where: string, fh: FileHandle, files: Map<string, Range>, links: Map<string, string>) {
    this.path = path;
    this.where = where;
    this.fh = fh;
    this.files = files;
    this.links = links;
  }

  /** open walks every header; a missing, non-regular or non-tar file is a usage error, a damaged one a runtime error. */
  static async open(path: string, opts: TarArchiveOptions): Promise<TarArchive> {
    const { where } = opts;
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FerryError('USAGE', `cannot open ${where}: ${code === 'ENOENT' ? 'no such file' : code}`, { hint: 'check the path' });
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new FerryError('USAGE', `cannot read ${where}: it is a directory, not ${opts.what}`, { hint: opts.hint });
      if (!st.isFile()) throw new FerryError('USAGE', `cannot read ${where}: not a regular file (archives are read by offset)`, { hint: 'copy it to a file first' });
      const files = new Map<string, Range>();
      const links = new Map<string, string>();
      let seen = 0;
      const fault = (code: 'USAGE' | 'RUNTIME', entry: string | undefined, what: string): FerryError =>
        new FerryError(code, `${where}${entry ? `: ${JSON.stringify(entry).slice(1, -1).slice(0, 300)}` : ''}: ${what}`, {
          hint: code === 'USAGE' ? `check that ${path} is ${opts.what}; ${opts.hint}` : `${path} is damaged or not ${opts.what}; copy it again`,
        });
      await walkTarFile(fh, {
        kind: 'archive',
        gnuLongNames: true,
        fail: (entry, what) => fault(seen === 0 ? 'USAGE' : 'RUNTIME', entry, what),
        visit: (e: OffsetEntry) => {
          seen++;
          const name = cleanName(e.name);
          if (name === undefined) throw fault('RUNTIME', e.name, 'is a path that climbs out of the archive');
          if (e.type === 'directory' || e.type === 'gnu-longlink' || name === '') return undefined;
          if (files.has(name) || links.has(name)) throw fault('RUNTIME', e.name, 'appears twice; a later copy would override the first');
          if (files.size + links.size >= MAX_ENTRIES) throw fault('RUNTIME', e.name, `more than ${MAX_ENTRIES} entries`);
          if (e.type === 'file') {
            files.set(name, { offset: e.offset, size: e.size });
            return name;
          }
          if (!opts.linksAllowed(name)) throw fault('RUNTIME', e.name, `is ${e.type === 'symlink' || e.type === 'hardlink' ? `a ${e.type === 'symlink' ? 'symbolic' : 'hard'} link` : `an entry of tar type '${e.typeflag.replace(/[^\x21-\x7e]/g, '?')}'`}, where a regular file belongs`);
          if (e.type === 'symlink' || e.type === 'hardlink') {
            // A symbolic link is relative to its directory, a hard link to the archive's root.
            const target = e.type === 'symlink' && !e.linkname.startsWith('/') ? posix.join(posix.dirname(name), e.linkname) : e.linkname;
            const to = cleanName(target);
            if (to === undefined || e.linkname.startsWith('/')) throw fault('RUNTIME', e.name, `links to ${JSON.stringify(e.linkname)}, outside the archive`);
            links.set(name, to);
          }
          return name;
        },
      });
      return new TarArchive(path, where, fh, files, links);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** entry finds a regular file by name, following links inside the archive. */
  entry(name: string): Range | undefined {
    let p = cleanName(name);
    for (let hops = 0; p !== undefined && hops <= MAX_HOPS; hops++) {
      const f = this.files.get(p);
      if (f) return f;
      p = this.links.get(p);
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.entry(name) !== undefined;
  }

  /** names lists the regular files, by their names in the archive. */
  names(): IterableIterator<string> {
    return this.files.keys();
  }

  /** read returns a small entry; more than cap bytes is refused. */
  async read(name: string, cap: number): Promise<Buffer> {
    const e = this.entry(name);
    if (!e) throw new FerryError('RUNTIME', `${this.where} has no ${name}`);
    if (e.size > cap) throw new FerryError('RUNTIME', `${this.where}: ${name} is ${e.size} bytes, more than the ${cap} it may have`);
    const buf = Buffer.alloc(e.size);
    const { bytesRead } = await this.fh.read(buf, 0, e.size, e.offset);
    if (bytesRead !== e.size) throw new FerryError('RUNTIME', `${this.where}: ${name} is cut short`);
    return buf;
  }

  /** head returns an entry's first n bytes (fewer if it is shorter): enough to tell its compression. */
  async head(name: string, n: number): Promise<Buffer> {
    const e = this.entry(name);
    if (!e) throw new FerryError('RUNTIME', `${this.where} has no ${name}`);
    const buf = Buffer.alloc(Math.min(n, e.size));
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, e.offset);
    return buf.subarray(0, bytesRead);
  }

  /** size is an entry's length in bytes. */
  size(name: string): number {
    const e = this.entry(name);
    if (!e) throw new FerryError('RUNTIME', `${this.where} has no ${name}`);
    return e.size;
  }

  /** stream reads an entry's bytes as stored (from byte `from` on); the caller verifies them. */
  stream(name: string, from = 0): AsyncIterable<Buffer> {
    const e = this.entry(name);
    if (!e) throw new FerryError('RUNTIME', `${this.where} has no ${name}`);
    if (e.size - from <= 0) return (async function* () {})();
    return createReadStream(this.path, { start: e.offset + from, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** cleanName gives an entry's path inside the archive ('' for its root), or undefined if it climbs out. */
export function cleanName(raw: string): string | undefined {
  if (raw.startsWith('/') || raw.split('/').includes('..')) return undefined;
  const n = posix.normalize(raw).replace(/\/+$/, '');
  return n === '.' ? '' : n.replace(/^(\.\/)+/, '');
}
