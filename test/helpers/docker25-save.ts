// Docker 25's OCI-shaped `docker save`, made from a legacy one (Docker 20.10 here cannot write it): blobs under
// blobs/sha256 (uncompressed layers, configs, OCI manifests), index.json naming each tag as Docker 25 does
// (full name for containerd, bare tag for OCI), and manifest.json whose Config and Layers point into blobs/.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Docker25Save {
  /** The layout as a directory (also an oci:DIR). */
  dir: string;
  /** The same as a tar, entries named blobs/…, index.json, … */
  tar: string;
  /** The same as a tar made with `tar -C dir -cf FILE .`: every name starts with ./ */
  dotTar: string;
  /** Manifest digest of each image, by image ID. */
  manifests: Map<string, string>;
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function docker25Save(legacyTar: string, work: string): Promise<Docker25Save> {
  const legacy = await mkdtemp(join(work, 'legacy-'));
  await exec('tar', ['-xf', legacyTar, '-C', legacy]);
  const dir = await mkdtemp(join(work, 'd25-'));
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  const put = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = sha(bytes);
    await writeFile(join(dir, 'blobs/sha256', digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const entries = JSON.parse(await readFile(join(legacy, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[] | null; Layers: string[] }[];
  const manifestJson: unknown[] = [];
  const descriptors: unknown[] = [];
  const manifests = new Map<string, string>();
  for (const e of entries) {
    const config = await put(await readFile(join(legacy, e.Config)));
    const layers = [];
    for (const l of e.Layers) layers.push(await put(await readFile(join(legacy, l))));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
      }),
    );
    const m = await put(manifest);
    manifests.set(config.digest, m.digest);
    const base = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m };
    if (!e.RepoTags?.length) descriptors.push(base);
    for (const tag of e.RepoTags ?? []) {
      const full = tag.includes('/') ? `docker.io/${tag}` : `docker.io/library/${tag}`;
      descriptors.push({ ...base, annotations: { 'io.containerd.image.name': full, 'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1) } });
    }
    manifestJson.push({ Config: `blobs/sha256/${config.digest.slice(7)}`, RepoTags: e.RepoTags, Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) });
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: descriptors }));
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifestJson));
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await rm(legacy, { recursive: true, force: true });
  const tar = `${dir}.tar`;
  const dotTar = `${dir}.dot.tar`;
  await exec('tar', ['-C', dir, '-cf', tar, 'blobs', 'index.json', 'manifest.json', 'oci-layout']);
  await exec('tar', ['-C', dir, '-cf', dotTar, '.']);
  return { dir, tar, dotTar, manifests };
}
