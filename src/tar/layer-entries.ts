// LayerEntryScan: a layer's uncompressed tar read header by header as its bytes pass by (content skipped by size,
// never held), naming the entries that reach outside the image's root when a layer is unpacked.
import { BLOCK, decodeHeader, isZeroBlock, parsePax, type TarHeader } from './header.js';

/** An entry of a layer that an extractor may write outside the root with, and why. */
export interface UnsafeEntry {
  name: string;
  problem: string;
}

/** Extension headers (pax, GNU long names) bigger than this are refused: no real one comes near. */
const MAX_EXTENSION = 1 << 20;
/** Symlink paths remembered per layer (to catch a write through one); a layer naming more is refused. */
const MAX_SYMLINK_BYTES = 64 << 20;
/** Unsafe entries named per layer; the rest are counted. */
const MAX_FOUND = 20;
/** Types whose header has no content after it (Go's archive/tar, dockerd and containerd read none). */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

/**
 * LayerEntryScan is fed a layer's uncompressed bytes in order (write), each chunk only read while write runs (a
 * caller may reuse its memory). Every way readers differ is taken the unsafe way: an entry's name is checked as
 * each of them reads it (pax path, GNU long name, ustar prefix and name, the name field alone), and anything they
 * could disagree on (a bad header, content on a link header, old GNU sparse files) ends the scan as unsafe.
 */
export class LayerEntryScan {
  readonly found: UnsafeEntry[] = [];
  /** Unsafe entries past the first MAX_FOUND. */
  more = 0;
  private readonly head = Buffer.alloc(BLOCK);
  private headFill = 0;
  /** Bytes of content and padding still to pass. */
  private skip = 0;
  private ext: { type: string; buf: Buffer; fill: number; pad: number } | undefined;
  private pax: Record<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Bytes seen before the current chunk. */
  private seen = 0;
  /** The end-of-archive block, or a fault after which nothing can be read the way every reader reads it. */
  private stopped = false;
  private readonly symlinks = new Set<string>();
  private symlinkBytes = 0;

  get unsafe(): boolean {
    return this.found.length > 0;
  }

  write(chunk: Uint8Array): void {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    while (at < bytes.length && !this.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, bytes.length - at);
        this.skip -= n;
        at += n;
      } else if (this.ext) {
        const e = this.ext;
        const n = Math.min(e.buf.length - e.fill, bytes.length - at);
        bytes.copy(e.buf, e.fill, at, at + n);
        e.fill += n;
        at += n;
        if (e.fill === e.buf.length) this.extension(e);
      } else if (this.headFill === 0 && bytes.length - at >= BLOCK) {
        at += BLOCK;
        this.header(bytes.subarray(at - BLOCK, at), this.seen + at - BLOCK);
      } else {
        const n = Math.min(BLOCK - this.headFill, bytes.length - at);
        bytes.copy(this.head, this.headFill, at, at + n);
        this.headFill += n;
        at += n;
        if (this.headFill === BLOCK) {
          this.headFill = 0;
          this.header(this.head, this.seen + at - BLOCK);
        }
      }
    }
    this.seen += bytes.length;
  }

  /** report is one line per unsafe entry: `layer entry "NAME" PROBLEM`, and how many more there are. */
  report(): string[] {
    const lines = this.found.map((f) => `layer entry ${JSON.stringify(f.name.length > 300 ? `${f.name.slice(0, 300)}…` : f.name)} ${f.problem}`);
    if (this.more > 0) lines.push(`and ${this.more} more unsafe layer entr${this.more === 1 ? 'y' : 'ies'}`);
    return lines;
  }

  private flag(name: string, problem: string): void {
    if (this.found.length < MAX_FOUND) this.found.push({ name, problem });
    else this.more++;
  }

  private header(block: Buffer, offset: number): void {
    if (isZeroBlock(block)) {
      this.stopped = true;
      return;
    }
    let h: TarHeader;
    try {
      h = decodeHeader(block);
    } catch (err) {
      this.flag(`(tar header at byte ${offset})`, `is not a valid tar header (${(err as Error).message}): readers differ on what follows it`);
      this.stopped = true;
      return;
    }
    const t = h.typeflag;
    if (t === 'x' || t === 'g' || t === 'L' || t === 'K') {
      if (h.size > MAX_EXTENSION) {
        this.flag(h.name, `is a tar extension header of ${h.size} bytes (more than ${MAX_EXTENSION})`);
        this.stopped = true;
        return;
      }
      this.ext = { type: t, buf: Buffer.alloc(h.size), fill: 0, pad: (BLOCK - (h.size % BLOCK)) % BLOCK };
      if (h.size === 0) this.extension(this.ext);
      return;
    }
    if (t === 'S') {
      this.flag(h.name, "is an old GNU sparse file (type 'S'), whose extra header blocks readers skip differently");
      this.stopped = true;
      return;
    }
    this.entry(h, block);
  }

  private extension(e: NonNullable<LayerEntryScan['ext']>): void {
    this.ext = undefined;
    this.skip = e.pad;
    if (e.type === 'L' || e.type === 'K') {
      const z = e.buf.indexOf(0);
      const s = e.buf.toString('utf8', 0, z < 0 ? e.buf.length : z);
      if (e.type === 'L') this.longName = s;
      else this.longLink = s;
      return;
    }
    let records: Record<string, string>;
    try {
      records = parsePax(e.buf);
    } catch {
      this.flag('(pax header)', 'is malformed: readers differ on the entry it describes');
      this.stopped = true;
      return;
    }
    if (e.type === 'x') this.pax = records;
    else if (records.path !== undefined || records.linkpath !== undefined) {
      // dockerd ignores a global header; GNU tar and Python's tarfile give every later entry its path.
      this.flag(records.path ?? records.linkpath!, 'is the path a PAX global header gives every later entry (GNU tar and Python apply it, dockerd does not)');
    }
  }

  private entry(h: TarHeader, block: Buffer): void {
    const { pax, longName, longLink } = this;
    this.pax = this.longName = this.longLink = undefined;
    const t = h.typeflag;
    let size = h.size;
    if (pax?.size !== undefined) {
      if (!/^[0-9]{1,15}$/.test(pax.size)) {
        this.flag(h.name, `has a pax size ${JSON.stringify(pax.size.slice(0, 40))} that is not a number`);
        this.stopped = true;
        return;
      }
      size = Number(pax.size);
    }
    // Go's archive/tar (dockerd, containerd) lets a GNU long name win over a pax path; others the other way.
    const shown = longName ?? pax?.path ?? h.name;
    const z = block.indexOf(0);
    const field = block.toString('utf8', 0, z < 0 || z > 100 ? 100 : z);
    const names = distinct([pax?.path, longName, h.name, field]);
    const links = t === '1' ? distinct([pax?.linkpath, longLink, h.linkname]) : [];
    if (HEADER_ONLY.has(t)) {
      if (size > 0) {
        this.flag(shown, `is a header of type '${t}' claiming ${size} bytes of content: readers differ on where the next entry starts`);
        this.stopped = true;
        return;
      }
    } else this.skip = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    for (const name of names) this.checkName(name, t);
    for (const link of links) this.checkLink(shown, link);
    this.remember(names, t === '2');
  }

  private checkName(name: string, t: string): void {
    const { absolute, parts } = split(name);
    if (absolute) return this.flag(name, 'is an absolute path');
    if (parts.includes('..')) return this.flag(name, 'has a ".." component (it climbs out of the directory it is in)');
    const base = parts[parts.length - 1] ?? '';
    if (base.startsWith('.wh.') && !base.startsWith('.wh..wh.')) {
      const gone = base.slice(4);
      if (gone === '' || gone === '.' || gone === '..') return this.flag(name, `is a whiteout of ${JSON.stringify(gone)} (it would delete ${gone === '..' ? 'the directory above' : 'its own directory'})`);
    }
    if (this.symlinks.size === 0) return;
    const through = this.throughSymlink(parts);
    if (through !== undefined) return this.flag(name, `is written through the symlink ${JSON.stringify(through)}, an earlier entry of this layer`);
    if (t !== '2' && this.symlinks.has(parts.join('/'))) this.flag(name, `replaces the symlink ${JSON.stringify(parts.join('/'))} of an earlier entry (an extractor that follows it writes where it points)`);
  }

  private checkLink(name: string, link: string): void {
    const { absolute, parts } = split(link);
    if (absolute) return this.flag(name, `is a hard link to the absolute path ${JSON.stringify(link)}`);
    if (parts.includes('..')) return this.flag(name, `is a hard link to ${JSON.stringify(link)}, which climbs out with ".."`);
    const through = this.symlinks.size > 0 ? this.throughSymlink(parts) : undefined;
    if (through !== undefined) this.flag(name, `is a hard link to ${JSON.stringify(link)}, through the symlink ${JSON.stringify(through)} of an earlier entry`);
  }

  /** throughSymlink is the first directory on the way to parts that an earlier entry made a symlink. */
  private throughSymlink(parts: readonly string[]): string | undefined {
    let path = '';
    for (let i = 0; i < parts.length - 1; i++) {
      path = i === 0 ? parts[0]! : `${path}/${parts[i]}`;
      if (this.symlinks.has(path)) return path;
    }
    return undefined;
  }

  /** remember keeps a symlink's path (as each reader names it) for the entries after it; anything else there replaces it. */
  private remember(names: readonly string[], symlink: boolean): void {
    for (const name of names) {
      const { absolute, parts } = split(name);
      if (absolute || parts.length === 0 || parts.includes('..')) continue;
      const key = parts.join('/');
      if (!symlink) {
        if (this.symlinks.delete(key)) this.symlinkBytes -= key.length;
        continue;
      }
      if (this.symlinks.has(key)) continue;
      this.symlinks.add(key);
      this.symlinkBytes += key.length;
      if (this.symlinkBytes > MAX_SYMLINK_BYTES) {
        this.flag(name, `is one symlink too many: the layer's symlink paths pass ${MAX_SYMLINK_BYTES >> 20} MiB, more than ferry follows`);
        this.stopped = true;
        return;
      }
    }
  }
}

/** split is a tar name's components, without empty ones and ".": "./usr//bin/" is ["usr", "bin"]. */
function split(name: string): { absolute: boolean; parts: string[] } {
  return { absolute: name.startsWith('/'), parts: name.split('/').filter((p) => p !== '' && p !== '.') };
}

function distinct(xs: readonly (string | undefined)[]): string[] {
  const out: string[] = [];
  for (const x of xs) if (x !== undefined && x !== '' && !out.includes(x)) out.push(x);
  return out;
}
