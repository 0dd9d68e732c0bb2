// Reading tars in tests with tar-stream (an independent reader from ferry's own header walker).
import { createReadStream } from 'node:fs';
import tar from 'tar-stream';

export interface ListedEntry {
  name: string;
  type: string;
  size: number;
}

export async function listTar(path: string): Promise<ListedEntry[]> {
  const out: ListedEntry[] = [];
  const extract = tar.extract();
  createReadStream(path).pipe(extract);
  for await (const e of extract) {
    out.push({ name: e.header.name, type: e.header.type ?? 'file', size: e.header.size ?? 0 });
    e.resume();
  }
  return out;
}

export async function readTarEntry(path: string, name: string): Promise<Buffer> {
  const extract = tar.extract();
  createReadStream(path).pipe(extract);
  let found: Buffer | undefined;
  for await (const e of extract) {
    if (e.header.name === name) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      found = Buffer.concat(chunks);
    } else e.resume();
  }
  if (!found) throw new Error(`${name} not in ${path}`);
  return found;
}
