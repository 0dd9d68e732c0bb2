// parseSize reads sizes as docker prints and takes them: 4.7G, 700MB, 512MiB, 1000000 (bytes). Decimal units are
// powers of 1000 (how media are sold: a 4.7 GB DVD), binary ones (KiB, MiB, GiB) powers of 1024.
import { FerryError } from '../ui/errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

export function parseSize(text: string, option: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new FerryError('USAGE', `${option} ${JSON.stringify(text)} is not a size`, { hint: 'write it as docker does: 4.7G, 700MB, 512MiB or a number of bytes' });
  return Math.floor(Number(m[1]) * unit);
}
