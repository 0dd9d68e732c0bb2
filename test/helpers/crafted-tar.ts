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
