// writeAtomic: a small file appears whole or not at all: a temp file beside it, synced, then renamed into place.
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FerryError } from '../ui/errors.js';

export async function writeAtomic(path: string, bytes: Buffer | string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new FerryError('OUTPUT', `cannot write ${path}: ${dir} is not a directory`, { hint: 'create the directory first' });
  }
  const temp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fh = await open(temp, 'w', mode);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new FerryError('DISK_FULL', `cannot write ${path}: the disk is full`);
    throw new FerryError('OUTPUT', `cannot write ${path}: ${code ?? (err as Error).message}`);
  }
}
