// The target contract, checked with a fake target that records every call: a target is asked what it holds before
// anything moves, receives only what it lacks (in the form it asked for), gets images only after their blobs,
// names nothing before commit, and is aborted (never committed) when the copy fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BundleReader } from '../src/bundle/reader.js';
import type { OciManifest } from '../src/image/model.js';
import { parseRetagRule } from '../src/image/retag.js';
import type { BlobOutcome, BlobToWrite, ImageTarget, ImageToPut, IndexToPut, LayerForm, LayerQuestion, NamedRef, PutImage, PutOptions } from '../src/targets/target.js';
import { copyBundles } from '../src/transfer/copy.js';
import { packImages } from '../src/transfer/pack.js';
import { openSource, type Transport } from '../src/sources/open.js';
import type { DiffId, Digest } from '../src/image/digest.js';
import type { IngestedLayer, LayerIngest, StoredLayerInfo } from '../src/targets/target.js';
import { addHave } from '../src/sync/have.js';
import { planIncremental } from '../src/sync/plan.js';
import { TargetState } from '../src/sync/target-state.js';
import { FerryError } from '../src/ui/errors.js';
import { ferry } from './helpers/ferry.js';
import { writeSaveArchive } from './helpers/save-archive.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function bytesOf(src: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

type Call = { kind: 'holds'; digest: string } | { kind: 'write'; digest: string } | { kind: 'put'; images: ImageToPut[] } | { kind: 'commit' } | { kind: 'abort' };

/** RecordingTarget keeps every call; it checks each blob it is given against its digest, and each tar against its diffID. */
class RecordingTarget implements ImageTarget {
  readonly description = 'the recording target';
  readonly inventoryCommand = 'ferry inventory --recording';
  readonly calls: Call[] = [];
  readonly blobs = new Map<string, Buffer>();
  readonly tars = new Map<string, Buffer>();
  writeBlob?: (blob: BlobToWrite, names: readonly string[], signal?: AbortSignal) => Promise<BlobOutcome[]>;

  constructor(
    readonly reuse: 'chain' | 'blob',
    private readonly form: LayerForm,
    private readonly held: ReadonlySet<string>,
    private readonly failWriteAt?: number,
  ) {
    if (form !== 'uncompressed') this.writeBlob = (b) => this.write(b);
  }

  readonly needsNames = false;

  async platform(): Promise<undefined> {
    return undefined;
  }

  layerForm(): LayerForm {
    return this.form;
  }

  async holds(layer: LayerQuestion): Promise<boolean> {
    this.calls.push({ kind: 'holds', digest: layer.digest });
    return this.held.has(this.reuse === 'chain' ? layer.chainId : layer.digest);
  }

  private async write(blob: BlobToWrite): Promise<BlobOutcome[]> {
    this.calls.push({ kind: 'write', digest: blob.digest });
    if (this.failWriteAt !== undefined && this.calls.filter((c) => c.kind === 'write').length === this.failWriteAt) throw new Error('the recording target refused this blob');
    if (this.blobs.has(blob.digest)) return ['present'];
    const bytes = await bytesOf(blob.open(0));
    assert.equal(sha(bytes), blob.digest, 'a blob arrives as its digest says');
    assert.equal(bytes.length, blob.size);
    this.blobs.set(blob.digest, bytes);
    return ['written'];
  }

  async putImages(images: readonly ImageToPut[], _indexes: readonly IndexToPut[], opts: PutOptions = {}): Promise<PutImage[]> {
    this.calls.push({ kind: 'put', images: [...images] });
    for (const img of images) {
      for (const l of img.layers) {
        if (l.held || this.form !== 'uncompressed') continue;
        const tar = await bytesOf(l.tar());
        assert.equal(sha(tar), l.diffId, 'a tar arrives as its diffID says');
        this.tars.set(l.diffId, tar);
        opts.onLayer?.(l.diffId);
      }
    }
    return images.map((i) => ({ imageId: i.imageId, status: 'put', layersSent: i.layers.filter((l) => !l.held).length, layersPresent: i.layers.filter((l) => l.held).length }));
  }

  async commit(): Promise<NamedRef[]> {
    this.calls.push({ kind: 'commit' });
    const put = this.calls.flatMap((c) => (c.kind === 'put' ? c.images : []));
    return put.flatMap((i) => i.names.map((name) => ({ name, digest: i.manifest.digest, imageId: i.imageId })));
  }

  async abort(): Promise<void> {
    this.calls.push({ kind: 'abort' });
  }

  kinds(): string[] {
    return this.calls.map((c) => c.kind);
  }

  written(): string[] {
    return this.calls.flatMap((c) => (c.kind === 'write' ? [c.digest] : []));
  }
}

describe('the target contract, through a recording target', () => {
  let dir: string;
  let full: BundleReader;
  let thin: BundleReader;
  let base: { diffId: string; digest: string };
  let chainOfBase: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-contract-'));
    const baseFiles = { 'etc/os-release': 'NAME=contract\n', 'bin/tool': 'x'.repeat(70_000) };
    await writeSaveArchive(join(dir, 'week1.tar'), [
      { tag: 'contract/app:1', layers: [baseFiles, { 'app/main': 'app one\n' }] },
      { tag: 'contract/tool:1', layers: [baseFiles, { 'tool/main': 'tool one\n' }] },
    ]);
    await writeSaveArchive(join(dir, 'week2.tar'), [{ tag: 'contract/app:2', layers: [baseFiles, { 'app/main': 'app two\n' }] }]);
    for (const [args, name] of [
      [['docker-archive:' + join(dir, 'week1.tar')], 'full'],
      [['docker-archive:' + join(dir, 'week2.tar'), '--since', join(dir, 'full.ferry.tar')], 'thin'],
    ] as const) {
      const run = await ferry(['pack', ...args, '-o', join(dir, `${name}.ferry.tar`)]);
      assert.equal(run.code, 0, run.stderr);
    }
    full = await BundleReader.open(join(dir, 'full.ferry.tar'));
    thin = await BundleReader.open(join(dir, 'thin.ferry.tar'));
    const l = full.index.images[0]!.layers[0]!;
    base = { diffId: l.diffId, digest: l.digest };
    chainOfBase = l.diffId;
    assert.equal(thin.index.reliesOn.length, 1, 'the thin bundle relies on the base layer');
  });

  after(async () => {
    await full?.close();
    await thin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a blob target is asked first, gets every blob it lacks once as stored, images after their blobs, and commit last', async () => {
    const t = new RecordingTarget('blob', 'stored', new Set());
    const r = await copyBundles([full], t, { verb: 'push', retag: [parseRetagRule('contract/=mirror/')] });
    const kinds = t.kinds();
    assert.ok(kinds.lastIndexOf('holds') < kinds.indexOf('write'), `every question before the first write: ${kinds.join(' ')}`);
    assert.ok(kinds.lastIndexOf('write') < kinds.indexOf('put'), 'images are put after their blobs');
    assert.deepEqual(kinds.slice(-1), ['commit']);
    assert.equal(kinds.filter((k) => k === 'commit').length, 1);
    assert.ok(!kinds.includes('abort'));
    const expected = new Set([...full.index.images.flatMap((i) => [...i.layers.map((l) => l.digest), i.config.digest])]);
    assert.deepEqual(new Set(t.blobs.keys()), expected, 'every layer and config, as the bundle stores them');
    assert.deepEqual(r.named.map((n) => n.name).sort(), ['docker.io/mirror/app:1', 'docker.io/mirror/tool:1'], 'names come from commit, retag rules applied');
  });

  it('a retag rule that renames nothing: refused (USAGE, exit 2) before the target is asked anything, for every target kind', async () => {
    for (const [reuse, form] of [['chain', 'uncompressed'], ['blob', 'stored']] as const) {
      const t = new RecordingTarget(reuse, form, new Set());
      await assert.rejects(copyBundles([full], t, { verb: 'load', retag: [parseRetagRule('contract/app:1=web:1'), parseRetagRule('nosuch=web')] }), (err: unknown) => {
        assert.ok(err instanceof FerryError && err.exitCode === 2, String(err));
        assert.match(err.message, /--retag nosuch=web renames nothing/);
        assert.match(err.message, /contract\/app:1, contract\/tool:1/);
        assert.doesNotMatch(err.message, /contract\/app:1=web:1 renames/);
        return true;
      });
      assert.deepEqual(t.kinds(), [], `${reuse} target: no call at all`);
    }
  });

  it('a layer the target holds is neither written nor opened', async () => {
    const t = new RecordingTarget('blob', 'stored', new Set([base.digest]));
    await copyBundles([full], t, { verb: 'push' });
    assert.ok(!t.written().includes(base.digest), 'the held base was not sent');
    assert.equal(t.written().length, 4, 'two top layers and two configs');
    const u = new RecordingTarget('chain', 'uncompressed', new Set([chainOfBase]));
    const r = await copyBundles([full], u, { verb: 'load' });
    assert.ok(!u.tars.has(base.diffId), 'the held base was never decompressed');
    assert.equal(u.tars.size, 2);
    assert.deepEqual(r.bundles[0]!.images.map((i) => [i.layersSent, i.layersPresent]), [[1, 1], [1, 1]]);
  });

  it('a gzip target gets zstd layers converted, checked against their diffIDs, under a rewritten manifest', async () => {
    const t = new RecordingTarget('blob', 'gzip', new Set());
    const r = await copyBundles([full], t, { verb: 'push' });
    const put = t.calls.flatMap((c) => (c.kind === 'put' ? c.images : []));
    for (const img of put) {
      const m = JSON.parse(img.manifest.bytes.toString()) as OciManifest;
      assert.equal(sha(img.manifest.bytes), img.manifest.digest);
      assert.notEqual(img.manifest.digest, full.index.images.find((i) => i.imageId === img.imageId)!.manifest.digest, 'a new manifest');
      for (const [k, l] of m.layers.entries()) {
        assert.match(l.mediaType, /gzip/);
        assert.equal(sha(gunzipSync(t.blobs.get(l.digest)!)), img.layers[k]!.diffId, 'the converted layer is the same tar');
      }
    }
    assert.equal(r.bundles[0]!.images[0]!.storedAs.size, 2);
  });

  it('a failed write aborts the copy: nothing committed', async () => {
    const t = new RecordingTarget('blob', 'stored', new Set(), 2);
    await assert.rejects(copyBundles([full], t, { verb: 'push' }), /refused this blob/);
    assert.ok(t.kinds().includes('abort'));
    assert.ok(!t.kinds().includes('commit'));
    assert.ok(!t.kinds().includes('put'), 'no image was put');
  });

  it('a thin bundle whose relied-on layer the target lacks is refused before anything is written or put', async () => {
    for (const [reuse, form] of [
      ['blob', 'stored'],
      ['chain', 'uncompressed'],
    ] as const) {
      const t = new RecordingTarget(reuse, form, new Set());
      await assert.rejects(copyBundles([thin], t, { verb: 'load' }), (err: unknown) => err instanceof FerryError && err.code === 'MISSING_LAYERS' && /nothing was loaded/.test(err.message) && /ferry inventory --recording/.test(err.hint ?? ''));
      assert.deepEqual([...new Set(t.kinds())], ['holds'], `only questions were asked: ${t.kinds().join(' ')}`);
    }
    const held = new RecordingTarget('blob', 'stored', new Set([thin.index.reliesOn[0]!.digest]));
    await copyBundles([thin], held, { verb: 'push' });
    assert.equal(held.written().length, 2, 'the new layer and the config only');
  });

  it('a chain of bundles: the later one builds on what the earlier one put, with no question about it', async () => {
    const t = new RecordingTarget('chain', 'uncompressed', new Set());
    const r = await copyBundles([full, thin], t, { verb: 'load' });
    assert.equal(r.bundles.length, 2);
    assert.deepEqual(r.bundles[1]!.images.map((i) => i.layersPresent), [1], 'the base came with the first bundle');
    assert.deepEqual(t.kinds().filter((k) => k !== 'holds'), ['put', 'put', 'commit']);
  });
});

type PackCall = { kind: 'ingest'; diffId: string } | { kind: 'write'; digest: string; diffId?: string } | { kind: 'put'; images: ImageToPut[]; indexes: IndexToPut[] } | { kind: 'commit' } | { kind: 'abort' };

/** RecordingStore is a target that compresses layers itself, as a bundle being written does: it records every call. */
class RecordingStore implements ImageTarget, LayerIngest {
  readonly description = 'the recording store';
  readonly inventoryCommand = 'ferry inspect RECORDING';
  readonly reuse = 'blob' as const;
  readonly needsNames = false;
  readonly spoolBeside: string;
  readonly calls: PackCall[] = [];
  private readonly layers = new Map<string, StoredLayerInfo>();
  private readonly blobs = new Set<string>();

  constructor(dir: string, private readonly failPutAt?: number) {
    this.spoolBeside = join(dir, 'recording.out');
  }

  async platform(): Promise<undefined> {
    return undefined;
  }
  layerForm(): LayerForm {
    return 'stored';
  }
  async holds(l: LayerQuestion): Promise<boolean> {
    return this.blobs.has(l.digest);
  }
  heldLayer(d: DiffId): StoredLayerInfo | undefined {
    return this.layers.get(d);
  }
  heldBlob(d: Digest): boolean {
    return this.blobs.has(d);
  }
  heldLayerOfSize(size: number): boolean {
    return [...this.layers.values()].some((l) => l.uncompressedSize === size);
  }
  async resume(): Promise<number> {
    return 0;
  }

  async ingestLayer(tar: AsyncIterable<Buffer>, keep: (d: DiffId) => boolean): Promise<IngestedLayer> {
    const bytes = await bytesOf(tar);
    const diffId = sha(bytes) as DiffId;
    this.calls.push({ kind: 'ingest', diffId });
    const known = this.layers.get(diffId);
    if (known) return { ...known, repeat: true };
    if (!keep(diffId)) return { diffId, uncompressedSize: bytes.length, dropped: true };
    // Stored as is: the digest of an uncompressed layer is its diffID.
    const stored = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: diffId as string as Digest, size: bytes.length, diffId, uncompressedSize: bytes.length };
    this.layers.set(diffId, stored);
    this.blobs.add(stored.digest);
    return { ...stored, repeat: false };
  }

  async writeBlob(blob: BlobToWrite): Promise<BlobOutcome[]> {
    this.calls.push({ kind: 'write', digest: blob.digest, ...(blob.diffId ? { diffId: blob.diffId } : {}) });
    const bytes = await bytesOf(blob.open(0));
    assert.equal(sha(bytes), blob.digest, 'a blob arrives as its digest says');
    this.blobs.add(blob.digest);
    return ['written'];
  }

  async putImages(images: readonly ImageToPut[], indexes: readonly IndexToPut[]): Promise<PutImage[]> {
    this.calls.push({ kind: 'put', images: [...images], indexes: [...indexes] });
    if (this.failPutAt !== undefined && this.kinds().filter((k) => k === 'put').length === this.failPutAt) throw new Error('the recording store refused this image');
    for (const img of images) {
      assert.equal(sha(img.manifest.bytes), img.manifest.digest, 'the manifest is its digest');
      assert.equal(sha(img.config.bytes), img.imageId, 'the config is the image ID');
      for (const l of img.layers) assert.ok(l.held || this.blobs.has(l.blob!.digest), `layer ${l.diffId} was stored before its image was put`);
    }
    return images.map((i) => ({ imageId: i.imageId, status: 'put', layersSent: 0, layersPresent: 0 }));
  }

  async commit(): Promise<NamedRef[]> {
    this.calls.push({ kind: 'commit' });
    return this.calls.flatMap((c) => (c.kind === 'put' ? c.images : [])).flatMap((i) => i.names.map((name) => ({ name, digest: i.manifest.digest })));
  }

  async abort(): Promise<void> {
    this.calls.push({ kind: 'abort' });
  }

  kinds(): string[] {
    return this.calls.map((c) => c.kind);
  }
  put(): ImageToPut[] {
    return this.calls.flatMap((c) => (c.kind === 'put' ? c.images : []));
  }
}

describe('pack through the same contract, into a recording store', () => {
  let dir: string;
  const archive = (): string => 'docker-archive:' + join(dir, 'week1.tar');

  async function packInto(target: RecordingStore, transport: Transport, names: string[], have?: string): Promise<NamedRef[]> {
    const source = await openSource(transport, { registry: () => ({}) });
    try {
      const resolved = await source.resolve(names);
      let plan;
      if (have) {
        const state = new TargetState();
        await addHave(state, have);
        plan = planIncremental(resolved.images.map((i) => ({ diffIds: i.diffIds, ...(i.manifest ? { keptLayers: i.manifest.layers } : {}) })), state);
      }
      return await packImages([{ source, resolved }], target, plan ? { plan } : {});
    } finally {
      await source.close();
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-pack-contract-'));
    const baseFiles = { 'etc/os-release': 'NAME=pack-contract\n', 'bin/tool': 'y'.repeat(50_000) };
    await writeSaveArchive(join(dir, 'week1.tar'), [
      { tag: 'contract/app:1', layers: [baseFiles, { 'app/main': 'app one\n' }] },
      { tag: 'contract/tool:1', layers: [baseFiles, { 'tool/main': 'tool one\n' }] },
    ]);
    const run = await ferry(['pack', archive(), '-o', join(dir, 'full.ferry.tar')]);
    assert.equal(run.code, 0, run.stderr);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('every layer arrives once (a shared base too), images are put after their layers, and only commit names them', async () => {
    const t = new RecordingStore(dir);
    const named = await packInto(t, 'docker-archive', [archive()]);
    const ingested = t.calls.flatMap((c) => (c.kind === 'ingest' ? [c.diffId] : []));
    assert.equal(ingested.length, 3, `base, app and tool layers, each once: ${ingested.join(' ')}`);
    assert.equal(new Set(ingested).size, 3);
    const kinds = t.kinds();
    assert.ok(kinds.lastIndexOf('ingest') < kinds.indexOf('put'), `layers before images: ${kinds.join(' ')}`);
    assert.deepEqual(kinds.slice(-1), ['commit']);
    assert.ok(!kinds.includes('abort'));
    assert.deepEqual(named.map((n) => n.name).sort(), ['docker.io/contract/app:1', 'docker.io/contract/tool:1']);
  });

  it('kept blobs are written byte for byte with their diffIDs; what the plan leaves behind is neither read nor written', async () => {
    const t = new RecordingStore(dir);
    const full = join(dir, 'full.ferry.tar');
    await packInto(t, 'bundle', [`bundle:${full}`]);
    const layerWrites = t.calls.filter((c): c is Extract<PackCall, { kind: 'write' }> => c.kind === 'write' && c.diffId !== undefined);
    assert.equal(layerWrites.length, 3, 'three layers, kept');
    assert.ok(!t.kinds().includes('ingest'), 'nothing decompressed to be compressed again');

    const thin = new RecordingStore(dir);
    await packInto(thin, 'docker-archive', [archive()], full);
    assert.ok(!thin.kinds().includes('ingest') && !thin.kinds().includes('write'), `the target holds everything: ${thin.kinds().join(' ')}`);
    for (const img of thin.put()) {
      assert.ok(img.layers.every((l) => l.held && l.blob !== undefined), 'every layer is relied on, named by the blob the target holds');
    }
    assert.deepEqual(thin.kinds().slice(-1), ['commit']);
  });

  it('a failure after layers arrived aborts: nothing committed', async () => {
    const t = new RecordingStore(dir, 1);
    await assert.rejects(packInto(t, 'docker-archive', [archive()]), /refused this image/);
    assert.deepEqual(t.kinds().slice(-1), ['abort']);
    assert.ok(!t.kinds().includes('commit'));
  });
});
