// Spool: a layer parked in a temp file beside the bundle while it is hashed, when it may turn out to be one the
// bundle already holds (only then is it not compressed); read back once if it is not. Named so a later run finds
// and removes it if this one is killed.
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export class Spool {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(beside: string): Promise<Spool> {
    const path = join(dirname(beside), `.${basename(beside)}.${process.pid}-${randomBytes(4).toString('hex')}.spool`);
    return new Spool(path, await open(path, 'wx+', 0o600));
  }

  async write(chunk: Buffer): Promise<void> {
    await this.fh.write(chunk);
  }

  read(): AsyncIterable<Buffer> {
    return this.fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }

  async remove(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
  }
}
