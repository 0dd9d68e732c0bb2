// HttpResponseFramer: an HTTP/1.1 response's head and body framing (RFC 9112: content-length, chunked, or to the
// connection's end), fed bytes as they arrive. Body bytes are handed out as views of the fed buffer, never copied.

export class HttpFramingError extends Error {}

export interface ResponseHead {
  statusCode: number;
  /** Header names in lower case; a repeated header's values joined by ", ". */
  headers: Map<string, string>;
}

const MAX_HEAD = 64 << 10;
const MAX_LINE = 4 << 10;
const CRLF_CRLF = Buffer.from('\r\n\r\n');

type State = 'head' | 'length' | 'close' | 'size' | 'data' | 'data-end' | 'trailer' | 'done';

export class HttpResponseFramer {
  head: ResponseHead | undefined;
  private state: State = 'head';
  /** Head or chunk-size/trailer line bytes that span reads (small: copied). */
  private pending: Buffer = Buffer.alloc(0);
  /** Body bytes left: of the content-length body, or of the current chunk (for data-end: of its CRLF). */
  private left = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** feed consumes bytes from the connection, calling onBody with each run of body bytes (views of `bytes`). */
  feed(bytes: Buffer, onBody: (b: Buffer) => void): void {
    let at = 0;
    while (at < bytes.length) {
      switch (this.state) {
        case 'head':
          at = this.readHead(bytes, at);
          break;
        case 'length':
        case 'data': {
          const n = Math.min(this.left, bytes.length - at);
          onBody(bytes.subarray(at, at + n));
          at += n;
          this.left -= n;
          if (this.left > 0) break;
          if (this.state === 'length') this.state = 'done';
          else {
            this.state = 'data-end';
            this.left = 2;
          }
          break;
        }
        case 'close':
          onBody(bytes.subarray(at));
          at = bytes.length;
          break;
        case 'data-end': {
          // The CRLF after a chunk's data, perhaps split across reads.
          const want = this.left === 2 ? 13 : 10;
          if (bytes[at] !== want) throw new HttpFramingError('a chunk of the chunked response body does not end in CRLF');
          at++;
          if (--this.left === 0) this.state = 'size';
          break;
        }
        case 'size':
        case 'trailer': {
          const line = this.line(bytes, at);
          if (!line) {
            at = bytes.length;
            break;
          }
          at = line.next;
          if (this.state === 'size') this.chunkSize(line.text);
          else if (line.text === '') this.state = 'done';
          break;
        }
        case 'done':
          // Anything after the response is not ours (the connection is closed after one request).
          return;
      }
    }
  }

  /** end is the connection's end: the response must be whole by now, unless its body runs to the end. */
  end(): void {
    if (this.state === 'close') this.state = 'done';
    if (this.state === 'head') throw new HttpFramingError('the connection closed before a complete response head');
    if (this.state !== 'done') throw new HttpFramingError('the connection closed in the middle of the response body');
  }

  private readHead(bytes: Buffer, at: number): number {
    const from = Math.max(0, this.pending.length - 3);
    const joined = this.pending.length ? Buffer.concat([this.pending, bytes.subarray(at)]) : bytes.subarray(at);
    const end = joined.indexOf(CRLF_CRLF, from);
    if (end < 0) {
      if (joined.length > MAX_HEAD) throw new HttpFramingError(`the response head is larger than ${MAX_HEAD} bytes`);
      this.pending = Buffer.from(joined);
      return bytes.length;
    }
    if (end > MAX_HEAD) throw new HttpFramingError(`the response head is larger than ${MAX_HEAD} bytes`);
    const consumed = end + 4 - this.pending.length;
    this.pending = Buffer.alloc(0);
    const head = parseHead(joined.subarray(0, end).toString('latin1'));
    // An interim answer (100 Continue) is followed by the real one.
    if (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) return at + consumed;
    this.head = head;
    const framing = bodyFraming(head);
    this.state = framing.state;
    this.left = framing.left;
    return at + consumed;
  }

  /** line takes bytes up to CRLF (joining reads); undefined when the line is not complete yet. */
  private line(bytes: Buffer, at: number): { text: string; next: number } | undefined {
    const nl = bytes.indexOf(10, at);
    if (nl < 0) {
      this.pending = Buffer.concat([this.pending, bytes.subarray(at)]);
      if (this.pending.length > MAX_LINE) throw new HttpFramingError('a chunk-size or trailer line of the response is too long');
      return undefined;
    }
    const raw = Buffer.concat([this.pending, bytes.subarray(at, nl + 1)]);
    this.pending = Buffer.alloc(0);
    if (raw.length > MAX_LINE) throw new HttpFramingError('a chunk-size or trailer line of the response is too long');
    if (raw.length < 2 || raw[raw.length - 2] !== 13) throw new HttpFramingError('a line of the chunked response body does not end in CRLF');
    return { text: raw.subarray(0, raw.length - 2).toString('latin1'), next: nl + 1 };
  }

  private chunkSize(text: string): void {
    const hex = text.split(';', 1)[0]!.trim();
    if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) throw new HttpFramingError(`"${text.slice(0, 40)}" is not a chunk size`);
    const n = parseInt(hex, 16);
    if (n === 0) this.state = 'trailer';
    else {
      this.left = n;
      this.state = 'data';
    }
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!status) throw new HttpFramingError(`"${lines[0]!.slice(0, 60)}" is not an HTTP/1.1 status line`);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    if (colon <= 0) throw new HttpFramingError(`"${l.slice(0, 60)}" is not a header line`);
    const name = l.slice(0, colon).trim().toLowerCase();
    const value = l.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { statusCode: Number(status[1]), headers };
}

/** bodyFraming picks how the body ends (RFC 9112 §6.3): chunked wins over content-length; else the connection's end. */
function bodyFraming(head: ResponseHead): { state: State; left: number } {
  if (head.statusCode === 204 || head.statusCode === 304) return { state: 'done', left: 0 };
  const te = head.headers.get('transfer-encoding');
  if (te !== undefined) {
    const codings = te.split(',').map((c) => c.trim().toLowerCase());
    if (codings.at(-1) !== 'chunked' || codings.length > 1) throw new HttpFramingError(`transfer-encoding "${te}" is not supported`);
    return { state: 'size', left: 0 };
  }
  const cl = head.headers.get('content-length');
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw new HttpFramingError(`content-length "${cl}" is not a length`);
    const n = Number(cl);
    return { state: n === 0 ? 'done' : 'length', left: n };
  }
  return { state: 'close', left: 0 };
}
