// readTar: a pull-based tar reader over an async byte stream. Nothing is read from the source until the
// consumer asks, so a slow consumer (compressing, writing) slows the producer instead of buffering it.
import { BLOCK, decodeHeader, isZeroBlock, parsePax, type TarHeader } from './header.js';

export class TarFormatError extends Error {}

export interface TarStreamEntry {
  header: TarHeader;
  /** The entry's content; read it (or not) before asking for the next entry. */
  body: AsyncIterable<Buffer>;
}

class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);

  constructor(src: AsyncIterable<Buffer>) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.buf.length === 0) {
      const r = await this.it.next();
      if (r.done) return false;
      this.buf = r.value;
    }
    return true;
  }

  /**
   * exact returns n bytes, or undefined at a clean end of stream before the first byte. Bytes that span chunks are
   * copied as they come: a source may reuse a chunk's memory once the next is asked for.
   */
  async exact(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    if (this.buf.length >= n) {
      const whole = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      return whole;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) throw new TarFormatError('the stream ends in the middle of a tar block');
      const k = this.buf.copy(out, got, 0, n - got);
      this.buf = this.buf.subarray(k);
      got += k;
    }
    return out;
  }

  /** take yields the next n bytes as they come, without copying. */
  async *take(n: number, onTaken: (k: number) => void): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new TarFormatError('the stream ends in the middle of an entry');
      const part = this.buf.subarray(0, left);
      this.buf = this.buf.subarray(part.length);
      left -= part.length;
      onTaken(part.length);
      yield part;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n, () => undefined));
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

export async function* readTar(src: AsyncIterable<Buffer>): AsyncGenerator<TarStreamEntry> {
  const r = new ByteReader(src);
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  let longName: string | undefined;
  try {
    for (;;) {
      const block = await r.exact(BLOCK);
      if (!block || isZeroBlock(block)) return;
      let h: TarHeader;
      try {
        h = decodeHeader(block);
      } catch (err) {
        throw new TarFormatError(`bad tar header: ${(err as Error).message}`);
      }
      const size = h.type === 'pax' || h.type === 'gnu-longname' ? h.size : (paxSize ?? h.size);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (h.type === 'pax' || h.type === 'pax-global' || h.type === 'gnu-longname' || h.type === 'gnu-longlink') {
        if (size > 1 << 20) throw new TarFormatError('tar extension header larger than 1 MiB');
        const body = (await r.exact(size + pad)) ?? Buffer.alloc(0);
        if (h.type === 'pax') {
          const pax = parsePax(body.subarray(0, size));
          paxPath = pax.path;
          paxSize = pax.size !== undefined ? Number(pax.size) : undefined;
        } else if (h.type === 'gnu-longname') longName = body.subarray(0, size).toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const header: TarHeader = { ...h, name: paxPath ?? longName ?? h.name, size };
      paxPath = paxSize = longName = undefined;
      let left = header.type === 'file' ? size : 0;
      const body = header.type === 'file' ? r.take(size, (k) => void (left -= k)) : (async function* () {})();
      yield { header, body };
      await r.skip(left + (header.type === 'file' ? pad : size + pad));
    }
  } finally {
    await r.close();
  }
}
