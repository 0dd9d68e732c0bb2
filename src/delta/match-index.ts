// What the reference layers hold, looked up by what a new layer's record could match: the same record bytes, the
// same file content, or a previous version of a changed file (same path, else a similar name).
import { posix } from 'node:path';
import type { LayerIndex, LayerRecord } from './layer-index.js';
import type { RefRange } from './recipe.js';

interface At {
  ref: number;
  offset: number;
}

interface RefFile extends At {
  /** Where its headers start (offset is where its content starts). */
  start: number;
  size: number;
}

export class MatchIndex {
  private readonly records = new Map<string, At[]>();
  private readonly contents = new Map<string, At>();
  /** Regular files by path, by path with digits masked, and by base name with digits masked. */
  readonly byPath = new Map<string, RefFile[]>();
  readonly byMasked = new Map<string, RefFile[]>();
  readonly byBase = new Map<string, RefFile[]>();

  add(ref: number, index: LayerIndex): void {
    for (const r of index.records) {
      if (r.recordHash) push(this.records, r.recordHash, { ref, offset: r.start });
      if (r.contentHash && !this.contents.has(r.contentHash)) this.contents.set(r.contentHash, { ref, offset: r.contentAt });
      if (!r.regular || r.size === 0) continue;
      const f = { ref, offset: r.contentAt, start: r.start, size: r.size };
      push(this.byPath, r.path, f);
      push(this.byMasked, masked(r.path), f);
      push(this.byBase, masked(posix.basename(r.path)), f);
    }
  }

  /** record finds the record's exact bytes, preferring the copy that continues `after` (runs merge then). */
  record(r: LayerRecord, after: { ref: number; end: number } | undefined): At | undefined {
    const found = r.recordHash ? this.records.get(r.recordHash) : undefined;
    if (!found) return undefined;
    return found.find((a) => after && a.ref === after.ref && a.offset === after.end) ?? found[0];
  }

  content(r: LayerRecord): At | undefined {
    return r.contentHash ? this.contents.get(r.contentHash) : undefined;
  }
}

/** Counterparts picks, for a changed file, the reference file it most likely changed from. */
export class Counterparts {
  constructor(private readonly m: MatchIndex) {}

  of(r: LayerRecord): { header: RefRange; content: RefRange } | undefined {
    const found = this.m.byPath.get(r.path) ?? this.m.byMasked.get(masked(r.path)) ?? this.m.byBase.get(masked(posix.basename(r.path)));
    if (!found) return undefined;
    // Of several, the closest in size: a file that grew a little is likelier its old self than a namesake.
    let best = found[0]!;
    for (const f of found) if (Math.abs(f.size - r.size) < Math.abs(best.size - r.size)) best = f;
    return {
      header: { ref: best.ref, offset: best.start, length: best.offset - best.start },
      content: { ref: best.ref, offset: best.offset, length: best.size },
    };
  }
}

/** masked hides version numbers: libssl.so.3.0.11 and libssl.so.3.0.13 are one name, as are python3.11 and python3.12. */
function masked(path: string): string {
  return path.replace(/[0-9]+/g, '#');
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}
