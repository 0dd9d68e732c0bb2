// ContainerdTarget: images into containerd's content store and snapshotter over its gRPC API, as a Kubernetes
// node's kubelet finds them. Everything is written under one lease (GC cannot take half an import), blobs resume
// by ref, layers of images for this host are unpacked into chain-ID snapshots, and image records come at commit.
import { hex, type Digest } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import type { OciIndex, OciManifest } from '../image/model.js';
import { hostPlatform, platformMatches } from '../image/platform.js';
import { childGcLabels, ContainerdClient, unpackLayers, type Descriptor, type Labels } from '../containerd/index.js';
import { EXIT, FerryError } from '../ui/errors.js';
import type { BlobOutcome, BlobToWrite, ImageTarget, ImageToPut, IndexToPut, LayerKeeper, LayerQuestion, NamedRef, PutImage, PutOptions, WantedLayer } from './target.js';
import { compressionOf, OCI_LAYER_TAR } from '../image/media-types.js';
import { decompress } from '../stream/decompress.js';
import { verified } from '../stream/hash.js';

/** The snapshotters tried, in order, when none is asked for: overlayfs, else native (any filesystem), as containerd's own default falls back. */
const PREFERRED_SNAPSHOTTERS = ['overlayfs', 'native'];
/** The exit code of a bundle that is damaged or lies: what it brought is worth nothing to a re-run. */
const BAD_BUNDLE_EXIT = EXIT.invalidBundle;

export interface ContainerdTargetOptions {
  /** The snapshotter to unpack into; undefined: overlayfs, or native where overlayfs did not load. */
  snapshotter?: string;
  /** Unpack layers of images for this host (true), or only store them (the kubelet unpacks on first use). */
  unpack?: boolean;
}

/** An image record to create at commit. */
interface ToName {
  name: string;
  target: Descriptor;
  imageId?: Digest;
}

export class ContainerdTarget implements ImageTarget {
  readonly reuse = 'blob';
  /** An image record is a name: an untagged image would be collected as soon as the lease ends. */
  readonly needsNames = true;
  readonly unpacksStored = true;
  private readonly base: ContainerdClient;
  private leased: Promise<ContainerdClient> | undefined;
  private chosen: Promise<string> | undefined;
  private readonly known = new Map<string, Promise<boolean>>();
  private readonly toName: ToName[] = [];

  constructor(
    client: ContainerdClient,
    private readonly opts: ContainerdTargetOptions = {},
  ) {
    this.base = client;
  }

  get description(): string {
    return `containerd at ${this.base.address} (namespace ${this.base.namespace})`;
  }

  get inventoryCommand(): string {
    return `ferry inventory --containerd ${this.base.address} --namespace ${this.base.namespace}`;
  }

  /** undefined: containerd keeps whole multi-platform indexes, as `ctr import --all-platforms` does. */
  async platform(): Promise<undefined> {
    return undefined;
  }

  /** Every layer as the bundle stores it: containerd reads zstd layers since 1.5. */
  layerForm(): 'stored' {
    return 'stored';
  }

  /** holds: the content store has the blob; its snapshot, if missing, is unpacked from it. */
  holds(layer: LayerQuestion, _names: readonly string[], signal?: AbortSignal): Promise<boolean> {
    return this.has(layer.digest, signal);
  }

  async writeBlob(blob: BlobToWrite, _names: readonly string[], signal?: AbortSignal): Promise<BlobOutcome[]> {
    const c = await this.client(signal);
    // One ref per digest: a write cut by a crash resumes under the same ref, where containerd's ingest ends.
    const outcome = await c.content.write(`ferry-${hex(blob.digest)}`, blob, (offset) => blob.open(offset), {}, signal);
    this.known.set(blob.digest, Promise.resolve(true));
    return [outcome];
  }

  async putImages(images: readonly ImageToPut[], indexes: readonly IndexToPut[], opts: PutOptions = {}): Promise<PutImage[]> {
    const { signal } = opts;
    const c = await this.client(signal);
    const host = hostPlatform();
    const out: PutImage[] = [];
    for (const img of images) {
      const doc = JSON.parse(img.manifest.bytes.toString('utf8')) as OciManifest;
      const had = await this.putDocument(c, img.manifest, [doc.config, ...doc.layers], signal);
      let unpacked = false;
      if (this.opts.unpack !== false && platformMatches(host, img.platform)) {
        const snapshotter = await this.snapshotter(signal);
        const layers = doc.layers.map((l, i) => ({ descriptor: descriptorOf(l), diffId: img.layers[i]!.diffId }));
        const r = await unpackLayers(c, snapshotter, layers, signal, { config: img.config.digest });
        unpacked = r.layers.includes('applied');
      }
      for (const name of img.names) this.toName.push({ name, target: descriptorOf(img.manifest), imageId: img.imageId });
      const sent = img.layers.filter((l) => !l.held).length;
      out.push({ imageId: img.imageId, status: had && !unpacked && sent === 0 ? 'present' : 'put', layersSent: sent, layersPresent: img.layers.length - sent });
    }
    for (const ix of indexes) {
      for (const a of ix.artifacts) {
        const doc = JSON.parse(a.manifest.bytes.toString('utf8')) as OciManifest;
        await this.putDocument(c, a.manifest, [doc.config, ...(doc.layers ?? [])], signal);
      }
      const doc = JSON.parse(ix.manifest.bytes.toString('utf8')) as OciIndex;
      await this.putDocument(c, ix.manifest, doc.manifests, signal);
      for (const name of ix.names) this.toName.push({ name, target: descriptorOf(ix.manifest) });
    }
    return out;
  }

  /** commit creates (or moves) the image records, then ends the lease: from now on the records keep everything. */
  async commit(signal?: AbortSignal): Promise<NamedRef[]> {
    const out: NamedRef[] = [];
    for (const t of this.toName) {
      await this.base.images.create({ name: t.name, target: t.target }, signal);
      out.push({ name: t.name, digest: t.target.digest as Digest, ...(t.imageId ? { imageId: t.imageId } : {}) });
    }
    this.toName.length = 0;
    if (this.leased) {
      const c = await this.leased;
      this.leased = undefined;
      if (c.lease) await this.base.leases.delete(c.lease, signal ? { signal } : {});
    }
    return out;
  }

  /**
   * abort names nothing. After an interruption or a target error the lease is left to expire (in a day, as
   * containerd's own clients do), so what arrived stays and a re-run resumes instead of sending it again. A bad
   * bundle would fail again: its lease goes now, and containerd's GC takes everything it brought.
   */
  /** layerTars reads reference layers back from the content store: the blob they are known as, else their uncompressed form. */
  async layerTars(wanted: readonly WantedLayer[], keeper: LayerKeeper, signal?: AbortSignal): Promise<void> {
    for (const w of wanted) {
      for (const blob of [w.blob, { digest: w.diffId as string as Digest, mediaType: OCI_LAYER_TAR, size: -1 }]) {
        const compression = blob && compressionOf(blob.mediaType);
        const info = blob && compression ? await this.base.content.info(blob.digest, signal) : undefined;
        if (!blob || !compression || !info || (blob.size >= 0 && info.size !== blob.size)) continue;
        const body = verified(this.base.content.read(blob.digest, signal), { digest: blob.digest, size: info.size, what: `content ${blob.digest}` });
        await keeper.put(w.diffId, decompress(body, compression, Number.MAX_SAFE_INTEGER));
        break;
      }
    }
  }

  async abort(reason?: unknown): Promise<void> {
    this.toName.length = 0;
    const leased = this.leased;
    this.leased = undefined;
    if (!leased || !(reason instanceof FerryError) || reason.exitCode !== BAD_BUNDLE_EXIT) return;
    const c = await leased.catch(() => undefined);
    if (c?.lease) await this.base.leases.delete(c.lease, { sync: true }).catch(() => undefined);
  }

  /** close ends the connection (and a lease left by an abort keeps running out on its own). */
  close(): void {
    this.base.close();
  }

  private has(digest: Digest, signal?: AbortSignal): Promise<boolean> {
    let p = this.known.get(digest);
    if (!p) {
      p = this.base.content.info(digest, signal).then((i) => i !== undefined);
      p.catch(() => this.known.delete(digest));
      this.known.set(digest, p);
    }
    return p;
  }

  /** client is the leased client, the lease made on first use. */
  private client(signal?: AbortSignal): Promise<ContainerdClient> {
    this.leased ??= this.base.leases.create({ 'ferry.dev/purpose': 'load' }, signal ? { signal } : {}).then((l) => this.base.withLease(l.id));
    this.leased.catch(() => (this.leased = undefined));
    return this.leased;
  }

  /** snapshotter is the one asked for, if containerd loaded it, else the first usable of PREFERRED_SNAPSHOTTERS. */
  private snapshotter(signal?: AbortSignal): Promise<string> {
    this.chosen ??= (async () => {
      const wanted = this.opts.snapshotter;
      const found = await this.base.introspection.usableSnapshotter(wanted ? [wanted] : PREFERRED_SNAPSHOTTERS, signal);
      if (found) return found;
      const loaded = (await this.base.introspection.snapshotters(signal)).filter((p) => !p.error).map((p) => p.id);
      throw new FerryError('USAGE', `${this.description} has no usable snapshotter ${wanted ? `"${wanted}"` : `among ${PREFERRED_SNAPSHOTTERS.join(', ')}`}`, {
        hint: loaded.length ? `pick one it loaded with --snapshotter: ${loaded.join(', ')}` : 'containerd loaded no snapshotter: see its log',
      });
    })();
    return this.chosen;
  }

  /**
   * putDocument stores a manifest or index with the labels that keep its children from containerd's GC; true when
   * containerd had it already (its labels are set again all the same: whoever wrote it may have left them out).
   */
  private async putDocument(c: ContainerdClient, doc: BlobDescriptor & { bytes: Buffer }, children: readonly { mediaType: string; digest: string }[], signal?: AbortSignal): Promise<boolean> {
    const labels: Labels = childGcLabels(children);
    const outcome = await c.content.write(`ferry-${hex(doc.digest)}`, doc, (offset) => once(doc.bytes.subarray(offset)), labels, signal);
    if (outcome === 'present' && Object.keys(labels).length) await c.content.updateLabels(doc.digest, labels, signal);
    this.known.set(doc.digest, Promise.resolve(true));
    return outcome === 'present';
  }
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

function descriptorOf(d: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: { ...d.annotations } } : {}) };
}
