// recycledGet: one GET on a connection of its own whose response is read into one reused buffer. Node gives every
// socket read (64 KiB) a new buffer; over a gigabyte of `docker save`, allocating and collecting them took ~1.5 s
// of CPU (measured: 0.3 s this way), CPU the compressor needs. So body chunks here are views of that one buffer.
// Over TLS, no: node may decrypt several records into the buffer after a read was declined, overwriting views still
// queued (seen as a corrupt tar), so TLS reads take node's own buffers, with the same framing and back-pressure.
import { connect } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { HttpResponseFramer, type ResponseHead } from './http-response-framer.js';

/** A unix socket, or a tcp host and port (with tls: spoken to over TLS with these options). */
export type SocketTarget = { path: string } | { host: string; port: number; tls?: ConnectionOptions };

export interface RecycledBody extends AsyncIterable<Buffer> {
  /** text reads a short body (an error's message) whole, up to limit bytes. */
  text(limit?: number): Promise<string>;
}

export interface RecycledResponse extends ResponseHead {
  /**
   * The body, to be read once. Each chunk is a view of the connection's one buffer, overwritten when the next
   * chunk is asked for: a reader that keeps bytes must copy them.
   */
  body: RecycledBody;
  /** destroy ends the connection; a body not read to its end must be destroyed. */
  destroy(): void;
}

export interface RecycledGetOptions {
  signal?: AbortSignal;
  /** The reused read buffer's size (default 1 MiB; a read takes what the socket holds, up to this). */
  bufferSize?: number;
}

export function recycledGet(target: SocketTarget, path: string, opts: RecycledGetOptions = {}): Promise<RecycledResponse> {
  const { signal } = opts;
  signal?.throwIfAborted();
  return new Promise((resolveHead, rejectHead) => {
    const buf = Buffer.allocUnsafe(opts.bufferSize ?? 1 << 20);
    const framer = new HttpResponseFramer();
    // Views of buf from the last read, not yet handed out: no read happens while any is left.
    const queue: Buffer[] = [];
    let failed: { err: unknown } | undefined;
    let ended = false;
    let paused = false;
    let headSent = false;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const fail = (err: unknown): void => {
      if (failed || ended) return;
      failed = { err };
      if (!headSent) rejectHead(err);
      notify();
      socket.destroy();
    };
    const onAbort = (): void => fail(signal!.reason);

    const tls = 'tls' in target ? target.tls : undefined;
    /** take frames one read; false: hold further reads until the reader has every view of this one. */
    const take = (bytes: Buffer): boolean => {
      try {
        framer.feed(bytes, (view) => queue.push(view));
      } catch (err) {
        fail(err);
        return false;
      }
      if (!headSent && framer.head) {
        headSent = true;
        resolveHead(response(framer.head));
      }
      if (framer.done && !ended) {
        ended = true;
        // The response is whole; the connection (Connection: close) has nothing more for us. Destroying it
        // leaves buf, and the views still queued, as they are.
        socket.destroy();
        // A read that held only the end (a chunked body's last "0\r\n\r\n") queues nothing: the reader waiting for
        // more must still hear of it.
        notify();
      }
      if (queue.length === 0) return true;
      notify();
      paused = !ended;
      return false;
    };
    const onread = { buffer: buf, callback: (n: number): boolean => take(buf.subarray(0, n)) };
    const socket =
      'path' in target ? connect({ path: target.path, onread })
      : tls ? connectTls({ ...tls, host: target.host, port: target.port })
      : connect({ host: target.host, port: target.port, onread });
    if (tls) socket.on('data', (chunk: Buffer) => void (take(chunk) || socket.pause()));
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: ferry\r\nConnection: close\r\n\r\n`));
    socket.on('error', fail);
    // Every way out (the response whole, a failure, an abort, the reader gone) ends in a destroy, so here.
    socket.on('close', () => {
      signal?.removeEventListener('abort', onAbort);
      if (ended || failed) return;
      try {
        framer.end();
        ended = true;
        notify();
      } catch (err) {
        fail(err);
      }
    });

    function response(head: ResponseHead): RecycledResponse {
      let taken = false;
      async function* chunks(): AsyncGenerator<Buffer> {
        if (taken) throw new Error('a recycled response body can be read once');
        taken = true;
        try {
          for (;;) {
            const v = queue.shift();
            if (v) {
              yield v;
              continue;
            }
            if (failed) throw failed.err;
            if (ended) return;
            // Every view of the last read has been handed out and the reader has asked for more: read on.
            if (paused) {
              paused = false;
              socket.resume();
            }
            await new Promise<void>((resolve) => (wake = resolve));
          }
        } finally {
          socket.destroy();
        }
      }
      const body: RecycledBody = {
        [Symbol.asyncIterator]: chunks,
        text: async (limit = 1 << 20) => {
          const parts: Buffer[] = [];
          let size = 0;
          for await (const c of chunks()) {
            size += c.length;
            if (size > limit) break;
            parts.push(Buffer.from(c));
          }
          return Buffer.concat(parts).toString('utf8');
        },
      };
      return { ...head, body, destroy: () => socket.destroy() };
    }
  });
}
