// Blob uploads: a session, PATCHes of streamed chunks, a closing PUT; after a failure it asks the registry what it holds and goes on from there.
import type { Digest } from '../image/digest.js';
import { FerryError } from '../ui/errors.js';
import { repositoryScope } from './challenge.js';
import { header, type RegistryTransport, type Response } from './http.js';
import { backoffDelay, droppedConnection, isRetryableStatus, retryAfterMs, sleep } from './retry.js';

interface Session {
  /** absolute upload URL, as the registry last gave it */
  url: string;
  /** bytes the registry holds */
  offset: number;
}

/**
 * uploadBlob streams size bytes from open(0) in chunks of chunkSize. When a PATCH drops, answers 5xx/429/416, or the
 * registry says it lost the session, it asks
 * the upload URL for the Range the registry holds and calls open(offset) to continue; a registry that has lost or refuses
 * the session gets a fresh one from offset 0. The registry checks the digest when the upload closes.
 */
export async function uploadBlob(
  t: RegistryTransport,
  repo: string,
  digest: Digest,
  size: number,
  open: (offset: number) => AsyncIterable<Buffer>,
  chunkSize: number,
  signal?: AbortSignal,
): Promise<void> {
  const scopes = [repositoryScope(repo, ['pull', 'push'])];
  const cursor = new Cursor(open, size);
  const what = `upload of ${digest} to ${repo}`;
  try {
    let session = await start(t, repo, scopes, what, signal);
    let failures = 0;
    for (;;) {
      let res: Response | undefined;
      let failure: unknown;
      const offset = session.offset;
      const closing = offset >= size;
      try {
        if (!closing) {
          const len = Math.min(chunkSize, size - offset);
          res = await t.request({
            method: 'PATCH',
            url: session.url,
            scopes,
            idempotent: false,
            signal,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(len), 'content-range': `${offset}-${offset + len - 1}` },
            body: () => cursor.take(offset, len),
          });
          if (res.status === 202) {
            session = advanced(res, session, offset + len);
            failures = 0;
            continue;
          }
        } else {
          await cursor.finish();
          res = await t.request({ method: 'PUT', url: withDigest(session.url, digest), scopes, idempotent: false, slowAnswer: true, signal, headers: { 'content-length': '0' } });
          if (res.status === 201 || res.status === 204) {
            await res.body.dump();
            return;
          }
        }
      } catch (err) {
        if (!droppedConnection(err)) throw err;
        failure = err;
      }
      const wait = res ? retryAfterMs(res.headers['retry-after']) : undefined;
      if (res) {
        const err = await t.httpError(res, `${closing ? 'PUT' : 'PATCH'} ${what}`, failures + 1);
        // A session the registry lost or no longer trusts is worth a fresh start; other refusals are final.
        const lost = err.registryCodes.includes('BLOB_UPLOAD_UNKNOWN') || err.registryCodes.includes('BLOB_UPLOAD_INVALID');
        if (!isRetryableStatus(res.status) && res.status !== 416 && !lost) throw err;
        failure = err;
      }
      if (++failures >= t.attempts) throw failure;
      await sleep(wait ?? backoffDelay(failures, t.backoffMs), signal);
      // The closing PUT may have landed even though its answer was lost.
      if (closing && (await exists(t, repo, digest, size, scopes, signal))) return;
      session = await resume(t, repo, session, scopes, what, signal);
    }
  } finally {
    await cursor.close();
  }
}

async function start(t: RegistryTransport, repo: string, scopes: string[], what: string, signal?: AbortSignal): Promise<Session> {
  const res = await t.request({ method: 'POST', url: `/v2/${repo}/blobs/uploads/`, scopes, idempotent: true, signal, headers: { 'content-length': '0' } });
  if (res.status !== 202) throw await t.httpError(res, `starting ${what}`);
  await res.body.dump();
  const loc = header(res, 'location');
  if (!loc) throw new FerryError('REGISTRY_ERROR', `registry ${t.registry}: starting ${what}: no Location for the upload`);
  return { url: new URL(loc, res.url).href, offset: 0 };
}

/** resume learns from the registry how much of the upload it holds; a session it no longer knows is started again. */
async function resume(t: RegistryTransport, repo: string, s: Session, scopes: string[], what: string, signal?: AbortSignal): Promise<Session> {
  const res = await t.request({ method: 'GET', url: s.url, scopes, idempotent: true, signal });
  if (res.status === 204 || res.status === 200) {
    await res.body.dump();
    const held = rangeEnd(res);
    const loc = header(res, 'location');
    return { url: loc ? new URL(loc, res.url).href : s.url, offset: held ?? 0 };
  }
  await res.body.dump();
  return start(t, repo, scopes, what, signal);
}

async function exists(t: RegistryTransport, repo: string, digest: Digest, size: number, scopes: string[], signal?: AbortSignal): Promise<boolean> {
  const res = await t.request({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scopes, idempotent: true, redirects: true, signal });
  await res.body.dump();
  return res.status === 200 && Number(header(res, 'content-length') ?? size) === size;
}

function advanced(res: Response, s: Session, expected: number): Session {
  void res.body.dump();
  const loc = header(res, 'location');
  const held = rangeEnd(res);
  if (held !== undefined && held > expected) throw new FerryError('REGISTRY_ERROR', `registry ${res.url.host} claims ${held} bytes of an upload after ${expected} were sent`);
  return { url: loc ? new URL(loc, res.url).href : s.url, offset: held ?? expected };
}

/**
 * rangeEnd reads `Range: 0-N` (or `bytes=0-N`) as N+1 bytes held. distribution answers `0-0` for an empty upload, so
 * `0-0` counts as nothing held: at worst one byte is sent again to a registry that then refuses the mismatch.
 */
function rangeEnd(res: Response): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec((header(res, 'range') ?? '').trim());
  if (!m) return undefined;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

function withDigest(url: string, digest: Digest): string {
  return `${url}${url.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** Cursor hands out consecutive slices of one open() stream; a slice at any other offset, or after an interrupted one, reopens it there. */
class Cursor {
  private it: AsyncIterator<Buffer> | undefined;
  private pos = 0;
  private rest: Buffer | undefined;
  private clean = false;

  constructor(
    private readonly open: (offset: number) => AsyncIterable<Buffer>,
    private readonly size: number,
  ) {}

  async *take(offset: number, len: number): AsyncGenerator<Buffer> {
    if (!this.it || !this.clean || this.pos !== offset) {
      await this.close();
      this.it = this.open(offset)[Symbol.asyncIterator]();
      this.pos = offset;
    }
    this.clean = false;
    let left = len;
    while (left > 0) {
      let buf = this.rest;
      this.rest = undefined;
      if (!buf) {
        const r = await this.it.next();
        if (r.done) throw new FerryError('RUNTIME', `blob source ended at byte ${this.pos} of ${this.size}`);
        buf = r.value;
      }
      if (buf.length > left) {
        this.rest = buf.subarray(left);
        buf = buf.subarray(0, left);
      }
      left -= buf.length;
      this.pos += buf.length;
      yield buf;
    }
    this.clean = true;
  }

  /**
   * finish asks a stream read to its size for its end before the upload is closed: a source that checks what it
   * passed on as it ends (a layer's diffID and tar entries) fails the upload then, instead of after the registry took it.
   */
  async finish(): Promise<void> {
    if (!this.it || !this.clean || this.pos !== this.size) return;
    this.clean = false;
    const r = this.rest?.length ? { done: false } : await this.it.next();
    if (!r.done) throw new FerryError('RUNTIME', `blob source holds more than its ${this.size} bytes`);
  }

  async close(): Promise<void> {
    const it = this.it;
    this.it = undefined;
    this.rest = undefined;
    this.clean = false;
    await it?.return?.().catch(() => undefined);
  }
}
