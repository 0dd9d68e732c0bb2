// Crafting tars by hand for hostile-input tests: raw ustar headers with any type, link, name or size, written
// without ferry's own tar code, and a header walk that gives each entry's offsets (to cut or corrupt at).
import tar from 'tar-stream';
import { createReadStream } from 'node:fs';

export const BLOCK = 512;

export interface RawEntry {
  name: string;
  data?: Buffer;
  /** Tar typeflag: '0' file, '1' hardlink, '2' symlink, '3' char device, '4' block device, '5' directory, '6' fifo, 'x' pax, 'L' GNU long name. */
  type?: string;
  linkname?: string;
  /** The size the header claims; defaults to the data's length. */
  size?: number;
  mode?: number;
  devmajor?: number;
  devminor?: number;
}

function putString(buf: Buffer, s: string, off: number, len: number): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new RangeError(`field too long for ustar: ${s}`);
  b.copy(buf, off);
}

function putOctal(buf: Buffer, n: number, off: number, len: number): void {
  putString(buf, `${n.toString(8).padStart(len - 1, '0')}\0`, off, len);
}

/** ustarHeader encodes one header block; names over 100 bytes go into the prefix field. */
export function ustarHeader(e: RawEntry): Buffer {
  const buf = Buffer.alloc(BLOCK);
  let name = e.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0) throw new RangeError(`name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  putString(buf, name, 0, 100);
  putOctal(buf, e.mode ?? (e.type === '5' ? 0o755 : 0o644), 100, 8);
  putOctal(buf, 0, 108, 8);
  putOctal(buf, 0, 116, 8);
  putOctal(buf, e.size ?? e.data?.length ?? 0, 124, 12);
  putOctal(buf, 0, 136, 12);
  buf.write(e.type ?? '0', 156, 'latin1');
  putString(buf, e.linkname ?? '', 157, 100);
  buf.write('ustar\u000000', 257, 'latin1');
  putString(buf, 'root', 265, 32);
  putString(buf, 'root', 297, 32);
  putOctal(buf, e.devmajor ?? 0, 329, 8);
  putOctal(buf, e.devminor ?? 0, 337, 8);
  putString(buf, prefix, 345, 155);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of buf) sum += byte;
  putString(buf, `${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return buf;
}

/** paxRecords encodes "len key=value\n" records, the length counting itself. */
export function paxRecords(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    out += `${len}${body}`;
  }
  return Buffer.from(out, 'utf8');
}

/** tarBytes lays entries out as a tar; `end: false` leaves off the two zero blocks. */
export function tarBytes(entries: readonly RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(ustarHeader(e));
    const data = e.data ?? Buffer.alloc(0);
    parts.push(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** readEntries reads every entry of a tar with tar-stream (an independent reader), content included. */
export async function readEntries(path: string): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  const extract = tar.extract();
  createReadStream(path).pipe(extract);
  for await (const e of extract) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    if (e.header.type !== 'file') throw new Error(`unexpected ${e.header.type} entry ${e.header.name} in a bundle ferry wrote`);
    out.push({ name: e.header.name, data: Buffer.concat(chunks) });
  }
  return out;
}

export interface EntryLayout {
  name: string;
  header: number;
  data: number;
  size: number;
}

/** layout walks plain ustar headers (what ferry writes) and returns where each entry and the end marker are. */
export function layout(tarBuf: Buffer): { entries: EntryLayout[]; end: number } {
  const entries: EntryLayout[] = [];
  let pos = 0;
  while (pos + BLOCK <= tarBuf.length) {
    const h = tarBuf.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) return { entries, end: pos };
    const str = (off: number, len: number): string => {
      const s = h.subarray(off, off + len);
      const z = s.indexOf(0);
      return s.subarray(0, z < 0 ? len : z).toString('utf8');
    };
    const prefix = str(345, 155);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const size = parseInt(str(124, 12).trim() || '0', 8);
    entries.push({ name, header: pos, data: pos + BLOCK, size });
    pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error('no end-of-archive marker');
}

/**
 * emptyEntries lays out `n` empty regular files named by `name(i)` as consecutive ustar headers, fast (one
 * template, name and checksum patched): for archives of hundreds of thousands of entries.
 */
export function emptyEntries(n: number, name: (i: number) => string): Buffer {
  const template = ustarHeader({ name: 'x', data: Buffer.alloc(0) });
  let base = 0;
  for (let i = 0; i < BLOCK; i++) base += i >= 148 && i < 156 ? 0x20 : template[i]!;
  base -= 'x'.charCodeAt(0);
  const out = Buffer.alloc(n * BLOCK);
  for (let k = 0; k < n; k++) {
    const at = k * BLOCK;
    template.copy(out, at);
    out.fill(0, at, at + 100);
    const written = out.write(name(k), at, 100, 'utf8');
    let sum = base;
    for (let j = 0; j < written; j++) sum += out[at + j]!;
    out.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
  }
  return out;
}

/** Header fields by offset and length (ustar). */
export const HEADER_FIELDS = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  checksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

/** fixChecksum rewrites the checksum of the header block at `at` after a field was edited (so the edit is what gets tested). */
export function fixChecksum(tarBuf: Buffer, at: number): void {
  tarBuf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += tarBuf[at + i]!;
  tarBuf.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 8, 'latin1');
}

/** setField writes `value` (raw bytes, NUL-padded or cut to the field) into a header field and fixes the checksum. */
export function setField(tarBuf: Buffer, at: number, field: keyof typeof HEADER_FIELDS, value: Buffer | string): void {
  const [off, len] = HEADER_FIELDS[field];
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  tarBuf.fill(0, at + off, at + off + len);
  bytes.copy(tarBuf, at + off, 0, Math.min(len, bytes.length));
  fixChecksum(tarBuf, at);
}
