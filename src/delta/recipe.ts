// A delta layer's recipe: which bytes of the rebuilt tar come from which reference layer, which are zeros, and
// which are new (taken in order from zstd frames, each compressed against ranges of the references), in a compact
// binary form, with the limits every reader checks before it rebuilds a byte.
import type { DiffId } from '../image/digest.js';

export interface DeltaReference {
  diffId: DiffId;
  /** Bytes of the reference layer's uncompressed tar. */
  size: number;
}

/** Bytes [offset, offset+length) of reference `ref` (an index into references). */
export interface RefRange {
  ref: number;
  offset: number;
  length: number;
}

/** A zstd frame of new bytes, compressed with the listed reference ranges, concatenated, as its raw dictionary. */
export interface LiteralFrame {
  compressedSize: number;
  contentSize: number;
  dictionary: RefRange[];
}

export type Run = { kind: 'literal'; length: number } | { kind: 'zeros'; length: number } | ({ kind: 'copy' } & RefRange);

export interface Recipe {
  /** Bytes of the rebuilt layer tar. */
  layerSize: number;
  references: DeltaReference[];
  frames: LiteralFrame[];
  /** In order, each filling the next bytes of the layer: the runs tile it, so they cannot overlap or reorder. */
  runs: Run[];
}

/**
 * LIMITS bound what a reader rebuilds, so a hostile recipe costs little time and memory: a frame and its dictionary
 * are held whole (a few tens of MB, whatever the layer's size), and the layer can be no larger than its references
 * and new bytes can plausibly make.
 */
export const LIMITS = {
  recipeCompressed: 16 << 20,
  recipe: 64 << 20,
  frameContent: 8 << 20,
  dictionary: 16 << 20,
  zerosRun: 64 << 10,
  /** A layer is at most this many times its references (a file copied several times) plus ... */
  refFactor: 4,
  /** ... this many times the delta blob (new bytes that compress very well: headers, text) plus 1 MiB. */
  blobFactor: 1024,
} as const;

export class DeltaError extends Error {}

const KIND = { literal: 0, copy: 1, zeros: 2 } as const;

/** encodeRecipe writes the recipe as LEB128 numbers, runs column by column (kinds, lengths, then copy sources). */
export function encodeRecipe(r: Recipe): Buffer {
  const w = new Writer();
  w.u(1);
  w.u(r.layerSize);
  w.u(r.references.length);
  for (const ref of r.references) {
    w.bytes(Buffer.from(ref.diffId.slice('sha256:'.length), 'hex'));
    w.u(ref.size);
  }
  w.u(r.frames.length);
  for (const f of r.frames) {
    w.u(f.compressedSize);
    w.u(f.contentSize);
    w.u(f.dictionary.length);
    for (const d of f.dictionary) (w.u(d.ref), w.u(d.offset), w.u(d.length));
  }
  w.u(r.runs.length);
  for (const run of r.runs) w.u(KIND[run.kind]);
  for (const run of r.runs) w.u(run.length);
  // A copy's offset is stored against where the previous copy from the same reference ended: files kept in order
  // cost a byte or two each.
  const ends = new Map<number, number>();
  for (const run of r.runs) {
    if (run.kind !== 'copy') continue;
    w.u(run.ref);
    w.s(run.offset - (ends.get(run.ref) ?? 0));
    ends.set(run.ref, run.offset + run.length);
  }
  return w.done();
}

/** decodeRecipe reads a recipe and checks it against LIMITS and the blob it came in; it throws DeltaError. */
export function decodeRecipe(buf: Buffer, blobSize: number): Recipe {
  const r = new Reader(buf);
  if (r.u() !== 1) throw new DeltaError('recipe version is not 1 (made by a newer ferry?)');
  const layerSize = r.u();
  const references: DeltaReference[] = [];
  for (let i = r.count(33); i > 0; i--) references.push({ diffId: `sha256:${r.bytes(32).toString('hex')}` as DiffId, size: r.u() });
  const frames: LiteralFrame[] = [];
  for (let i = r.count(3); i > 0; i--) {
    const compressedSize = r.u();
    const contentSize = r.u();
    const dictionary: RefRange[] = [];
    for (let j = r.count(3); j > 0; j--) dictionary.push({ ref: r.u(), offset: r.u(), length: r.u() });
    frames.push({ compressedSize, contentSize, dictionary });
  }
  const n = r.count(2);
  const kinds: number[] = [];
  for (let i = 0; i < n; i++) kinds.push(r.u());
  const lengths: number[] = [];
  for (let i = 0; i < n; i++) lengths.push(r.u());
  const ends = new Map<number, number>();
  const runs: Run[] = kinds.map((k, i) => {
    const length = lengths[i]!;
    if (k === KIND.literal) return { kind: 'literal', length };
    if (k === KIND.zeros) return { kind: 'zeros', length };
    if (k !== KIND.copy) throw new DeltaError(`run ${i} is of unknown kind ${k}`);
    const ref = r.u();
    const offset = (ends.get(ref) ?? 0) + r.s();
    ends.set(ref, offset + length);
    return { kind: 'copy', ref, offset, length };
  });
  if (!r.atEnd()) throw new DeltaError('recipe has bytes after its last run');
  const recipe = { layerSize, references, frames, runs };
  checkRecipe(recipe, blobSize);
  return recipe;
}

/** checkRecipe refuses what no honest encoder writes and what would cost a reader more than LIMITS allow. */
export function checkRecipe(r: Recipe, blobSize: number): void {
  const inRef = (x: RefRange, what: string): void => {
    const ref = r.references[x.ref];
    if (!ref) throw new DeltaError(`${what} names reference ${x.ref}, but the recipe lists ${r.references.length}`);
    if (x.length <= 0 || x.offset < 0 || x.offset + x.length > ref.size) {
      throw new DeltaError(`${what} reads bytes ${x.offset}-${x.offset + x.length} of ${ref.diffId}, which has ${ref.size}`);
    }
  };
  let literals = 0;
  let compressed = 0;
  r.frames.forEach((f, i) => {
    if (f.contentSize <= 0 || f.contentSize > LIMITS.frameContent) throw new DeltaError(`frame ${i} declares ${f.contentSize} bytes (at most ${LIMITS.frameContent})`);
    if (f.compressedSize <= 0) throw new DeltaError(`frame ${i} is empty`);
    let dict = 0;
    for (const d of f.dictionary) (inRef(d, `frame ${i}'s dictionary`), (dict += d.length));
    if (dict > LIMITS.dictionary) throw new DeltaError(`frame ${i}'s dictionary is ${dict} bytes (at most ${LIMITS.dictionary})`);
    literals += f.contentSize;
    compressed += f.compressedSize;
  });
  if (compressed > blobSize) throw new DeltaError(`frames claim ${compressed} bytes, but the delta blob has ${blobSize}`);
  let total = 0;
  let fromRuns = 0;
  r.runs.forEach((run, i) => {
    if (!Number.isSafeInteger(run.length) || run.length <= 0) throw new DeltaError(`run ${i} is empty`);
    if (run.kind === 'copy') inRef(run, `run ${i}`);
    if (run.kind === 'zeros' && run.length > LIMITS.zerosRun) throw new DeltaError(`run ${i} is ${run.length} zeros (at most ${LIMITS.zerosRun})`);
    if (run.kind === 'literal') fromRuns += run.length;
    total += run.length;
  });
  if (fromRuns !== literals) throw new DeltaError(`runs take ${fromRuns} new bytes, but the frames hold ${literals}`);
  if (total !== r.layerSize) throw new DeltaError(`runs make ${total} bytes, but the layer is declared as ${r.layerSize}`);
  const refBytes = r.references.reduce((a, x) => a + x.size, 0);
  const most = LIMITS.refFactor * refBytes + LIMITS.blobFactor * blobSize + (1 << 20);
  if (r.layerSize > most) throw new DeltaError(`declares a ${r.layerSize}-byte layer, more than its references and new bytes can make (${most})`);
}

class Writer {
  private readonly parts: number[] = [];
  private readonly chunks: Buffer[] = [];

  u(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`recipe number out of range: ${n}`);
    while (n >= 0x80) {
      this.parts.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.parts.push(n);
  }

  /** s writes a signed number zigzagged (0, -1, 1, -2 … as 0, 1, 2, 3 …). */
  s(n: number): void {
    this.u(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  bytes(b: Buffer): void {
    this.flush();
    this.chunks.push(b);
  }

  done(): Buffer {
    this.flush();
    return Buffer.concat(this.chunks);
  }

  private flush(): void {
    if (this.parts.length) this.chunks.push(Buffer.from(this.parts.splice(0)));
  }
}

class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  u(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new DeltaError('recipe ends inside a number');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * scale;
      if (!Number.isSafeInteger(n)) throw new DeltaError('recipe number is too large');
      if (b < 0x80) return n;
      scale *= 0x80;
    }
  }

  s(): number {
    const z = this.u();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** count reads a list's length, refused when the bytes left cannot hold that many items of `least` bytes each. */
  count(least: number): number {
    const n = this.u();
    if (n * least > this.buf.length - this.pos) throw new DeltaError(`recipe lists ${n} items in ${this.buf.length - this.pos} bytes`);
    return n;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new DeltaError('recipe ends early');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }
}
