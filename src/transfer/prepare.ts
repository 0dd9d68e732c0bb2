// prepare: a bundle's image or index as a target gets it: config and manifest read and checked, each layer in the
// wanted form (a manifest whose layers were converted is rewritten, and so is an index over it).
import { blobPath, type BundleImage, type BundleImageIndex } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { chainIds, sha256Of, type Digest } from '../image/digest.js';
import type { BlobDescriptor } from '../image/descriptor.js';
import { compressionOf, MAX_MANIFEST_BYTES } from '../image/media-types.js';
import type { OciIndex, OciManifest } from '../image/model.js';
import type { BlobToWrite, ImageTarget, ImageToPut, IndexToPut, LayerToPut } from '../targets/target.js';
import { bundleError } from '../ui/errors.js';
import type { LayerForms } from './layer-forms.js';

export interface PreparedImage {
  image: BundleImage;
  put: ImageToPut;
  /** Layers the target gets as another blob than the bundle's, by diffID. */
  storedAs: Map<string, BlobDescriptor>;
}

const MAX_CONFIG_BYTES = 16 << 20;

/**
 * prepareImage reads an image's config (checked against its ID) and manifest. Layers the target holds are neither
 * opened nor written, except that a layer converted to gzip is always written: the target may hold the bundle's
 * form, but the manifest will name the converted one.
 */
export async function prepareImage(
  bundle: BundleReader,
  forms: LayerForms,
  target: ImageTarget,
  { image, names, within }: { image: BundleImage; names: string[]; within: string[] },
  heldBy: ReadonlyMap<BundleImage, boolean[]>,
): Promise<PreparedImage> {
  const held = heldBy.get(image) ?? image.layers.map(() => false);
  const config = await bundle.readBytes(blobPath(image.config.digest), MAX_CONFIG_BYTES);
  if (sha256Of(config) !== image.imageId) throw bundleError(bundle.path, blobPath(image.config.digest), `content does not match its digest; ${forms.stopped}`);
  const manifestBytes = await bundle.readBytes(blobPath(image.manifest.digest), MAX_MANIFEST_BYTES);
  if (sha256Of(manifestBytes) !== image.manifest.digest) throw bundleError(bundle.path, blobPath(image.manifest.digest), `content does not match its digest; ${forms.stopped}`);
  const relied = new Map(bundle.index.reliesOn.map((r) => [r.digest as string, r]));
  const chains = chainIds(image.layers.map((l) => l.diffId));
  // Conversions of all the image's layers start at once (a few run at a time, see LayerForms.gzip).
  const converting = image.layers.map((l) => {
    const b = bundle.blob(l.digest);
    return b && target.layerForm(b.mediaType) === 'gzip' && compressionOf(b.mediaType) !== 'gzip' ? forms.gzip(b, image.manifest.mediaType) : undefined;
  });
  converting.forEach((c) => c?.catch(() => undefined));
  const storedAs = new Map<string, BlobDescriptor>();
  const layers: LayerToPut[] = [];
  const writes: BlobToWrite[] = [];
  let rewritten: OciManifest | undefined;
  for (const [i, l] of image.layers.entries()) {
    const blob = bundle.blob(l.digest);
    const named = blob ?? relied.get(l.digest);
    let as: BlobDescriptor | undefined = named && { digest: named.digest, size: named.size, mediaType: named.mediaType };
    const gz = await converting[i];
    if (gz) {
      as = { digest: gz.digest, size: gz.size, mediaType: gz.mediaType };
      storedAs.set(l.diffId, as);
      rewritten ??= JSON.parse(manifestBytes.toString('utf8')) as OciManifest;
      rewritten.layers[i] = { ...rewritten.layers[i]!, ...as };
      writes.push(gz);
    } else if (blob && !held[i]) writes.push(forms.stored(blob, target.unpacksStored === true));
    layers.push({
      diffId: l.diffId,
      chainId: chains[i]!,
      uncompressedSize: named?.uncompressedSize ?? 0,
      held: held[i]!,
      blob: as,
      tar: () => forms.tar(blob, l.digest),
    });
  }
  const bytes = rewritten ? Buffer.from(JSON.stringify(rewritten)) : manifestBytes;
  const manifest = { mediaType: image.manifest.mediaType, digest: rewritten ? sha256Of(bytes) : image.manifest.digest, size: bytes.length, bytes };
  const configBlob = forms.stored({ ...image.config });
  return {
    image,
    storedAs,
    put: {
      imageId: image.imageId,
      platform: image.platform,
      names,
      within,
      config: { ...image.config, bytes: config },
      manifest,
      layers,
      blobs: async () => [...writes, configBlob],
    },
  };
}

/** prepareIndex reads an index (rewritten when its images' manifests changed) and the artifacts it carries. */
export async function prepareIndex(bundle: BundleReader, forms: LayerForms, index: BundleImageIndex, names: string[], member: (image: BundleImage) => Promise<PreparedImage>): Promise<IndexToPut> {
  const byDigest = new Map(bundle.index.images.map((i) => [i.manifest.digest as string, i]));
  const images = await Promise.all(index.images.map((d) => member(byDigest.get(d)!)));
  let bytes = await bundle.readBytes(blobPath(index.digest), MAX_MANIFEST_BYTES);
  if (sha256Of(bytes) !== index.digest) throw bundleError(bundle.path, blobPath(index.digest), `content does not match its digest; ${forms.stopped}`);
  const changed = images.filter((p) => p.put.manifest.digest !== p.image.manifest.digest);
  if (changed.length) {
    const body = JSON.parse(bytes.toString('utf8')) as OciIndex;
    for (const d of body.manifests) {
      const p = changed.find((c) => c.image.manifest.digest === d.digest);
      if (p) Object.assign(d, { digest: p.put.manifest.digest, size: p.put.manifest.size });
    }
    bytes = Buffer.from(JSON.stringify(body));
  }
  const artifacts: IndexToPut['artifacts'] = [];
  for (const a of index.artifacts ?? []) {
    const body = await bundle.readBytes(blobPath(a), MAX_MANIFEST_BYTES);
    const m = JSON.parse(body.toString('utf8')) as OciManifest;
    const blobs = [m.config, ...(m.layers ?? [])].map((b) => forms.stored({ digest: b.digest as Digest, size: b.size, mediaType: b.mediaType }));
    artifacts.push({ manifest: { mediaType: bundle.blob(a)!.mediaType, digest: a, size: body.length, bytes: body }, blobs });
  }
  return { names, manifest: { mediaType: index.mediaType, digest: changed.length ? sha256Of(bytes) : index.digest, size: bytes.length, bytes }, images: images.map((p) => p.put), artifacts };
}
