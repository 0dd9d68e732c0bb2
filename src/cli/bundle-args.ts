// splitBundles: commands that take BUNDLE… [IMAGE…] read the leading arguments that are files as bundles.
import { stat } from 'node:fs/promises';
import { FerryError } from '../ui/errors.js';

export async function splitBundles(args: readonly string[]): Promise<{ bundles: string[]; images: string[] }> {
  const bundles: string[] = [];
  let k = 0;
  for (; k < args.length; k++) {
    const st = await stat(args[k]!).catch(() => undefined);
    if (!st) break;
    bundles.push(args[k]!);
  }
  if (bundles.length === 0) {
    throw new FerryError('USAGE', `cannot open bundle ${args[0]}: no such file`, { hint: 'name the bundle files first, then any images to use from them' });
  }
  return { bundles, images: args.slice(k) };
}
