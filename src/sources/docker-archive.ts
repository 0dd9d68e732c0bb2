// DockerArchiveSource: images from a `docker save` file (docker-archive:FILE[:REF]), in the legacy
// <id>/layer.tar form or Docker 25's OCI-shaped one. manifest.json comes last in a legacy save, so the file is
// indexed by walking its tar headers by offset; then only the layers the sink lacks are read, each by byte range.
import { sha256Of, type DiffId, type Digest } from '../image/digest.js';
import type { ImageConfig } from '../image/model.js';
import type { Compression } from '../image/media-types.js';
import type { Platform } from '../image/platform.js';
import { familiarReference, formatReference, parseReference, ReferenceError } from '../image/reference.js';
import { decompress, DecompressError } from '../stream/decompress.js';
import { FerryError } from '../ui/errors.js';
import { splitLocation } from './location.js';
import type { ExportedImage, ImageSource, LayerSink, Resolved, ResolveOptions, SourceImage } from './source.js';
import { TarArchive } from './tar-archive.js';

export const DOCKER_ARCHIVE_TRANSPORT = 'docker-archive:';

const MAX_JSON = 16 << 20;
const IMAGE_ID = /^(sha256:)?[a-f0-9]{12,64}$/;

/** SavedImage is one manifest.json entry, its config read and checked. */
interface SavedImage {
  tar: TarArchive;
  id: Digest;
  /** Its RepoTags, docker-normalised. */
  refs: string[];
  platform: Platform;
  diffIds: DiffId[];
  /** Archive paths of its layers, base first. */
  layers: string[];
  config: Buffer;
  size: number;
}

export class DockerArchiveSource implements ImageSource {
  readonly transport = 'docker-archive';
  private readonly archives = new Map<string, Promise<SavedImage[]>>();
  private readonly opened: TarArchive[] = [];
  private readonly held = new Map<string, SavedImage>();

  /**
   * resolve reads manifest.json and the configs, never a layer. Without REF a name means every image in the
   * file, under its RepoTags; with REF, the image tagged REF (or `@N`, the Nth of manifest.json, or an image ID).
   */
  async resolve(names: readonly string[], opts: ResolveOptions = {}): Promise<Resolved> {
    const byId = new Map<string, SourceImage>();
    for (const asked of names) {
      opts.signal?.throwIfAborted();
      const { location, ref } = splitLocation(asked, DOCKER_ARCHIVE_TRANSPORT);
      const saved = await this.open(location);
      for (const { image, refs } of pick(`${DOCKER_ARCHIVE_TRANSPORT}${location}`, saved, ref)) {
        const known = byId.get(image.id);
        if (known) for (const r of refs) !known.refs.includes(r) && known.refs.push(r);
        else byId.set(image.id, { asked, refs: [...refs], id: image.id, platform: image.platform, diffIds: image.diffIds, size: image.size, layerSizes: image.layers.map((l) => image.tar.size(l)) });
        this.held.set(image.id, image);
      }
    }
    return { images: [...byId.values()], indexes: [] };
  }

  /** export hands over, uncompressed, each layer the sink does not have yet, and checks it hashes to its diffID. */
  async export(images: readonly SourceImage[], sink: LayerSink, signal?: AbortSignal): Promise<ExportedImage[]> {
    const out: ExportedImage[] = [];
    for (const img of images) {
      const saved = this.held.get(img.id);
      if (!saved) throw new Error(`DockerArchiveSource.export: ${img.asked} was not resolved by this source`);
      for (const [i, path] of saved.layers.entries()) {
        const want = saved.diffIds[i]!;
        if (sink.has(want)) continue;
        signal?.throwIfAborted();
        const got = await sink.put(await layerBody(saved.tar, path), { size: saved.tar.size(path) });
        if (got !== want) {
          throw new FerryError('RUNTIME', `${saved.tar.where}: layer ${path} hashes to ${got}, but the config of image ${img.id} says ${want}`, {
            hint: 'the archive is damaged or was altered; save it again',
          });
        }
      }
      out.push({ ...img, config: saved.config });
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.archives.values());
    this.archives.clear();
    await Promise.all(this.opened.splice(0).map((t) => t.close()));
  }

  private open(file: string): Promise<SavedImage[]> {
    let p = this.archives.get(file);
    if (!p) {
      p = (async () => {
        const tar = await TarArchive.open(file, {
          where: `${DOCKER_ARCHIVE_TRANSPORT}${file}`,
          what: 'a docker-save archive',
          hint: 'make one with `docker save -o FILE IMAGE…`',
          linksAllowed: () => true,
        });
        this.opened.push(tar);
        return readArchive(tar);
      })();
      this.archives.set(file, p);
    }
    return p;
  }
}

/** readArchive reads manifest.json and every config it names, and checks layers and diffIDs line up. */
async function readArchive(tar: TarArchive): Promise<SavedImage[]> {
  const where = tar.where;
  if (!tar.has('manifest.json')) {
    const oci = tar.has('index.json') && tar.has('oci-layout');
    throw new FerryError('USAGE', `${where} is not a docker-save archive: it has no manifest.json`, {
      hint: oci ? `it is an OCI layout: name it oci-archive:${tar.path}` : 'make one with `docker save -o FILE IMAGE…`',
    });
  }
  const entries = parseJson(await tar.read('manifest.json', MAX_JSON), where, 'manifest.json');
  if (!Array.isArray(entries)) throw invalid(where, 'manifest.json is not a list');
  const out: SavedImage[] = [];
  for (const [i, raw] of entries.entries()) {
    const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof e?.Config !== 'string' || !Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === 'string')) {
      throw invalid(where, `manifest.json entry ${i + 1} lacks Config or Layers`);
    }
    if (!tar.has(e.Config)) throw invalid(where, `manifest.json names config ${e.Config}, which the archive lacks`);
    const config = await tar.read(e.Config, MAX_JSON);
    const id = sha256Of(config);
    const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(e.Config)?.[1];
    if (named !== undefined && id !== `sha256:${named}`) throw invalid(where, `${e.Config} does not match the digest in its name (it hashes to ${id})`);
    const cfg = parseJson(config, where, e.Config) as ImageConfig;
    const diffIds = Array.isArray(cfg?.rootfs?.diff_ids) ? (cfg.rootfs.diff_ids as unknown[]) : [];
    if (!diffIds.every((d) => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d)) || diffIds.length !== e.Layers.length) {
      throw invalid(where, `${e.Config} lists ${diffIds.length} layer diffIDs for the ${e.Layers.length} layers manifest.json gives it`);
    }
    const layers = e.Layers as string[];
    for (const l of layers) if (!tar.has(l)) throw invalid(where, `manifest.json names layer ${l}, which the archive lacks`);
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags : [];
    const refs = tags.map((t) => {
      try {
        return formatReference(parseReference(String(t)));
      } catch (err) {
        throw invalid(where, `manifest.json entry ${i + 1} has a tag that is no reference: ${(err as ReferenceError).message}`);
      }
    });
    out.push({
      tar,
      id,
      refs,
      platform: { os: cfg.os ?? 'linux', architecture: cfg.architecture ?? 'amd64', ...(cfg.variant ? { variant: cfg.variant } : {}) },
      diffIds: diffIds as DiffId[],
      layers,
      config,
      size: layers.reduce((s, l) => s + tar.size(l), 0),
    });
  }
  return out;
}

/** pick finds what ref names in an archive: everything (no ref), `@N`, an image ID prefix, or a tag. */
function pick(where: string, saved: readonly SavedImage[], ref: string | undefined): { image: SavedImage; refs: string[] }[] {
  if (ref === undefined) return saved.map((image) => ({ image, refs: image.refs }));
  const index = /^@(\d+)$/.exec(ref);
  if (index) {
    const image = saved[Number(index[1])];
    if (!image) throw notFound(where, saved, ref);
    return [{ image, refs: image.refs }];
  }
  if (IMAGE_ID.test(ref)) {
    const id = `sha256:${ref.replace(/^sha256:/, '')}`;
    const image = saved.find((s) => s.id.startsWith(id));
    if (image) return [{ image, refs: image.refs }];
  }
  let full: string;
  try {
    full = formatReference(parseReference(ref));
  } catch (err) {
    throw new FerryError('USAGE', `${where}:${ref}: ${(err as ReferenceError).message}`, { hint: 'name an image by its tag (nginx:1.27), its image ID, or @N for the Nth in the archive' });
  }
  const image = saved.find((s) => s.refs.includes(full));
  if (!image) throw notFound(where, saved, ref);
  return [{ image, refs: [full] }];
}

function notFound(where: string, saved: readonly SavedImage[], ref: string): FerryError {
  const holds = saved.map((s) => (s.refs.length ? s.refs.map((r) => familiarReference(parseReference(r))).join(', ') : `untagged ${s.id.slice(7, 19)}`));
  return new FerryError('IMAGE_NOT_FOUND', `${where} holds no image "${ref}" (it holds: ${holds.join('; ') || 'no images'})`, {
    hint: 'name an image by one of its tags, its image ID, or @N for the Nth in the archive',
  });
}

/** layerBody streams a layer as an uncompressed tar: docker load accepts gzip and zstd layers too, and so does ferry. */
async function layerBody(tar: TarArchive, path: string): Promise<AsyncIterable<Buffer>> {
  const head = await tar.head(path, 4);
  const compression: Compression =
    head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : 'none';
  const body = tar.stream(path);
  if (compression === 'none') return body;
  return (async function* () {
    try {
      yield* decompress(body, compression, Number.MAX_SAFE_INTEGER);
    } catch (err) {
      if (err instanceof DecompressError) throw new FerryError('RUNTIME', `${tar.where}: layer ${path}: ${err.message}`, { hint: 'the archive is damaged; save it again' });
      throw err;
    }
  })();
}

function parseJson(bytes: Buffer, where: string, name: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(where, `${name} is not valid JSON`);
  }
}

function invalid(where: string, what: string): FerryError {
  return new FerryError('RUNTIME', `${where}: ${what}`, { hint: 'the archive is damaged or was not written by `docker save`' });
}
