// Hashing as bytes pass: a counting sha256 and a verifying pass-through that fails instead of ending on a mismatch.
import { createHash, type Hash } from 'node:crypto';
import type { Digest } from '../image/digest.js';

export class Sha256Counter {
  private readonly h: Hash = createHash('sha256');
  bytes = 0;

  update(chunk: Uint8Array): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
  }

  digest(): Digest {
    return `sha256:${this.h.digest('hex')}` as Digest;
  }
}

export class DigestMismatchError extends Error {
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

/**
 * verified yields src unchanged and throws DigestMismatchError if the bytes exceed `size`, end short of it,
 * or hash to another digest. The consumer sees a clean end only for good data.
 */
export async function* verified(src: AsyncIterable<Buffer>, expect: { digest: string; size: number; what: string }): AsyncGenerator<Buffer> {
  const h = new Sha256Counter();
  for await (const chunk of src) {
    h.update(chunk);
    if (h.bytes > expect.size) throw new DigestMismatchError(`${expect.what} is larger than its recorded size`, `${expect.size} bytes`, `more than ${expect.size}`);
    yield chunk;
  }
  if (h.bytes !== expect.size) throw new DigestMismatchError(`${expect.what} is shorter than its recorded size`, `${expect.size} bytes`, `${h.bytes} bytes`);
  const d = h.digest();
  if (d !== expect.digest) throw new DigestMismatchError(`${expect.what} digest`, expect.digest, d);
}

/**
 * collect gathers a small stream (a config, a manifest) into one buffer, refusing more than limit bytes. Each chunk
 * is copied as it comes: a source may reuse a chunk's memory for the next.
 */
export async function collect(src: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > limit) throw new RangeError(`more than ${limit} bytes where a small JSON document was expected`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts, n);
}

/** sized yields src unchanged and throws DigestMismatchError if it ends short of `size` (length only, no hashing). */
export async function* sized(src: AsyncIterable<Buffer>, size: number, what: string): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    yield chunk;
  }
  if (n !== size) throw new DigestMismatchError(`${what} is shorter than its recorded size`, `${size} bytes`, `${n} bytes`);
}
