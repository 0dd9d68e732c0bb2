// splitBundles: commands that take BUNDLE… [IMAGE…] read the leading arguments that are files as bundles, after any
// named by a flag (`load -i BUNDLE`, as `docker load` takes it), which must be files.
import { stat } from 'node:fs/promises';
import { FerryError } from '../ui/errors.js';

export async function splitBundles(args: readonly string[], flagged: readonly string[] = []): Promise<{ bundles: string[]; images: string[] }> {
  for (const f of flagged) if (!(await stat(f).catch(() => undefined))) throw missingBundle(f);
  const bundles: string[] = [...flagged];
  let k = 0;
  for (; k < args.length; k++) {
    const st = await stat(args[k]!).catch(() => undefined);
    if (!st) break;
    bundles.push(args[k]!);
  }
  const images = args.slice(k);
  // `load a.ferry.tar b.ferry.tar` with b missing means a missing file, not an image named b.ferry.tar.
  const file = bundles.length === 0 ? args[0] : images.find(looksLikeFile);
  if (file !== undefined) throw missingBundle(file);
  return { bundles, images };
}

function missingBundle(file: string): FerryError {
  return new FerryError('USAGE', `cannot open bundle ${file}: no such file`, { hint: 'check the path; name the bundle files first, then any images to use from them' });
}

/** looksLikeFile: a path (./x, /x, ../x, ~/x) or a name ending as archives and documents do, which no image name does. */
function looksLikeFile(arg: string): boolean {
  if (/^(\.{0,2}\/|~\/)/.test(arg)) return true;
  const last = arg.slice(arg.lastIndexOf('/') + 1);
  return !last.includes(':') && !last.includes('@') && /\.(tar|tgz|tar\.(gz|zst|xz|bz2)|json)$/i.test(last);
}
