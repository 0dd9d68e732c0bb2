// The read side of the OCI distribution API over a ServedSet: /v2/, manifests and blobs (GET, HEAD, ranges), tags
// and catalog with pagination, referrers; anything that writes is refused with the API's own error. Names and
// digests are matched against maps, never turned into paths, so no request can reach outside the bundles.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSha256 } from '../image/digest.js';
import { BlobFault, type BlobSource } from './blob-source.js';
import { parseRange } from './range.js';
import type { Referrers } from './referrers.js';
import type { ServedBlob, ServedRepository, ServedSet } from './served-set.js';

/** The distribution spec's repository name grammar (path components separated by /). */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const ROUTE = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/([^/]+)$/;

type ErrorCode = 'UNAUTHORIZED' | 'NAME_UNKNOWN' | 'NAME_INVALID' | 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'DIGEST_INVALID' | 'TAG_INVALID' | 'UNSUPPORTED' | 'PAGINATION_NUMBER_INVALID' | 'UNKNOWN';

export function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, head = false): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message }] }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length, 'docker-distribution-api-version': 'registry/2.0' });
  res.end(head ? undefined : body);
}

export class DistributionApi {
  constructor(
    private readonly set: ServedSet,
    private readonly source: BlobSource,
    private readonly referrers: Referrers,
  ) {}

  /** handle answers one request; it never throws (a failure is an error response, or a dropped connection mid-body). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (err) {
      if (res.headersSent) res.destroy();
      else if (err instanceof BlobFault) sendError(res, 500, 'UNKNOWN', err.message);
      else sendError(res, 500, 'UNKNOWN', 'internal error');
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://serve.invalid');
    const path = url.pathname;
    const head = req.method === 'HEAD';
    if (!path.startsWith('/v2/') && path !== '/v2') return sendError(res, 404, 'UNSUPPORTED', 'not a distribution API path', head);
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      return sendError(res, 405, 'UNSUPPORTED', 'ferry serve is read-only: nothing can be pushed or deleted');
    }
    if (path === '/v2/' || path === '/v2') return this.json(res, 200, {}, head);
    if (path === '/v2/_catalog') return this.catalog(url, res, head);
    const m = ROUTE.exec(path);
    if (!m) return sendError(res, 404, 'UNSUPPORTED', 'no such API endpoint', head);
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    if (!NAME.test(name) || name.length > 255) return sendError(res, 400, 'NAME_INVALID', 'invalid repository name', head);
    const repo = this.set.repository(name, url.searchParams.get('ns') ?? undefined);
    if (!repo) return sendError(res, 404, 'NAME_UNKNOWN', `repository ${name} is not served here`, head);
    if (kind === 'tags') {
      if (ref !== 'list') return sendError(res, 404, 'UNSUPPORTED', 'no such API endpoint', head);
      return this.tags(repo, url, res, head);
    }
    if (kind === 'manifests') return this.manifest(repo, ref, req, res, head);
    if (!isSha256(ref)) return sendError(res, 400, 'DIGEST_INVALID', `${ref} is not a sha256 digest`, head);
    if (kind === 'referrers') return this.json(res, 200, this.referrers.of(ref, url.searchParams.get('artifactType') ?? undefined), head, 'application/vnd.oci.image.index.v1+json', this.referrers.filtered(url) ? { 'oci-filters-applied': 'artifactType' } : {});
    return this.blob(ref, req, res, head);
  }

  private async manifest(repo: ServedRepository, ref: string, req: IncomingMessage, res: ServerResponse, head: boolean): Promise<void> {
    let digest: string | undefined;
    if (isSha256(ref)) digest = repo.manifests.has(ref as never) ? ref : undefined;
    else if (TAG.test(ref)) digest = repo.tags.get(ref);
    else return sendError(res, 400, 'TAG_INVALID', `${ref} is neither a tag nor a digest`, head);
    const blob = digest ? this.set.blob(digest) : undefined;
    if (!blob) return sendError(res, 404, 'MANIFEST_UNKNOWN', `${repo.path}:${ref} is not served here`, head);
    if (!accepts(req.headers.accept, blob.mediaType)) return sendError(res, 404, 'MANIFEST_UNKNOWN', `${repo.path}:${ref} is stored as ${blob.mediaType}, which the client does not accept`, head);
    const bytes = await this.source.manifest(blob);
    res.writeHead(200, { 'content-type': blob.mediaType, 'content-length': bytes.length, 'docker-content-digest': blob.digest, etag: `"${blob.digest}"`, 'docker-distribution-api-version': 'registry/2.0' });
    res.end(head ? undefined : bytes);
  }

  private async blob(digest: string, req: IncomingMessage, res: ServerResponse, head: boolean): Promise<void> {
    const blob = this.set.blob(digest);
    if (!blob) return sendError(res, 404, 'BLOB_UNKNOWN', `blob ${digest} is not served here`, head);
    const common = { 'docker-content-digest': blob.digest, etag: `"${blob.digest}"`, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', 'docker-distribution-api-version': 'registry/2.0' };
    if (head) {
      res.writeHead(200, { ...common, 'content-length': blob.size });
      return void res.end();
    }
    const range = parseRange(req.headers.range, blob.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${blob.size}`, 'docker-distribution-api-version': 'registry/2.0' });
      return void res.end();
    }
    if (range) {
      // A range of a blob not yet checked cannot be checked as it passes: the whole blob is hashed first.
      await this.source.ready(blob);
      const [start, end] = range;
      res.writeHead(206, { ...common, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${blob.size}` });
      return send(res, () => this.source.send(res, blob, start, end));
    }
    const checked = await this.source.checked(blob);
    res.writeHead(200, { ...common, 'content-length': blob.size });
    await send(res, () => this.source.send(res, blob, 0, blob.size - 1, !checked));
  }

  private catalog(url: URL, res: ServerResponse, head: boolean): void {
    const page = paginate(this.set.repositoryPaths(), url);
    if (typeof page === 'string') return sendError(res, 400, 'PAGINATION_NUMBER_INVALID', page, head);
    if (page.next) res.setHeader('link', `</v2/_catalog?last=${encodeURIComponent(page.next)}&n=${page.n}>; rel="next"`);
    this.json(res, 200, { repositories: page.items }, head);
  }

  private tags(repo: ServedRepository, url: URL, res: ServerResponse, head: boolean): void {
    const page = paginate([...repo.tags.keys()].sort(), url);
    if (typeof page === 'string') return sendError(res, 400, 'PAGINATION_NUMBER_INVALID', page, head);
    if (page.next) res.setHeader('link', `</v2/${repo.path}/tags/list?last=${encodeURIComponent(page.next)}&n=${page.n}>; rel="next"`);
    this.json(res, 200, { name: repo.path, tags: page.items }, head);
  }

  private json(res: ServerResponse, status: number, doc: unknown, head: boolean, type = 'application/json', extra: Record<string, string> = {}): void {
    const body = Buffer.from(JSON.stringify(doc));
    res.writeHead(status, { 'content-type': type, 'content-length': body.length, 'docker-distribution-api-version': 'registry/2.0', ...extra });
    res.end(head ? undefined : body);
  }
}

/** send runs a blob's sending; a client that goes away ends it, and a source that fails drops the connection short. */
async function send(res: ServerResponse, sending: () => Promise<void>): Promise<void> {
  try {
    await sending();
  } catch {
    res.destroy();
  }
}

/** accepts says whether an Accept header takes a media type (no header, or a wildcard, takes anything). */
function accepts(header: string | undefined, mediaType: string): boolean {
  if (!header) return true;
  const types = header.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  return types.some((t) => t === '*/*' || t === mediaType || t === '');
}

/** paginate applies the API's n and last: items after `last`, at most n; next is the last item when more follow. */
function paginate(all: readonly string[], url: URL): { items: string[]; next?: string; n: number } | string {
  const nRaw = url.searchParams.get('n');
  const n = nRaw === null ? all.length : Number(nRaw);
  if (!Number.isSafeInteger(n) || n < 0) return `n=${nRaw} is not a count`;
  const last = url.searchParams.get('last');
  const from = last === null ? 0 : all.findIndex((x) => x > last);
  const rest = from < 0 ? [] : all.slice(from);
  const items = rest.slice(0, n);
  return { items, n, ...(rest.length > n && items.length ? { next: items.at(-1)! } : {}) };
}
