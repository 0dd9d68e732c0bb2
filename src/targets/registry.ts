// RegistrySink: images into an OCI distribution registry. For each blob it asks whether the repository has
// it, mounts it from another repository of the same registry when it can, and uploads only the rest.
import type { Digest } from '../image/digest.js';
import type { RegistryClient } from '../registry/client.js';

export type BlobOutcome = 'present' | 'mounted' | 'uploaded';

export interface BlobToPush {
  digest: Digest;
  size: number;
  /** open streams the blob's bytes from `offset` (a resumed upload asks for the rest only). */
  open(offset: number): AsyncIterable<Buffer>;
}

export class RegistrySink {
  readonly client: RegistryClient;
  /** Repositories of this registry known to hold a blob: pushed or found there during this run. */
  private readonly holders = new Map<Digest, string>();

  constructor(client: RegistryClient) {
    this.client = client;
  }

  get registry(): string {
    return this.client.registry;
  }

  /** check says what pushing a blob would do, without writing anything (for --dry-run). */
  async check(repo: string, digest: Digest, signal?: AbortSignal): Promise<'present' | 'mount' | 'upload'> {
    if ((await this.client.hasBlob(repo, digest, signal)) !== undefined) return 'present';
    return this.holders.has(digest) ? 'mount' : 'upload';
  }

  /**
   * find says whether repo holds a blob, or one of the other repositories does (it is then mounted when pushed);
   * undefined when none of them has it.
   */
  async find(repo: string, digest: Digest, others: readonly string[], signal?: AbortSignal): Promise<'present' | 'mountable' | undefined> {
    if ((await this.client.hasBlob(repo, digest, signal)) !== undefined) return 'present';
    const known = this.holders.get(digest);
    if (known !== undefined && known !== repo) return 'mountable';
    for (const other of others) {
      if (other === repo) continue;
      if ((await this.client.hasBlob(other, digest, signal)) !== undefined) {
        this.holders.set(digest, other);
        return 'mountable';
      }
    }
    return undefined;
  }

  /** reuse makes a blob this push does not carry available in repo: already there, or mounted from where find saw it. */
  async reuse(repo: string, digest: Digest, signal?: AbortSignal): Promise<'present' | 'mounted' | undefined> {
    if ((await this.client.hasBlob(repo, digest, signal)) !== undefined) return 'present';
    const from = this.holders.get(digest);
    if (from !== undefined && from !== repo && (await this.client.mountBlob(repo, digest, from, signal))) return 'mounted';
    return undefined;
  }

  async pushBlob(repo: string, blob: BlobToPush, signal?: AbortSignal): Promise<BlobOutcome> {
    let outcome: BlobOutcome;
    const size = await this.client.hasBlob(repo, blob.digest, signal);
    const from = this.holders.get(blob.digest);
    if (size !== undefined) outcome = 'present';
    else if (from !== undefined && from !== repo && (await this.client.mountBlob(repo, blob.digest, from, signal))) outcome = 'mounted';
    else {
      await this.client.uploadBlob(repo, blob.digest, blob.size, blob.open, signal);
      outcome = 'uploaded';
    }
    if (!this.holders.has(blob.digest)) this.holders.set(blob.digest, repo);
    return outcome;
  }

  pushManifest(repo: string, ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<Digest> {
    return this.client.putManifest(repo, ref, bytes, mediaType, signal);
  }
}
