// indexLayer: a layer tar file as the records that tile it (each an entry's headers, content and padding), with
// sha256 of the records and contents a delta may match, read in one sequential pass.
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { walkTarFile } from '../tar/offset-walk.js';
import { DeltaError } from './recipe.js';

export interface LayerRecord {
  /** The entry's path, without a leading "./" or "/". */
  path: string;
  regular: boolean;
  /** Where its first header block (pax and long-name headers included) starts. */
  start: number;
  /** Where its content starts, and its length. */
  contentAt: number;
  size: number;
  /** Where its padding ends: the next record's start. */
  end: number;
  /** sha256 (hex) of bytes [start, end), when asked for. */
  recordHash?: string;
  /** sha256 (hex) of its content, when asked for. */
  contentHash?: string;
}

export interface LayerIndex {
  records: LayerRecord[];
  /** Bytes from the last record's end to the end of the file: the end-of-archive blocks and any padding after. */
  tail: { start: number; end: number };
}

export interface HashWanted {
  /** Hash each record whose length is listed (all, when undefined). */
  recordLengths?: ReadonlySet<number>;
  /** Hash the content of each regular file whose size is listed (all, when undefined). */
  contentSizes?: ReadonlySet<number>;
}

/** indexLayer walks the tar's headers, then hashes what `want` asks for in one pass over the file. */
export async function indexLayer(fh: FileHandle, what: string, want: HashWanted = {}): Promise<LayerIndex> {
  const records: LayerRecord[] = [];
  let end = 0;
  await walkTarFile(fh, {
    kind: 'layer',
    gnuLongNames: true,
    fail: (entry, msg) => new DeltaError(`${what}${entry ? `, ${entry}` : ''}: ${msg}`),
    visit: (e) => {
      const next = e.offset + Math.ceil(e.size / 512) * 512;
      records.push({ path: e.name.replace(/^(\.\/|\/)+/, ''), regular: e.type === 'file', start: end, contentAt: e.offset, size: e.size, end: next });
      end = next;
      return e.name;
    },
  });
  const { size } = await fh.stat();
  await hashRecords(fh, records, want);
  return { records, tail: { start: end, end: size } };
}

/** hashRecords reads the file once, front to back, feeding each wanted record and content its bytes as they pass. */
async function hashRecords(fh: FileHandle, records: LayerRecord[], want: HashWanted): Promise<void> {
  // A hash is made when its job opens: made up front, one per record of a reference layer of tens of thousands of
  // files, they held tens of MB of native state at once.
  const jobs: { from: number; to: number; h?: Hash; done: (hex: string) => void }[] = [];
  for (const r of records) {
    if (!want.recordLengths || want.recordLengths.has(r.end - r.start)) {
      jobs.push({ from: r.start, to: r.end, done: (x) => (r.recordHash = x) });
    }
    if (r.regular && r.size > 0 && (!want.contentSizes || want.contentSizes.has(r.size))) {
      jobs.push({ from: r.contentAt, to: r.contentAt + r.size, done: (x) => (r.contentHash = x) });
    }
  }
  if (jobs.length === 0) return;
  // Jobs start in file order (a content range starts inside its record's range, after it): walk them with one cursor,
  // skipping the stretches no job needs.
  const buf = Buffer.allocUnsafe(1 << 20);
  let open: typeof jobs = [];
  let next = 0;
  let pos = jobs[0]!.from;
  while (next < jobs.length || open.length) {
    if (open.length === 0) pos = Math.max(pos, jobs[next]!.from);
    while (next < jobs.length && jobs[next]!.from <= pos) {
      const j = jobs[next++]!;
      j.h = createHash('sha256');
      open.push(j);
    }
    const limit = Math.min(...open.map((j) => j.to), next < jobs.length ? jobs[next]!.from : Infinity);
    const want = Math.min(buf.length, limit - pos);
    const { bytesRead } = want > 0 ? await fh.read(buf, 0, want, pos) : { bytesRead: 0 };
    if (want > 0 && bytesRead === 0) throw new DeltaError(`layer ends at ${pos}, inside an entry`);
    for (const j of open) j.h!.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
    open = open.filter((j) => {
      if (j.to > pos) return true;
      j.done(j.h!.digest('hex'));
      return false;
    });
  }
}
