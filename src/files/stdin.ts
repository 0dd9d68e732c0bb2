// A bundle on stdin (`ferry load < BUNDLE`, `… | ferry load`), as docker load reads one. A bundle is read by offset
// (its indexes are at the end), so a redirected file is read in place and a pipe is first spooled to TMPDIR,
// streamed to disk with flat memory (docker load spools its input too).
import { createWriteStream } from 'node:fs';
import { fstat } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FerryError } from '../ui/errors.js';

export interface StdinFile {
  /** A path the bundle can be opened at by offset. */
  path: string;
  /** remove drops the spooled copy, if one was made. */
  remove(): Promise<void>;
}

/** stdinIsTerminal: nothing was piped or redirected, so stdin is no bundle (docker load says the same). */
export function stdinIsTerminal(): boolean {
  return process.stdin.isTTY === true;
}

export async function stdinAsFile(signal?: AbortSignal): Promise<StdinFile> {
  const st = await promisify(fstat)(0);
  const none = 'name at least one bundle to load: none was named, and nothing came on stdin';
  const hint = 'ferry load BUNDLE… [IMAGE…], or ferry load < BUNDLE';
  if (st.isFile()) {
    if (st.size === 0) throw new FerryError('USAGE', none, { hint });
    return { path: '/dev/stdin', remove: async () => undefined };
  }
  const dir = await mkdtemp(join(tmpdir(), 'ferry-stdin-'));
  const path = join(dir, 'stdin.ferry.tar');
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await pipeline(process.stdin, createWriteStream(path, { mode: 0o600 }), ...(signal ? [{ signal }] : []));
    if ((await stat(path)).size === 0) throw new FerryError('USAGE', none, { hint });
    return { path, remove };
  } catch (err) {
    await remove();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new FerryError('DISK_FULL', `no room in ${tmpdir()} to hold the bundle read from stdin`, { hint: 'free space there, point TMPDIR elsewhere, or name the bundle file instead of piping it' });
    throw err;
  }
}
