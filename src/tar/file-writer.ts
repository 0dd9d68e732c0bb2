// TarFileWriter: writes a tar to a temp file beside its destination, each entry's header filled in once its content
// (and so its size and name) is known; commit() fsyncs and renames, so the destination appears only when complete.
import { processAlive } from '../process-alive.js';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { BLOCK, encodeHeader } from './header.js';

const ZEROS = Buffer.alloc(BLOCK * 2);

export class TarFileWriter {
  readonly path: string;
  readonly tempPath: string;
  private fh: FileHandle | undefined;
  private pos = 0;
  private open = false;
  private names = new Set<string>();

  private constructor(path: string, tempPath: string, fh: FileHandle) {
    this.path = path;
    this.tempPath = tempPath;
    this.fh = fh;
  }

  /**
   * create opens a temp file in the destination's directory (same filesystem, so the final rename is atomic). Its
   * name carries the writer's PID, so temp files a killed ferry left for the same destination are found and removed.
   */
  static async create(path: string): Promise<TarFileWriter> {
    await removeStale(path);
    const tempPath = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.partial`);
    const fh = await open(tempPath, 'wx', 0o644);
    return new TarFileWriter(path, tempPath, fh);
  }

  /** bytesWritten is the size of what the finished tar will hold so far. */
  get bytesWritten(): number {
    return this.pos;
  }


  private handle(): FileHandle {
    if (!this.fh) throw new Error('TarFileWriter is closed');
    return this.fh;
  }

  async addFile(name: string, bytes: Uint8Array): Promise<void> {
    const entry = this.beginEntry();
    await entry.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    await entry.finish(name);
  }

  /** located gives a failed write (ENOSPC carries no path) the destination's name, for the user's message. */
  private located = (err: unknown): never => {
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && e.code && !e.path) e.path = this.path;
    throw err;
  };

  /** beginEntry reserves a header; one entry at a time. Its content streams straight to disk. */
  beginEntry(): TarEntryWriter {
    if (this.open) throw new Error('TarFileWriter: an entry is already open');
    this.open = true;
    const fh = this.handle();
    const headerPos = this.pos;
    let size = 0;
    const done = (): void => {
      this.open = false;
    };
    return {
      offset: headerPos + BLOCK,
      write: async (chunk: Buffer): Promise<void> => {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, headerPos + BLOCK + size + off).catch(this.located);
          off += bytesWritten;
        }
        size += chunk.length;
      },
      writev: async (chunks: readonly Buffer[]): Promise<void> => {
        let rest = chunks;
        while (rest.length > 0) {
          const { bytesWritten } = await fh.writev(rest as Buffer[], headerPos + BLOCK + size).catch(this.located);
          if (bytesWritten === 0) throw new Error(`${this.path}: a write wrote nothing`);
          size += bytesWritten;
          // A short write (more buffers than one call takes): go on with what is left.
          let k = bytesWritten;
          let i = 0;
          while (i < rest.length && k >= rest[i]!.length) k -= rest[i++]!.length;
          rest = i < rest.length ? [rest[i]!.subarray(k), ...rest.slice(i + 1)] : [];
        }
      },
      finish: async (name: string): Promise<void> => {
        if (this.names.has(name)) throw new Error(`duplicate tar entry ${name}`);
        await fh.write(encodeHeader(name, size), 0, BLOCK, headerPos).catch(this.located);
        const pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (pad) await fh.write(ZEROS, 0, pad, headerPos + BLOCK + size).catch(this.located);
        this.names.add(name);
        this.pos = headerPos + BLOCK + size + pad;
        done();
      },
      discard: (): void => {
        // The next entry overwrites these bytes; commit() truncates whatever is left past the end.
        done();
      },
    };
  }

  /** commit ends the archive, fsyncs file and directory, then renames: the destination is whole or absent. */
  async commit(): Promise<void> {
    if (this.open) throw new Error('TarFileWriter: commit with an entry still open');
    const fh = this.handle();
    await fh.write(ZEROS, 0, ZEROS.length, this.pos).catch(this.located);
    this.pos += ZEROS.length;
    await fh.truncate(this.pos);
    await fh.sync().catch(this.located);
    await fh.close();
    this.fh = undefined;
    await rename(this.tempPath, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** abort removes the temp file; safe to call more than once and after commit. */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) return;
    await fh.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

export interface TarEntryWriter {
  /** Where the entry's content starts in the file (it is written there as it comes, before the header). */
  readonly offset: number;
  write(chunk: Buffer): Promise<void>;
  /** writev writes several chunks in one call; like write, one call at a time. */
  writev(chunks: readonly Buffer[]): Promise<void>;
  /** finish names the entry and writes its header; name must be new. */
  finish(name: string): Promise<void>;
  /** discard drops what was written, e.g. a layer found to be a repeat. */
  discard(): void;
}

/** staleTemps lists temp files for path whose writer is no longer running (killed before it could clean up). */
export async function staleTemps(path: string): Promise<string[]> {
  const prefix = `.${basename(path)}.`;
  const out: string[] = [];
  for (const f of await readdir(dirname(path)).catch(() => [] as string[])) {
    const m = f.startsWith(prefix) ? /^(\d+)-[a-f0-9]{8}\.(?:partial|spool)$/.exec(f.slice(prefix.length)) : null;
    if (m && !processAlive(Number(m[1]))) out.push(join(dirname(path), f));
  }
  return out;
}

async function removeStale(path: string): Promise<void> {
  for (const f of await staleTemps(path)) await unlink(f).catch(() => undefined);
}

/**
 * WriteBehind writes an entry's chunks while the next ones arrive: push returns at once unless `limit` bytes are
 * already waiting, and whatever gathered during one write goes out in the next (one writev), so a stream of small
 * chunks costs a few large writes instead of a round trip each. The chunks must not be reused.
 */
export class WriteBehind {
  private queue: Buffer[] = [];
  private queued = 0;
  private inflight: Promise<void> | undefined;
  private failed: { err: unknown } | undefined;
  /** Bytes on disk so far. */
  written = 0;

  constructor(
    private readonly entry: TarEntryWriter,
    private readonly limit: number,
    private readonly onWritten: (written: number) => void = () => undefined,
  ) {}

  async push(chunk: Buffer): Promise<void> {
    this.rethrow();
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.kick();
    while (this.queued >= this.limit && this.inflight) await this.inflight;
    this.rethrow();
  }

  /** drain waits until everything pushed is written. */
  async drain(): Promise<void> {
    while (this.inflight) await this.inflight;
    this.rethrow();
  }

  private rethrow(): void {
    if (this.failed) throw this.failed.err;
  }

  /** settle waits for the write in flight, if any, and never throws: after it, the entry may be discarded. */
  async settle(): Promise<void> {
    this.queue = [];
    this.queued = 0;
    while (this.inflight) await this.inflight;
  }

  private kick(): void {
    if (this.inflight || this.failed || this.queue.length === 0) return;
    const bufs = this.queue;
    const n = this.queued;
    this.queue = [];
    this.queued = 0;
    this.inflight = this.entry.writev(bufs).then(
      () => {
        this.written += n;
        this.inflight = undefined;
        this.onWritten(this.written);
        this.kick();
      },
      (err: unknown) => {
        this.failed = { err };
        this.inflight = undefined;
      },
    );
  }
}
