// openBundles: the bundles a command was given, with volume sets checked whole (one set, every volume, no stranger)
// and put in order, before anything is changed. One volume alone is allowed: its complete images stand by themselves.
import { basename } from 'node:path';
import { FerryError } from '../ui/errors.js';
import { BundleReader } from './reader.js';

export interface OpenedBundles {
  bundles: BundleReader[];
  /** One volume of a larger set, given alone: only its complete images can be used. */
  loneVolume: boolean;
}

export async function openBundles(paths: readonly string[]): Promise<OpenedBundles> {
  const bundles: BundleReader[] = [];
  try {
    for (const p of paths) bundles.push(await BundleReader.open(p));
    return { bundles: checkSet(bundles), loneVolume: bundles.length === 1 && (bundles[0]!.index.volume?.count ?? 1) > 1 };
  } catch (err) {
    await Promise.all(bundles.map((b) => b.close()));
    throw err;
  }
}

function checkSet(bundles: BundleReader[]): BundleReader[] {
  const volumes = bundles.filter((b) => b.index.volume);
  if (volumes.length === 0 || bundles.length === 1) return bundles;
  const first = volumes[0]!;
  const set = first.index.volume!;
  const hint = 'give every volume of one set, in any order (or one volume alone to use its complete images)';
  for (const b of bundles) {
    const v = b.index.volume;
    if (!v) throw new FerryError('USAGE', `${b.path} is not a volume of set ${set.set} (as ${first.path} is): it is a bundle on its own`, { hint });
    if (v.set !== set.set) throw new FerryError('USAGE', `${b.path} is a volume of another set (${v.set}) than ${first.path} (${set.set})`, { hint });
    if (v.count !== set.count) throw new FerryError('BUNDLE_INVALID', `${b.path} says its set has ${v.count} volumes, ${first.path} says ${set.count}`, { hint: 'one of them was altered' });
  }
  const byNumber = new Map<number, BundleReader>();
  for (const b of bundles) {
    const n = b.index.volume!.number;
    const twin = byNumber.get(n);
    if (twin) throw new FerryError('USAGE', `${b.path} and ${twin.path} are both volume ${n} of set ${set.set}`, { hint });
    byNumber.set(n, b);
  }
  const missing = Array.from({ length: set.count }, (_, k) => k + 1).filter((n) => !byNumber.has(n));
  if (missing.length) {
    throw new FerryError('USAGE', `volume${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${set.count} of set ${set.set} ${missing.length > 1 ? 'are' : 'is'} missing: ${missing.map((n) => expectedName(first.path, n)).join(', ')}; nothing was changed`, { hint });
  }
  return [...byNumber.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b);
}

/** expectedName guesses a missing volume's file name from a given one (NAME.002.ferry.tar for NAME.001.ferry.tar). */
function expectedName(given: string, n: number): string {
  const name = basename(given);
  const m = /^(.*)\.(\d{3,})((?:\.ferry)?\.tar)$/.exec(name);
  return m ? `${m[1]}.${String(n).padStart(m[2]!.length, '0')}${m[3]}` : `volume ${n}`;
}
