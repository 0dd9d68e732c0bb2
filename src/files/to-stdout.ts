// A finished file sent to stdout (`ferry pack -o -`): the bundle is written to a temp file first, because its
// indexes come last and repeated layers are dropped as they are found; then it is piped out with backpressure.
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../ui/errors.js';

/** stdoutStagingPath is where a bundle bound for stdout is written first (TMPDIR, so it needs that much room). */
export function stdoutStagingPath(): string {
  return join(tmpdir(), `ferry-stdout-${process.pid}-${randomBytes(4).toString('hex')}.ferry.tar`);
}

/** refuseTerminal: binary output to a terminal helps no one (docker save refuses it too). */
export function refuseTerminal(what: string): void {
  if (process.stdout.isTTY) throw new FerryError('USAGE', `refusing to write ${what} to a terminal`, { hint: 'redirect it (-o - > FILE) or pipe it (-o - | ssh HOST ferry load)' });
}

/** copyToStdout streams the file to stdout; a reader that goes away is said as such, not as a broken pipe trace. */
export async function copyToStdout(path: string, signal?: AbortSignal): Promise<void> {
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), process.stdout, { end: false, ...(signal ? { signal } : {}) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') throw new FerryError('OUTPUT', 'the reader of stdout went away before the bundle was whole', { hint: 'what it read is incomplete; run the pack again into a file or a pipe that reads to the end' });
    throw err;
  }
}
