// SourceFeed: a source's layers, in the order it hands them over, into a target that stores layers itself (a bundle
// being written): kept blobs written byte for byte, uncompressed tars compressed, what a thin plan leaves out dropped.
import type { DeltaOffer } from '../bundle/writer.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { DiffId } from '../image/digest.js';
import { compressionOf } from '../image/media-types.js';
import type { LayerSink } from '../sources/source.js';
import { decompress } from '../stream/decompress.js';
import { Sha256Counter } from '../stream/hash.js';
import { Spool } from '../stream/spool.js';
import type { BlobToWrite, ImageTarget, IngestedLayer, LayerIngest } from '../targets/target.js';
import { FerryError } from '../ui/errors.js';
import type { ThinPlan } from './thin-plan.js';

/** A layer as it was stored (or found stored): for progress. */
export interface FedLayer {
  digest: string;
  size: number;
  uncompressedSize: number;
}

export class SourceFeed implements LayerSink {
  constructor(
    private readonly target: ImageTarget & LayerIngest,
    private readonly thin: ThinPlan,
    /** report is told of each layer stored, and (repeat) of each found stored already. */
    private readonly report: (layer: FedLayer, repeat: boolean) => void,
    /** read is told of the bytes sources hand over, as they pass. */
    private readonly read: (bytes: number) => void = () => undefined,
    /** A thin bundle's offer of deltas for the layers it stores (see delta-offer.ts). */
    private readonly delta?: DeltaOffer,
  ) {}

  has(diffId: DiffId): boolean {
    return this.target.heldLayer(diffId) !== undefined || this.thin.leavesOut(diffId);
  }

  wantsBlob(b: BlobDescriptor & { diffId: DiffId }): boolean {
    if (this.target.layerForm(b.mediaType) === 'stored') return !this.target.heldBlob(b.digest) && !this.thin.leavesOutBlob(b.digest);
    return !this.has(b.diffId);
  }

  async put(passing: AsyncIterable<Buffer>, info: { size: number }): Promise<DiffId> {
    const body = this.counted(passing);
    // A layer of the same size as one already held (stored from another save, taken from a killed run, or to stay
    // behind) is hashed first, parked in a spool: if it is that layer, it is not compressed again.
    if (this.target.heldLayerOfSize(info.size) || this.thin.layersOfSize(info.size).length) return this.putMaybeHeld(body);
    return this.took(await this.target.ingestLayer(body, this.keep, this.delta));
  }

  async putBlob(blob: BlobDescriptor & { diffId: DiffId }, passing: AsyncIterable<Buffer>): Promise<void> {
    const body = this.counted(passing);
    if (this.target.layerForm(blob.mediaType) === 'stored') {
      await this.target.writeBlob!(once(blob, body), []);
      this.report({ digest: blob.digest, size: blob.size, uncompressedSize: 0 }, false);
      return;
    }
    const l = await this.target.ingestLayer(decompress(body, compressionOf(blob.mediaType) ?? 'none', Number.MAX_SAFE_INTEGER), this.keep, this.delta);
    if (l.diffId !== blob.diffId) {
      throw new FerryError('RUNTIME', `layer ${blob.digest} decompresses to ${l.diffId}, but its image config says ${blob.diffId}`, {
        hint: 'the source holds a corrupt or altered image; nothing was written',
      });
    }
    this.took(l);
  }

  hasOpaque(digest: BlobDescriptor['digest']): boolean {
    return this.target.heldBlob(digest);
  }

  async putOpaque(blob: BlobDescriptor, body: AsyncIterable<Buffer>): Promise<void> {
    await this.target.writeBlob!(once(blob, body), []);
  }

  private async *counted(body: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
    for await (const chunk of body) {
      this.read(chunk.length);
      yield chunk;
    }
  }

  /** A layer that stays behind is compressed only to learn which one it was; then the plan names it. */
  private readonly keep = (d: DiffId): boolean => !this.thin.staysBehind(d);

  private took(l: IngestedLayer): DiffId {
    if (l.dropped) this.thin.passed(l.diffId, l.uncompressedSize);
    else this.report(l, l.repeat);
    return l.diffId;
  }

  private async putMaybeHeld(body: AsyncIterable<Buffer>): Promise<DiffId> {
    const spool = await Spool.create(this.target.spoolBeside);
    try {
      const h = new Sha256Counter();
      for await (const chunk of body) {
        h.update(chunk);
        await spool.write(chunk);
      }
      const d = h.digest() as string as DiffId;
      const held = this.target.heldLayer(d);
      if (held) {
        this.report(held, true);
        return d;
      }
      if (this.thin.leavesOut(d)) return d;
      return this.took(await this.target.ingestLayer(spool.read(), this.keep, this.delta));
    } finally {
      await spool.remove();
    }
  }
}

/** once is a blob whose bytes a source is handing over now: it can be opened once, from the start. */
function once(blob: BlobDescriptor & { diffId?: DiffId }, body: AsyncIterable<Buffer>): BlobToWrite {
  let opened = false;
  return {
    mediaType: blob.mediaType,
    digest: blob.digest,
    size: blob.size,
    ...(blob.diffId !== undefined ? { diffId: blob.diffId } : {}),
    open: (offset) => {
      if (opened || offset !== 0) throw new Error(`SourceFeed: ${blob.digest} is passing from its source and can be read once, from the start`);
      opened = true;
      return body;
    },
  };
}
