// containerd's content store: what it holds (info, list), writing a blob (content-write.ts), labels, aborting a write.
import { isNotFound, type Rpc } from './rpc.js';
import { writeContent, type OpenFrom, type WriteResult, type WriteTarget } from './content-write.js';
import type { ContentInfo, Labels } from './types.js';
import { collect } from '../stream/hash.js';

const CONTENT = 'containerd.services.content.v1.Content';

interface WireInfo {
  digest: string;
  size: number;
  labels: Labels;
}

export interface WriteStatus {
  ref: string;
  offset: number;
  total: number;
  expected: string;
}

const toInfo = (i: WireInfo): ContentInfo => ({ digest: i.digest, size: i.size, labels: { ...i.labels } });

export class ContentService {
  constructor(private readonly rpc: Rpc) {}

  /** info is undefined for a digest containerd does not hold (in this namespace). */
  async info(digest: string, signal?: AbortSignal): Promise<ContentInfo | undefined> {
    try {
      const res = await this.rpc.unary<{ info: WireInfo }>(CONTENT, 'Info', { digest }, `content info ${digest}`, signal);
      return toInfo(res.info);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** list returns every blob in the namespace; filters use containerd's syntax (e.g. `labels."k"==v`). */
  async list(filters: readonly string[] = [], signal?: AbortSignal): Promise<ContentInfo[]> {
    const out: ContentInfo[] = [];
    for await (const page of this.rpc.serverStream<{ info: WireInfo[] }>(CONTENT, 'List', { filters }, 'content list', signal)) {
      for (const i of page.info) out.push(toInfo(i));
    }
    return out;
  }

  /**
   * write stores a blob under ref (a name for the in-progress write; the same ref resumes a cut write).
   * 'present' when containerd already has the digest. The labels go on the committed blob.
   */
  write(ref: string, target: WriteTarget, open: OpenFrom, labels: Labels = {}, signal?: AbortSignal): Promise<WriteResult> {
    return writeContent(this.rpc, ref, target, open, labels, signal);
  }

  /**
   * readSmall returns a small blob whole (a manifest, an index, a config), refusing one larger than max bytes:
   * what containerd claims to hold is checked against its digest by the caller, not trusted.
   */
  /** read streams a blob whole, as containerd holds it (the caller checks it against its digest). */
  read(digest: string, signal?: AbortSignal): AsyncIterable<Buffer> {
    return dataOf(this.rpc.serverStream<{ data: Buffer }>(CONTENT, 'Read', { digest, offset: 0, size: 0 }, `content read ${digest}`, signal));
  }

  async readSmall(digest: string, max: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    const info = await this.info(digest, signal);
    if (!info) return undefined;
    if (info.size > max) throw new RangeError(`${digest} is ${info.size} bytes, more than the ${max} a document may have`);
    const pages = this.rpc.serverStream<{ data: Buffer }>(CONTENT, 'Read', { digest, offset: 0, size: 0 }, `content read ${digest}`, signal);
    return collect(dataOf(pages), max);
  }

  /** updateLabels sets (or, with an empty value, removes) the given labels and leaves the others alone. */
  async updateLabels(digest: string, labels: Labels, signal?: AbortSignal): Promise<ContentInfo> {
    const paths = Object.keys(labels).map((k) => `labels.${k}`);
    const res = await this.rpc.unary<{ info: WireInfo }>(CONTENT, 'Update', { info: { digest, labels }, updateMask: { paths } }, `content update ${digest}`, signal);
    return toInfo(res.info);
  }

  /** status is the in-progress write under ref, undefined if there is none. */
  async status(ref: string, signal?: AbortSignal): Promise<WriteStatus | undefined> {
    try {
      const res = await this.rpc.unary<{ status: WriteStatus | null }>(CONTENT, 'Status', { ref }, `content status ${ref}`, signal);
      return res.status ? { ref: res.status.ref, offset: res.status.offset, total: res.status.total, expected: res.status.expected } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** abort drops an in-progress write and its bytes; absent refs are not an error. */
  async abort(ref: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.rpc.unary<object>(CONTENT, 'Abort', { ref }, `content abort ${ref}`, signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

async function* dataOf(pages: AsyncIterable<{ data: Buffer }>): AsyncGenerator<Buffer> {
  for await (const page of pages) yield page.data;
}
