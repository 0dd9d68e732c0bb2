// readSaveStream: one pass over a `docker save` tar (the legacy <id>/layer.tar form of Docker <= 24 and the
// OCI-shaped form of Docker 25+). Layers go to the caller as they pass; configs and manifest.json are kept.
import { posix } from 'node:path';
import { readTar, TarFormatError } from '../tar/stream-reader.js';
import { sha256Of, type DiffId } from '../image/digest.js';
import type { DockerSaveEntry } from '../image/model.js';
import { collect, Sha256Counter } from '../stream/hash.js';

/** What a docker-save archive holds besides layer bytes. */
export interface SaveContents {
  entries: DockerSaveEntry[];
  /** Config bytes by archive path, checked against the digest their name carries. */
  configs: Map<string, Buffer>;
  /** The diffID of each layer path, following the symlinks docker writes for repeated layers. */
  layerAt(path: string): DiffId | undefined;
}

export interface SaveStreamHooks {
  /** isLayerBlob says whether an OCI-form blob name (its hex) is a layer the caller expects. */
  isLayerBlob(hex: string): boolean;
  /**
   * layer receives each layer file; it must consume body and return the diffID it hashed. `key` is the path,
   * stable for the same layer across saves from the same daemon.
   */
  layer(key: string, size: number, body: AsyncIterable<Buffer>): Promise<DiffId>;
}

export class SaveFormatError extends Error {}

const MAX_JSON = 16 << 20;

/** hashOnly consumes a body and returns its sha256: for layers already stored, checked but not recompressed. */
export async function hashOnly(body: AsyncIterable<Buffer>): Promise<DiffId> {
  const h = new Sha256Counter();
  for await (const chunk of body) h.update(chunk);
  return h.digest() as string as DiffId;
}

export async function readSaveStream(stream: AsyncIterable<Buffer>, hooks: SaveStreamHooks): Promise<SaveContents> {
  const configs = new Map<string, Buffer>();
  const layers = new Map<string, DiffId>();
  const links = new Map<string, string>();
  let entries: DockerSaveEntry[] | undefined;

  try {
    for await (const { header: h, body } of readTar(stream)) {
      const name = posix.normalize(h.name).replace(/^\.\//, '').replace(/\/$/, '');
      if (name.startsWith('../') || name.startsWith('/')) throw new SaveFormatError(`entry "${h.name}" points outside the archive`);
      const parts = name.split('/');
      const isLegacyLayer = parts.length === 2 && parts[1] === 'layer.tar';
      const blobHex = parts.length === 3 && parts[0] === 'blobs' && parts[1] === 'sha256' ? parts[2]! : undefined;
      if (h.type === 'symlink' && isLegacyLayer) {
        links.set(name, posix.normalize(posix.join(posix.dirname(name), h.linkname)));
      } else if (h.type === 'file' && (isLegacyLayer || (blobHex !== undefined && hooks.isLayerBlob(blobHex)))) {
        layers.set(name, await hooks.layer(name, h.size, body));
      } else if (h.type === 'file' && h.size <= MAX_JSON && (name === 'manifest.json' || /^[a-f0-9]{64}\.json$/.test(name) || blobHex !== undefined)) {
        const bytes = await collect(body, MAX_JSON);
        if (name === 'manifest.json') entries = parseManifest(bytes);
        else {
          const want = blobHex ?? name.slice(0, 64);
          if (sha256Of(bytes) !== `sha256:${want}`) throw new SaveFormatError(`${name} does not match the digest in its name`);
          configs.set(name, bytes);
        }
      }
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw new SaveFormatError(err.message);
    throw err;
  }
  if (!entries) throw new SaveFormatError('the archive has no manifest.json');
  const layerAt = (path: string): DiffId | undefined => {
    let p = posix.normalize(path);
    for (let hops = 0; hops < 8 && !layers.has(p) && links.has(p); hops++) p = links.get(p)!;
    return layers.get(p);
  };
  return { entries, configs, layerAt };
}

function parseManifest(bytes: Buffer): DockerSaveEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SaveFormatError('manifest.json is not JSON');
  }
  if (!Array.isArray(parsed)) throw new SaveFormatError('manifest.json is not a list');
  return parsed.map((e: unknown, i) => {
    const o = e as Partial<DockerSaveEntry>;
    if (typeof o?.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new SaveFormatError(`manifest.json entry ${i} lacks Config or Layers`);
    }
    const tags = Array.isArray(o.RepoTags) ? o.RepoTags.filter((t): t is string => typeof t === 'string') : null;
    return { Config: o.Config, RepoTags: tags, Layers: o.Layers };
  });
}

