// ustar headers, encoded and decoded by hand: the bundle writer fills a header in after its blob is written,
// and the reader walks headers by offset without reading content. Both need the raw 512-byte form.

export const BLOCK = 512;

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink' | 'other';

export interface TarHeader {
  name: string;
  size: number;
  type: EntryType;
  typeflag: string;
  linkname: string;
}

const ENC = new TextEncoder();

function writeString(buf: Buffer, s: string, off: number, len: number): void {
  const bytes = ENC.encode(s);
  if (bytes.length > len) throw new RangeError(`tar field too long: ${s}`);
  buf.set(bytes, off);
}

function writeOctal(buf: Buffer, n: number, off: number, len: number): void {
  writeString(buf, n.toString(8).padStart(len - 1, '0'), off, len - 1);
}

/** encodeHeader makes a ustar header for a regular file; sizes past 8 GiB use the base-256 form GNU tar reads. */
export function encodeHeader(name: string, size: number, mode = 0o644): Buffer {
  const buf = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (ENC.encode(name).length > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || name.length - cut - 1 > 100) throw new RangeError(`tar name too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  writeString(buf, base, 0, 100);
  writeOctal(buf, mode, 100, 8);
  writeOctal(buf, 0, 108, 8);
  writeOctal(buf, 0, 116, 8);
  if (size < 0o77777777777) writeOctal(buf, size, 124, 12);
  else {
    buf[124] = 0x80;
    let n = BigInt(size);
    for (let i = 135; i > 124; i--) {
      buf[i] = Number(n & 0xffn);
      n >>= 8n;
    }
  }
  writeOctal(buf, 0, 136, 12); // mtime 0: bundles of the same images are byte-identical
  buf.write('        ', 148, 'latin1');
  buf.write('0', 156, 'latin1');
  buf.write('ustar\u000000', 257, 'latin1');
  writeString(buf, 'root', 265, 32);
  writeString(buf, 'root', 297, 32);
  writeString(buf, prefix, 345, 155);
  writeOctal(buf, checksum(buf), 148, 7);
  return buf;
}

/** checksum sums the header's bytes, its own field counted as spaces (two loops: this runs once per entry of every layer). */
function checksum(buf: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[i]!;
  for (let i = 156; i < BLOCK; i++) sum += buf[i]!;
  return sum;
}

function readString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function readNumber(buf: Buffer, off: number, len: number): number {
  if (buf[off]! & 0x80) {
    let n = 0n;
    for (let i = off + 1; i < off + len; i++) n = (n << 8n) | BigInt(buf[i]!);
    if (buf[off] !== 0x80 || n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('tar size field out of range');
    return Number(n);
  }
  // Octal digits after leading spaces, then only NULs and spaces; read byte by byte (no strings: once per entry).
  const end = off + len;
  let i = off;
  while (i < end && buf[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  for (; i < end && buf[i]! >= 0x30 && buf[i]! <= 0x37; i++, digits++) n = n * 8 + (buf[i]! - 0x30);
  for (; i < end; i++) {
    if (buf[i] !== 0 && buf[i] !== 0x20) {
      const s = buf.toString('latin1', off, end).replace(/[\0 ]+$/, '').replace(/^[ ]+/, '');
      throw new RangeError(`tar number field is not octal: ${JSON.stringify(s)}`);
    }
  }
  return digits === 0 ? 0 : n;
}

/** isZeroBlock tells the end-of-archive marker from a header. */
export function isZeroBlock(buf: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

/** decodeHeader parses one header block; it throws RangeError on a bad checksum or malformed field. */
export function decodeHeader(buf: Buffer): TarHeader {
  const stored = readNumber(buf, 148, 8);
  if (stored !== checksum(buf)) throw new RangeError('tar header checksum mismatch');
  const typeflag = String.fromCharCode(buf[156]!);
  const magic = buf.toString('latin1', 257, 263);
  let name = readString(buf, 0, 100);
  if (magic.startsWith('ustar')) {
    const prefix = readString(buf, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const types: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'directory', '2': 'symlink', '1': 'hardlink', x: 'pax', g: 'pax-global', L: 'gnu-longname', K: 'gnu-longlink' };
  return { name, size: readNumber(buf, 124, 12), type: types[typeflag] ?? 'other', typeflag, linkname: readString(buf, 157, 100) };
}

/** parsePax reads "len key=value\n" records; only path and size matter to ferry. */
export function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > buf.length) throw new RangeError('malformed pax header');
    const rec = buf.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}
