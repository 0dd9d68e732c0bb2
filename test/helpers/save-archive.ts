// A docker-save archive (the legacy layout Docker 20.10 writes) made in the test, with no daemon: images stacked
// from small layer tars, each with a real config whose diff_ids match, so `ferry pack docker-archive:` takes it.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tarBytes, type RawEntry } from './crafted-tar.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A file's content, or its content and mode (an executable: 0o755). */
export type ArchiveFile = string | Buffer | { data: Buffer; mode: number };

export interface ArchiveImage {
  tag: string | undefined;
  /** Layers bottom first: each a map of file path to content, or a layer tar as it is (crafted entries). */
  layers: (Record<string, ArchiveFile> | Buffer)[];
  arch?: string;
}

export interface ArchivedImage {
  id: string;
  diffIds: string[];
}

/** layerTar is a layer's tar: its files as regular entries, in name order. */
export function layerTar(files: Record<string, ArchiveFile>): Buffer {
  const entries: RawEntry[] = Object.keys(files)
    .sort()
    .map((name) => {
      const f = files[name]!;
      return typeof f === 'object' && 'mode' in f ? { name, data: f.data, mode: f.mode } : { name, data: Buffer.from(f), mode: 0o644 };
    });
  return tarBytes(entries);
}

/** writeSaveArchive writes the images into one archive at path and returns their IDs and diffIDs. */
export async function writeSaveArchive(path: string, images: readonly ArchiveImage[]): Promise<ArchivedImage[]> {
  const entries: RawEntry[] = [];
  const written = new Set<string>();
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const out: ArchivedImage[] = [];
  for (const img of images) {
    const tars = img.layers.map((l) => (Buffer.isBuffer(l) ? l : layerTar(l)));
    const diffIds = tars.map((t) => `sha256:${sha(t)}`);
    for (const t of tars) {
      const name = `${sha(t)}/layer.tar`;
      if (!written.has(name)) entries.push({ name, data: t });
      written.add(name);
    }
    const config = Buffer.from(
      JSON.stringify({ architecture: img.arch ?? 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: diffIds.map(() => ({ created_by: 'test' })) }),
    );
    const id = sha(config);
    if (!written.has(`${id}.json`)) entries.push({ name: `${id}.json`, data: config });
    written.add(`${id}.json`);
    manifest.push({ Config: `${id}.json`, RepoTags: img.tag ? [img.tag] : null, Layers: tars.map((t) => `${sha(t)}/layer.tar`) });
    out.push({ id: `sha256:${id}`, diffIds });
  }
  entries.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) });
  await writeFile(path, tarBytes(entries));
  return out;
}
