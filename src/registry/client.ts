// RegistryClient: the OCI distribution API of one registry — manifests, blobs, mounts, uploads, tags — with every pulled byte checked.
import { isSha256, sha256Of, type Digest } from '../image/digest.js';
import { MANIFEST_TYPES, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST } from '../image/media-types.js';
import { DigestMismatchError } from '../stream/hash.js';
import { FerryError, escapeControls } from '../ui/errors.js';
import { repositoryScope } from './challenge.js';
import { openBlob } from './download.js';
import { RegistryError, parseRegistryErrors } from './errors.js';
import { RegistryTransport, discard, header, readLimited, type Response } from './http.js';
import { backoffDelay, droppedConnection, sleep } from './retry.js';
import { uploadBlob } from './upload.js';

export interface RegistryOptions {
  /** credentials from --creds user:pass / --creds-file; they override the docker config */
  creds?: { username: string; password: string };
  /** allow plain HTTP and skip TLS verification for this host (--tls-verify=false / --insecure-registry HOST) */
  insecure?: boolean;
  /** docker config dir; default $DOCKER_CONFIG or ~/.docker */
  dockerConfig?: string;
  /** CA dir root as docker's; default /etc/docker/certs.d (env FERRY_CERTS_D overrides, for tests) */
  certsDir?: string;
  /** attempts for retryable failures, default 5; backoff base ms default 200 (tests may lower it) */
  retries?: number;
  backoffMs?: number;
  /** bytes per upload PATCH, default FERRY_REGISTRY_CHUNK_SIZE or 32 MiB: what a dropped connection can cost at most, on registries that resume */
  chunkSize?: number;
  /** seconds-long silence after which one attempt is given up (then retried): default FERRY_REGISTRY_TIMEOUT or 60 s */
  timeoutMs?: number;
}

export interface Manifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

const MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;
const DEFAULT_CHUNK = 32 * 1024 * 1024;

const REPO = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export class RegistryClient {
  readonly registry: string;
  private readonly t: RegistryTransport;
  private readonly chunkSize: number;

  constructor(registry: string, opts: RegistryOptions = {}) {
    this.registry = registry;
    this.t = new RegistryTransport(registry, opts);
    this.chunkSize = Math.max(1, opts.chunkSize ?? chunkSizeFromEnv() ?? DEFAULT_CHUNK);
  }

  /** ping checks that the registry answers GET /v2/ with our credentials. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.t.request({ method: 'GET', url: '/v2/', scopes: [], idempotent: true, signal });
    if (res.status !== 200) throw await this.t.httpError(res, 'GET /v2/');
    await res.body.dump();
  }

  /** getManifest fetches a manifest or index by tag or digest; its digest is computed here and must match the ref and the registry's header. */
  async getManifest(repo: string, ref: string, signal?: AbortSignal): Promise<Manifest> {
    checkRepo(repo);
    checkRef(ref);
    const what = `manifest ${this.name(repo, ref)}`;
    for (let attempt = 1; ; attempt++) {
      const res = await this.t.request({ method: 'GET', url: `/v2/${repo}/manifests/${ref}`, scopes: [pull(repo)], idempotent: true, headers: { accept: MANIFEST_TYPES.join(', ') }, signal });
      if (res.status === 404) throw await this.notFound(res, repo, ref);
      if (res.status !== 200) throw await this.t.httpError(res, `GET manifest ${this.name(repo, ref)}`);
      const contentType = header(res, 'content-type');
      if (/^application\/vnd\.docker\.distribution\.manifest\.v1\+/.test(contentType ?? '')) {
        discard(res);
        throw new FerryError('REGISTRY_ERROR', `registry ${this.registry} offers ${this.name(repo, ref)} only as a schema 1 manifest, which ferry does not read`, {
          hint: 'push the image again with a current docker or skopeo, which write schema 2 or OCI manifests',
        });
      }
      let bytes: Buffer;
      try {
        bytes = await readLimited(res, MAX_MANIFEST_BYTES, what);
      } catch (err) {
        // The answer began, then dropped or went silent past the timeout: ask again, as for a request that failed outright.
        if (attempt < this.t.attempts && droppedConnection(err) && !signal?.aborted) {
          await sleep(backoffDelay(attempt, this.t.backoffMs), signal);
          continue;
        }
        throw err;
      }
      const digest = sha256Of(bytes);
      if (isSha256(ref) && digest !== ref) throw new DigestMismatchError(`${what} digest`, ref, digest);
      const claimed = header(res, 'docker-content-digest');
      if (claimed !== undefined && claimed.startsWith('sha256:') && claimed !== digest) throw new DigestMismatchError(`${what} digest (Docker-Content-Digest)`, claimed, digest);
      return { bytes, mediaType: manifestMediaType(contentType, bytes), digest };
    }
  }

  /** headManifest says what a tag or digest points at without the body; undefined when absent. */
  async headManifest(repo: string, ref: string, signal?: AbortSignal): Promise<{ digest: Digest; mediaType: string; size: number } | undefined> {
    checkRepo(repo);
    checkRef(ref);
    const res = await this.t.request({ method: 'HEAD', url: `/v2/${repo}/manifests/${ref}`, scopes: [pull(repo)], idempotent: true, headers: { accept: MANIFEST_TYPES.join(', ') }, signal });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.t.httpError(res, `HEAD manifest ${this.name(repo, ref)}`);
    const claimed = header(res, 'docker-content-digest');
    const size = Number(header(res, 'content-length'));
    const type = header(res, 'content-type')?.split(';')[0]?.trim();
    if (claimed === undefined || !isSha256(claimed) || !Number.isFinite(size) || !type || !MANIFEST_TYPES.includes(type)) {
      // A registry that does not say enough in headers is asked for the manifest itself.
      const m = await this.getManifest(repo, ref, signal);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    }
    if (isSha256(ref) && claimed !== ref) throw new DigestMismatchError(`manifest ${this.name(repo, ref)} digest (Docker-Content-Digest)`, ref, claimed);
    return { digest: claimed as Digest, mediaType: type, size };
  }

  /** blob streams a blob as stored; the stream fails with DigestMismatchError at its end unless the bytes match digest (and size). */
  async blob(repo: string, digest: Digest, size?: number, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    checkRepo(repo);
    checkDigest(digest);
    return openBlob(this.t, repo, digest, size, signal);
  }

  /** hasBlob returns the blob's size when the repository holds it (-1 if the registry does not say), undefined when it does not. */
  async hasBlob(repo: string, digest: Digest, signal?: AbortSignal): Promise<number | undefined> {
    checkRepo(repo);
    checkDigest(digest);
    const res = await this.t.request({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scopes: [pull(repo)], idempotent: true, redirects: true, signal });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.t.httpError(res, `HEAD blob ${digest} in ${repo}`);
    const size = Number(header(res, 'content-length'));
    return Number.isFinite(size) ? size : -1;
  }

  /** mountBlob asks the registry to link a blob from another repository; false (and no session left open) when it would rather have it uploaded. */
  async mountBlob(repo: string, digest: Digest, fromRepo: string, signal?: AbortSignal): Promise<boolean> {
    checkRepo(repo);
    checkRepo(fromRepo);
    checkDigest(digest);
    const scopes = [repositoryScope(repo, ['pull', 'push']), pull(fromRepo)];
    const url = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const res = await this.t.request({ method: 'POST', url, scopes, idempotent: true, headers: { 'content-length': '0' }, signal });
    if (res.status === 201) {
      await res.body.dump();
      return true;
    }
    if (res.status !== 202) throw await this.t.httpError(res, `mounting ${digest} from ${fromRepo} into ${repo}`);
    await res.body.dump();
    const loc = header(res, 'location');
    if (loc) {
      // Abandoned sessions linger on the registry until it collects them; cancel ours now. Failing to is harmless.
      await this.t
        .request({ method: 'DELETE', url: new URL(loc, res.url).href, scopes, idempotent: true, signal })
        .then((r) => r.body.dump())
        .catch(() => undefined);
    }
    return false;
  }

  /**
   * uploadBlob streams a blob the registry lacks, never holding it in memory: open(offset) must yield the blob's bytes from
   * offset to its end, and is called again with the registry's offset after a failure. The registry checks digest and size.
   */
  async uploadBlob(repo: string, digest: Digest, size: number, open: (offset: number) => AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
    checkRepo(repo);
    checkDigest(digest);
    if (!Number.isSafeInteger(size) || size < 0) throw new FerryError('RUNTIME', `invalid blob size ${size} for ${digest}`);
    await uploadBlob(this.t, repo, digest, size, open, this.chunkSize, signal);
  }

  /** putManifest stores a manifest under a tag or its digest, after its blobs; returns its digest. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    checkRepo(repo);
    checkRef(ref);
    const digest = sha256Of(bytes);
    if (isSha256(ref) && ref !== digest) throw new DigestMismatchError(`manifest pushed as ${this.name(repo, ref)}`, ref, digest);
    if (bytes.length > MAX_MANIFEST_BYTES) throw new FerryError('RUNTIME', `manifest ${digest} is ${bytes.length} bytes; registries accept at most ${MAX_MANIFEST_BYTES}`);
    const res = await this.t.request({
      method: 'PUT',
      url: `/v2/${repo}/manifests/${ref}`,
      scopes: [repositoryScope(repo, ['pull', 'push'])],
      idempotent: true,
      headers: { 'content-type': mediaType },
      body: bytes,
      signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 204) throw await this.t.httpError(res, `PUT manifest ${this.name(repo, ref)}`);
    await res.body.dump();
    const stored = header(res, 'docker-content-digest');
    if (stored !== undefined && stored.startsWith('sha256:') && stored !== digest) {
      throw new FerryError('REGISTRY_ERROR', `registry ${this.registry} stored manifest ${this.name(repo, ref)} as ${escapeControls(stored)}, not ${digest}`);
    }
    return digest;
  }

  /** listTags returns every tag of a repository, page by page (Link rel="next"); [] for a repository the registry does not know. */
  listTags(repo: string, signal?: AbortSignal, pageSize?: number): Promise<string[]> {
    checkRepo(repo);
    return this.listPaged(`/v2/${repo}/tags/list${pageSize ? `?n=${pageSize}` : ''}`, 'tags', [pull(repo)], `the tag list of ${repo}`, signal);
  }

  /** listRepositories returns every repository the registry's catalog lists, page by page. */
  listRepositories(signal?: AbortSignal, pageSize?: number): Promise<string[]> {
    return this.listPaged(`/v2/_catalog${pageSize ? `?n=${pageSize}` : ''}`, 'repositories', ['registry:catalog:*'], 'the repository catalog', signal);
  }

  private async listPaged(first: string, key: 'tags' | 'repositories', scopes: string[], what: string, signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    let url = first;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.t.request({ method: 'GET', url, scopes, idempotent: true, signal });
      if (res.status === 404 && page === 0 && key === 'tags') {
        await res.body.dump();
        return [];
      }
      if (res.status !== 200) throw await this.t.httpError(res, `listing ${what}`);
      const body = await readLimited(res, MAX_TAG_PAGE_BYTES, what);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new FerryError('REGISTRY_ERROR', `registry ${this.registry}: ${what} is not JSON`);
      }
      const items = parsed[key];
      if (Array.isArray(items)) for (const t of items) if (typeof t === 'string') out.push(t);
      const next = nextLink(header(res, 'link'));
      if (next === undefined) return out;
      const nextUrl = new URL(next, res.url).href;
      if (nextUrl === new URL(url, res.url).href) return out;
      url = nextUrl;
    }
    throw new FerryError('REGISTRY_ERROR', `registry ${this.registry}: ${what} runs past ${MAX_TAG_PAGES} pages`);
  }

  /** close releases the client's connections. */
  async close(): Promise<void> {
    await this.t.close();
  }

  private name(repo: string, ref: string): string {
    return `${this.registry}/${repo}${isSha256(ref) ? '@' : ':'}${ref}`;
  }

  private async notFound(res: Response, repo: string, ref: string): Promise<RegistryError> {
    const { summary, codes } = parseRegistryErrors(await readLimited(res, 65536, 'answer').then((b) => b.toString('utf8')).catch(() => ''));
    return new RegistryError('IMAGE_NOT_FOUND', `image ${this.name(repo, ref)} not found${summary ? ` (${summary})` : ''}`, 404, codes, {
      hint: 'check the repository name and the tag or digest',
    });
  }
}

/** chunkSizeFromEnv reads FERRY_REGISTRY_CHUNK_SIZE (bytes per upload PATCH); undefined when unset. */
function chunkSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.FERRY_REGISTRY_CHUNK_SIZE?.trim();
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new FerryError('USAGE', `FERRY_REGISTRY_CHUNK_SIZE must be a whole number of bytes above 0, not "${escapeControls(v).slice(0, 50)}"`);
  return n;
}

function pull(repo: string): string {
  return repositoryScope(repo, ['pull']);
}

/** manifestMediaType trusts a Content-Type that names a manifest type, else the document's own mediaType, else its shape. */
function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  if (ct && MANIFEST_TYPES.includes(ct)) return ct;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
    return Array.isArray(doc.manifests) ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return ct ?? 'application/octet-stream';
  }
}

/** nextLink finds the rel="next" target in a Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?/i.test(m[2] ?? '')) return m[1];
  }
  return undefined;
}

function checkRepo(repo: string): void {
  if (!REPO.test(repo) || repo.length > 255) throw new FerryError('USAGE', `invalid repository name "${escapeControls(repo).slice(0, 300)}"`);
}

function checkRef(ref: string): void {
  if (!TAG.test(ref) && !isSha256(ref)) throw new FerryError('USAGE', `invalid tag or digest "${escapeControls(ref).slice(0, 300)}"`);
}

function checkDigest(d: string): void {
  if (!isSha256(d)) throw new FerryError('USAGE', `invalid digest "${escapeControls(d).slice(0, 300)}"`);
}
