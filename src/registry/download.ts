// Blob downloads: one streamed GET, resumed with a Range request after a dropped connection, checked against its digest.
import type { Digest } from '../image/digest.js';
import { DigestMismatchError, Sha256Counter } from '../stream/hash.js';
import { repositoryScope } from './challenge.js';
import { isNetworkError, unreachable } from './errors.js';
import { discard, header, type RegistryTransport, type Response } from './http.js';
import { backoffDelay, isRetryableNetworkError, sleep } from './retry.js';

/**
 * openBlob asks for the blob and returns its bytes as they arrive; errors about the request itself (absent, refused) come
 * from the await, a short, long or wrong stream fails at its end with DigestMismatchError. Nothing is buffered.
 */
export async function openBlob(t: RegistryTransport, repo: string, digest: Digest, size: number | undefined, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
  const req = { method: 'GET' as const, url: `/v2/${repo}/blobs/${digest}`, scopes: [repositoryScope(repo, ['pull'])], idempotent: true, redirects: true, signal };
  const first = await t.request(req);
  if (first.status !== 200) throw await t.httpError(first, first.status === 404 ? `blob ${digest} not found in ${repo}` : `GET blob ${digest} in ${repo}`);
  const declared = Number(header(first, 'content-length') ?? NaN);
  const what = `blob ${digest} from ${t.registry}/${repo}`;
  if (size !== undefined && Number.isFinite(declared) && declared !== size) {
    discard(first);
    throw new DigestMismatchError(`${what} size`, `${size} bytes`, `${declared} bytes`);
  }
  const expected = size ?? (Number.isFinite(declared) ? declared : undefined);
  return stream(t, req, first, digest, expected, what);
}

async function* stream(
  t: RegistryTransport,
  req: Parameters<RegistryTransport['request']>[0],
  first: Response,
  digest: Digest,
  expected: number | undefined,
  what: string,
): AsyncGenerator<Buffer> {
  const h = new Sha256Counter();
  let res = first;
  let skip = 0;
  let resumes = 0;
  try {
    for (;;) {
      try {
        for await (const raw of res.body as AsyncIterable<Buffer>) {
          let chunk = raw;
          if (skip > 0) {
            const drop = Math.min(skip, chunk.length);
            skip -= drop;
            chunk = chunk.subarray(drop);
            if (chunk.length === 0) continue;
          }
          h.update(chunk);
          if (expected !== undefined && h.bytes > expected) throw new DigestMismatchError(`${what} is larger than its size`, `${expected} bytes`, `more than ${expected}`);
          yield chunk;
        }
        break;
      } catch (err) {
        if (!isRetryableNetworkError(err) || resumes + 1 >= t.attempts || req.signal?.aborted) throw isNetworkError(err) ? unreachable(t.registry, err, t.timeoutMs) : err;
        resumes++;
        discard(res);
        await sleep(backoffDelay(resumes, t.backoffMs), req.signal);
        // Continue where the bytes stopped; a registry that ignores Range sends it all again and we skip what we have.
        res = await t.request({ ...req, headers: { range: `bytes=${h.bytes}-` } });
        if (res.status === 206) {
          const start = /^bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1];
          if (start === undefined || Number(start) !== h.bytes) throw await t.httpError(res, `resuming ${what} at byte ${h.bytes}: it answered another range`);
          skip = 0;
        } else if (res.status === 200) {
          skip = h.bytes;
        } else {
          throw await t.httpError(res, `resuming ${what} at byte ${h.bytes}`);
        }
      }
    }
  } finally {
    discard(res);
  }
  if (expected !== undefined && h.bytes !== expected) throw new DigestMismatchError(`${what} is shorter than its size`, `${expected} bytes`, `${h.bytes} bytes`);
  const got = h.digest();
  if (got !== digest) throw new DigestMismatchError(`${what} digest`, digest, got);
}
