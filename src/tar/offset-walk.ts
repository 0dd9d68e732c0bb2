// walkTarFile: a tar file's headers read by offset, content never read, so a many-GB archive is indexed in
// milliseconds and any entry can later be read by byte range. Truncation and corrupt headers are refused.
import type { FileHandle } from 'node:fs/promises';
import { BLOCK, decodeHeader, isZeroBlock, parsePax, type EntryType } from './header.js';

/** OffsetEntry is one entry as the walk met it (pax records applied); offset is where its content starts. */
export interface OffsetEntry {
  name: string;
  type: EntryType;
  typeflag: string;
  linkname: string;
  offset: number;
  size: number;
}

export interface WalkOptions {
  /** fail makes the error thrown for a fault; entry names the tar entry at fault, if one. */
  fail(entry: string | undefined, what: string): Error;
  /** visit sees each entry but pax headers; it returns the name to report as "the last whole entry", if it counts. It may throw. */
  visit(e: OffsetEntry): string | undefined;
  /** What the file is, in messages: "truncated bundle", "not an archive". */
  kind: string;
  /** Apply GNU long-name headers ('L') to the entry after them instead of handing them to visit. */
  gnuLongNames?: boolean;
  /** Hand PAX global headers ('g') to visit (to refuse them) instead of passing over them. */
  visitGlobalHeaders?: boolean;
}

const WINDOW = 64 << 10;

/** walkTarFile reads every header from the start of fh to the end-of-archive marker, which must be there. */
export async function walkTarFile(fh: FileHandle, opts: WalkOptions): Promise<void> {
  const { fail, visit, kind } = opts;
  const { size: fileSize } = await fh.stat();
  // Headers are read through a window: an archive of many small entries costs a read per window, not per header.
  const win = Buffer.alloc(WINDOW);
  let winPos = 0;
  let winLen = 0;
  const at = async (offset: number, length: number): Promise<Buffer | undefined> => {
    if (offset < winPos || offset + length > winPos + winLen) {
      winPos = offset;
      winLen = (await fh.read(win, 0, Math.max(length, Math.min(WINDOW, fileSize - offset)), offset)).bytesRead;
    }
    return offset + length <= winPos + winLen ? win.subarray(offset - winPos, offset - winPos + length) : undefined;
  };
  let pos = 0;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  let longName: string | undefined;
  let ended = false;
  /** The last whole entry, to say where a truncated archive ends. */
  let last: string | undefined;
  if (fileSize === 0) throw fail(undefined, `is empty (not a ${kind}, or nothing was copied)`);
  while (pos + BLOCK <= fileSize) {
    const block = await at(pos, BLOCK);
    if (!block) break;
    if (isZeroBlock(block)) {
      ended = true;
      break;
    }
    let h;
    try {
      h = decodeHeader(block);
    } catch (err) {
      throw fail(`tar header at offset ${pos}${last ? ` (after ${last})` : ''}`, `${(err as Error).message} (corrupt or not a tar)`);
    }
    const size = paxSize ?? h.size;
    const contentAt = pos + BLOCK;
    if (contentAt + size > fileSize) throw fail(h.name, `claims ${size} bytes but the file ends first (truncated ${kind})`);
    const next = contentAt + Math.ceil(size / BLOCK) * BLOCK;
    if (h.type === 'pax' || (opts.gnuLongNames && h.type === 'gnu-longname')) {
      if (h.size > 1 << 20) throw fail(h.name, `${h.type === 'pax' ? 'pax' : 'long-name'} header larger than 1 MiB`);
      const buf = h.size <= WINDOW ? Buffer.from((await at(contentAt, h.size)) ?? Buffer.alloc(0)) : Buffer.alloc(h.size);
      if (h.size > WINDOW) await fh.read(buf, 0, h.size, contentAt);
      if (h.type === 'gnu-longname') {
        longName = buf.toString('utf8').replace(/\0+$/, '');
        pos = next;
        continue;
      }
      let pax;
      try {
        pax = parsePax(buf);
      } catch {
        throw fail(h.name, 'malformed pax header');
      }
      paxPath = pax.path;
      paxSize = pax.size !== undefined ? Number(pax.size) : undefined;
      if (paxSize !== undefined && (!Number.isSafeInteger(paxSize) || paxSize < 0)) throw fail(h.name, 'pax size is not a number');
      pos = next;
      continue;
    }
    if (h.type === 'pax-global' && !opts.visitGlobalHeaders) {
      pos = next;
      continue;
    }
    const name = paxPath ?? longName ?? h.name;
    paxPath = undefined;
    paxSize = undefined;
    longName = undefined;
    const counted = visit({ name, type: h.type, typeflag: h.typeflag, linkname: h.linkname, offset: contentAt, size });
    if (counted !== undefined) last = counted;
    pos = next;
  }
  if (!ended) {
    const after = last ? `after ${last}` : 'before its first entry';
    if (pos < fileSize) throw fail(undefined, `ends inside the tar header at offset ${pos}, ${after} (truncated ${kind})`);
    throw fail(undefined, `ends ${after} without the tar end-of-archive marker (truncated ${kind})`);
  }
}
