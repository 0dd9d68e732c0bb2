// The image lists `pack -f` reads: plain lines, or YAML (a list, or a mapping with an `images` list).
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import { FerryError } from '../ui/errors.js';

/** readImageList reads plain lines (# comments allowed) or YAML: a list, or a mapping with an `images` list. */
export async function readImageList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FerryError('USAGE', `cannot read image list ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? err)}`, { hint: 'check the path given to -f (a list of images: one per line, or YAML)' });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch {
    doc = undefined;
  }
  const list = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && Array.isArray((doc as { images?: unknown }).images) ? (doc as { images: unknown[] }).images : undefined;
  if (list) {
    return list.map((v, i) => {
      const name = typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string' ? (v as { name: string }).name : undefined;
      if (!name) throw new FerryError('USAGE', `${file}: item ${i + 1} is not an image name`, { hint: 'each item is a name (nginx:1.27) or {name: nginx:1.27}; see examples/images.yaml' });
      return name.trim();
    });
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
}
