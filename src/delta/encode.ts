// encodeDelta: a new layer tar as a delta against reference layer tars. Whole records (headers, content, padding)
// found in a reference become copies, runs of them merged; a file whose content is found becomes a copy of it;
// a changed file is compressed against its previous version (same path, else a similar name) as a zstd dictionary,
// batched into frames (the file-paired design of research/delta-bounded.md, which shipped 2.4 MB where chunking
// shipped 2.8-2.9 MB); padding and end blocks become zeros.
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { DiffId, Digest } from '../image/digest.js';
import { DICT_AT, DictionaryRoom, FrameCompressor } from './frames.js';
import { indexLayer, type LayerIndex } from './layer-index.js';
import { Counterparts, MatchIndex } from './match-index.js';
import { encodeRecipe, LIMITS, type DeltaReference, type LiteralFrame, type RefRange, type Run } from './recipe.js';
import { writeDeltaBlob } from './blob.js';

export interface LayerFile {
  path: string;
  diffId: DiffId;
  size: number;
}

export interface EncodeOptions {
  /** zstd level of the new bytes (default 19: frames are small and compressed against their old versions). */
  level?: number;
  /**
   * Give up (undefined) when more than this many new bytes have no counterpart to be compressed against: matching
   * is cheap, compressing new bytes at a delta's level is not, and a layer mostly new is better stored whole.
   */
  maxNew?: number;
}

export interface EncodedDelta {
  size: number;
  digest: Digest;
  /** The references the recipe uses (a subset of those offered). */
  references: DeltaReference[];
  /** Bytes of the layer copied from references, zero-filled, and carried new. */
  copied: number;
  zeros: number;
  literal: number;
}

/** encodeDelta writes the delta blob to `out` (and `out`.frames while it works); undefined when maxNew says give up. */
export async function encodeDelta(layer: LayerFile, refs: readonly LayerFile[], out: string, opts: EncodeOptions = {}): Promise<EncodedDelta | undefined> {
  const handles: FileHandle[] = [];
  const framesPath = `${out}.frames`;
  try {
    const fh = await open(layer.path, 'r');
    handles.push(fh);
    const index = await indexLayer(fh, `layer ${layer.diffId}`);
    const wanted = {
      recordLengths: new Set(index.records.map((r) => r.end - r.start)),
      contentSizes: new Set(index.records.filter((r) => r.regular && r.size > 0).map((r) => r.size)),
    };
    const refHandles: FileHandle[] = [];
    const refIndexes: LayerIndex[] = [];
    for (const ref of refs) {
      const rh = await open(ref.path, 'r');
      handles.push(rh);
      refHandles.push(rh);
      refIndexes.push(await indexLayer(rh, `reference ${ref.diffId}`, wanted));
    }
    const matchAll = (keep: (i: number) => boolean): MatchIndex => {
      const m = new MatchIndex();
      refIndexes.forEach((x, i) => keep(i) && m.add(i, x));
      return m;
    };
    let { runs, news } = await planRuns(fh, index, matchAll(() => true));
    // A reference that gives little costs more than it saves: the target reads it whole to rebuild the layer.
    const weak = weakReferences(runs, news, refs);
    if (weak.size) ({ runs, news } = await planRuns(fh, index, matchAll((i) => !weak.has(i))));
    if (opts.maxNew !== undefined && news.reduce((a, n) => a + (n.like ? 0 : n.length), 0) > opts.maxNew) return undefined;
    const frames = await open(framesPath, 'w');
    handles.push(frames);
    const batch = new Batcher(fh, refHandles, frames, opts.level ?? 19, news.reduce((a, n) => a + n.length, 0));
    for (const n of news) await batch.add(n.from, n.length, n.like);
    await batch.flush();
    const used = usedReferences(runs, batch.frames, refs);
    const recipe = encodeRecipe({ layerSize: layer.size, references: used.references, frames: batch.frames, runs });
    const blob = await writeDeltaBlob(out, recipe, framesPath);
    const sum = (k: Run['kind']) => runs.filter((r) => r.kind === k).reduce((a, r) => a + r.length, 0);
    return { ...blob, references: used.references, copied: sum('copy'), zeros: sum('zeros'), literal: sum('literal') };
  } finally {
    for (const h of handles) await h.close().catch(() => undefined);
    await rm(framesPath, { force: true });
  }
}

/** New bytes of the layer, in the order the runs take them, each with the reference bytes it likely changed from. */
interface NewBytes {
  from: number;
  length: number;
  like: RefRange | undefined;
}

/** planRuns walks the new layer's records in order and says where each byte comes from. */
async function planRuns(fh: FileHandle, index: LayerIndex, matches: MatchIndex): Promise<{ runs: Run[]; news: NewBytes[] }> {
  const runs = new RunList();
  const news: NewBytes[] = [];
  const carry = (from: number, length: number, like: RefRange | undefined): void => {
    if (length <= 0) return;
    runs.literal(length);
    news.push({ from, length, like });
  };
  const parts = new Counterparts(matches);
  for (const r of index.records) {
    const whole = matches.record(r, runs.lastCopy());
    if (whole) {
      runs.copy(whole.ref, whole.offset, r.end - r.start);
      continue;
    }
    const counterpart = r.regular ? parts.of(r) : undefined;
    carry(r.start, r.contentAt - r.start, counterpart?.header);
    if (r.size > 0) {
      const same = r.regular ? matches.content(r) : undefined;
      if (same) runs.copy(same.ref, same.offset, r.size);
      else carry(r.contentAt, r.size, counterpart?.content);
    }
    await padding(fh, r.contentAt + r.size, r.end, runs, carry);
  }
  await padding(fh, index.tail.start, index.tail.end, runs, carry);
  return { runs: runs.runs, news };
}

/** padding is zeros when it is (it always is in a well-made tar), else carried as new bytes: the rebuild is exact. */
async function padding(fh: FileHandle, from: number, to: number, runs: RunList, carry: (from: number, length: number, like: undefined) => void): Promise<void> {
  if (to <= from) return;
  const buf = Buffer.alloc(Math.min(to - from, LIMITS.zerosRun));
  for (let at = from; at < to; at += buf.length) {
    const n = Math.min(buf.length, to - at);
    await fh.read(buf, 0, n, at);
    if (buf.subarray(0, n).every((b) => b === 0)) runs.zeros(n);
    else carry(at, n, undefined);
  }
}

/** A reference giving less than this share of its own size (and under WEAK_BYTES) is dropped. */
const WEAK_SHARE = 0.02;
const WEAK_BYTES = 4 << 20;

/** weakReferences lists the references whose copies and dictionary bytes come to little against their size. */
function weakReferences(runs: readonly Run[], news: readonly NewBytes[], refs: readonly LayerFile[]): Set<number> {
  const gives = refs.map(() => 0);
  for (const r of runs) if (r.kind === 'copy') gives[r.ref]! += r.length;
  for (const n of news) if (n.like) gives[n.like.ref]! += Math.min(n.like.length, n.length);
  const weak = new Set<number>();
  refs.forEach((ref, i) => gives[i]! < Math.min(WEAK_BYTES, WEAK_SHARE * ref.size) && weak.add(i));
  return weak;
}

/** RunList merges each run into the one before it where they continue each other. */
class RunList {
  readonly runs: Run[] = [];

  lastCopy(): { ref: number; end: number } | undefined {
    const l = this.runs.at(-1);
    return l?.kind === 'copy' ? { ref: l.ref, end: l.offset + l.length } : undefined;
  }

  copy(ref: number, offset: number, length: number): void {
    const l = this.runs.at(-1);
    if (l?.kind === 'copy' && l.ref === ref && l.offset + l.length === offset) l.length += length;
    else this.runs.push({ kind: 'copy', ref, offset, length });
  }

  literal(length: number): void {
    if (length <= 0) return;
    const l = this.runs.at(-1);
    if (l?.kind === 'literal') l.length += length;
    else this.runs.push({ kind: 'literal', length });
  }

  zeros(length: number): void {
    const l = this.runs.at(-1);
    if (l?.kind === 'zeros' && l.length + length <= LIMITS.zerosRun) l.length += length;
    else this.runs.push({ kind: 'zeros', length });
  }
}

/** Where a piece of a big changed file looks in its counterpart: the same stretch, widened by this much each side. */
const MARGIN = 1 << 20;

/** Batcher gathers new bytes into frames of at most LIMITS.frameContent, each with its counterparts as dictionary. */
class Batcher {
  readonly frames: LiteralFrame[] = [];
  /** Sized to the new bytes when they are fewer than a frame holds: a delta's are often a few hundred KB. */
  private readonly content: Buffer;
  private length = 0;
  private dictionary: RefRange[] = [];
  private dictionaryBytes = 0;
  private readonly dictionaryRoom = new DictionaryRoom();
  private readonly zstd = FrameCompressor.get();

  constructor(
    private readonly layer: FileHandle,
    private readonly refs: readonly FileHandle[],
    private readonly out: FileHandle,
    private readonly level: number,
    newBytes: number,
  ) {
    this.content = Buffer.allocUnsafe(Math.max(1, Math.min(LIMITS.frameContent, newBytes)));
  }

  /** add takes bytes [from, from+length) of the new layer, to be compressed against `like` if given; it returns length. */
  async add(from: number, length: number, like: RefRange | undefined): Promise<number> {
    for (let done = 0; done < length; ) {
      if (this.length === this.content.length) await this.flush();
      const n = Math.min(length - done, this.content.length - this.length);
      const dict = like && slice(like, done, n);
      if (dict && this.dictionaryBytes + dict.length > LIMITS.dictionary && this.length > 0) {
        await this.flush();
        continue;
      }
      if (dict) this.addDictionary(dict);
      await this.layer.read(this.content, this.length, n, from + done);
      this.length += n;
      done += n;
    }
    return length;
  }

  async flush(): Promise<void> {
    if (this.length === 0) return;
    const dict = await this.readDictionary();
    const frame = this.zstd.compress(this.content.subarray(0, this.length), dict, this.level);
    await this.out.write(frame);
    this.frames.push({ compressedSize: frame.length, contentSize: this.length, dictionary: this.dictionary });
    this.length = 0;
    this.dictionary = [];
    this.dictionaryBytes = 0;
  }

  private addDictionary(d: RefRange): void {
    const room = LIMITS.dictionary - this.dictionaryBytes;
    const length = Math.min(d.length, room);
    if (length <= 0 || this.dictionary.some((x) => x.ref === d.ref && x.offset <= d.offset && x.offset + x.length >= d.offset + length)) return;
    this.dictionary.push({ ref: d.ref, offset: d.offset, length });
    this.dictionaryBytes += length;
  }

  /** readDictionary reads the frame's counterparts into the one dictionary buffer (after its pad). */
  private async readDictionary(): Promise<Buffer> {
    const buf = this.dictionaryRoom.take(this.dictionaryBytes);
    let at = DICT_AT;
    for (const d of this.dictionary) {
      await this.refs[d.ref]!.read(buf, at, d.length, d.offset);
      at += d.length;
    }
    return buf;
  }
}

/** slice is the part of counterpart `like` that bytes [done, done+n) of a new file are most likely made from. */
function slice(like: RefRange, done: number, n: number): RefRange | undefined {
  if (done === 0 && like.length <= LIMITS.dictionary) return like;
  const from = Math.max(0, done - MARGIN);
  const to = Math.min(like.length, done + n + MARGIN);
  return to > from ? { ref: like.ref, offset: like.offset + from, length: to - from } : undefined;
}

/** usedReferences renumbers the runs and dictionaries to the references they use, in the order offered. */
function usedReferences(runs: Run[], frames: LiteralFrame[], refs: readonly LayerFile[]): { references: DeltaReference[] } {
  const used = new Set<number>();
  for (const r of runs) if (r.kind === 'copy') used.add(r.ref);
  for (const f of frames) for (const d of f.dictionary) used.add(d.ref);
  const order = [...used].sort((a, b) => a - b);
  const to = new Map(order.map((r, i) => [r, i]));
  for (const r of runs) if (r.kind === 'copy') r.ref = to.get(r.ref)!;
  for (const f of frames) for (const d of f.dictionary) d.ref = to.get(d.ref)!;
  return { references: order.map((i) => ({ diffId: refs[i]!.diffId, size: refs[i]!.size })) };
}
