// bundle:FILE[:REF]: images from a ferry bundle, to take a subset of it or merge several into one. The bundle is
// opened by BundleReader (hostile bundles are refused as `ferry verify` refuses them); manifests, configs and
// layers travel byte for byte, so every digest holds.
import { MAX_MANIFEST_BYTES } from '../image/media-types.js';
import { BundleReader } from '../bundle/reader.js';
import { blobPath, type BundleIndex } from '../bundle/format.js';
import { lookup } from '../bundle/lookup.js';
import { isSha256, type Digest } from '../image/digest.js';
import { familiarReference, parseReference } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import { splitLocation } from './location.js';
import { ManifestStoreSource, type Located, type ManifestStore } from './manifest-store.js';
import type { BlobDescriptor, KeptManifest } from '../image/descriptor.js';

export const BUNDLE_TRANSPORT = 'bundle:';


/** BundleStore is an opened bundle as a ManifestStore: every manifest and blob is an entry blobs/sha256/HEX. */
class BundleStore implements ManifestStore {
  readonly where: string;

  constructor(readonly reader: BundleReader) {
    this.where = `bundle:${reader.path}`;
  }

  async manifest(ref: string): Promise<KeptManifest> {
    if (!isSha256(ref)) throw new Error(`BundleStore.manifest: ${ref} is not a digest`);
    if (!this.reader.entries.has(blobPath(ref))) throw this.lacks(ref);
    const bytes = await this.reader.readBytes(blobPath(ref), MAX_MANIFEST_BYTES);
    return { bytes, mediaType: this.reader.blob(ref as Digest)?.mediaType ?? '', digest: ref as Digest };
  }

  async blob(desc: BlobDescriptor): Promise<AsyncIterable<Buffer>> {
    if (!this.reader.entries.has(blobPath(desc.digest))) throw this.lacks(desc.digest);
    return this.reader.stream(blobPath(desc.digest));
  }

  async close(): Promise<void> {
    await this.reader.close();
  }

  private lacks(digest: string): FerryError {
    const relied = this.reader.index.reliesOn.find((r) => r.digest === digest);
    if (relied) {
      return new FerryError('RUNTIME', `${this.where} does not hold layer ${digest}: it is a thin bundle that relies on it${relied.carriedBy ? ` (carried by bundle ${relied.carriedBy})` : ''}`, {
        hint: 'take these images from a full bundle, or from the bundle that carried the layer',
      });
    }
    return new FerryError('BUNDLE_INVALID', `${this.where} lacks blob ${digest}`, { hint: 'run `ferry verify` on it; copy it again from the source' });
  }
}

/**
 * bundleSource reads images from ferry bundles named bundle:FILE[:REF]. Without REF a name means every image and
 * kept index of the bundle (images reached only through an index come with it); with REF, what `ferry load`
 * would take for it: an index or image by reference, or an image by ID prefix.
 */
export function bundleSource(): ManifestStoreSource {
  const stores = new Map<string, Promise<BundleStore>>();
  const locate = async (asked: string): Promise<Located[]> => {
    const { location, ref } = splitLocation(asked, BUNDLE_TRANSPORT);
    let opened = stores.get(location);
    if (!opened) stores.set(location, (opened = BundleReader.open(location).then((r) => new BundleStore(r))));
    const store = await opened;
    const index = store.reader.index;
    if (index.deltas?.length) {
      throw new FerryError('USAGE', `${location} carries ${index.deltas.length} layer(s) as deltas, which ferry rebuilds only where their references are (a load or push)`, {
        hint: 'load or push it first and pack from there, or pack the images again from their source',
      });
    }
    const at = (digest: Digest, refs: string[]): Located => {
      const pin = refs.find((r) => r.includes('@'));
      return { store, ref: digest, refs: [...refs], ...(pin ? { repository: pin.slice(0, pin.indexOf('@')) } : {}) };
    };
    if (ref === undefined) {
      const inIndex = new Set((index.indexes ?? []).flatMap((ix) => ix.images));
      const located = [
        ...index.images.filter((img) => img.refs.length > 0 || !inIndex.has(img.manifest.digest)).map((img) => at(img.manifest.digest, img.refs)),
        ...(index.indexes ?? []).map((ix) => at(ix.digest, ix.refs)),
      ];
      if (located.length === 0) throw new FerryError('IMAGE_NOT_FOUND', `${store.where} holds no images`);
      return located;
    }
    let found;
    try {
      found = lookup(index, ref);
    } catch (err) {
      if (!(err instanceof FerryError)) throw err;
      throw new FerryError('IMAGE_NOT_FOUND', `${store.where} holds no image "${ref}" (it holds: ${holdings(index)})`, {
        hint: 'name an image by one of its references or by image ID (12 or more hex digits); `ferry inspect` lists them',
      });
    }
    return [found.kind === 'index' ? at(found.index.digest, found.refs) : at(found.image.manifest.digest, found.refs)];
  };
  return new ManifestStoreSource('bundle', locate, async () => {
    const opened = await Promise.allSettled(stores.values());
    stores.clear();
    await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
  });
}

/** holdings names what a bundle holds, briefly: its references, and its untagged images by ID. */
function holdings(index: BundleIndex): string {
  const familiar = (r: string): string => {
    try {
      return familiarReference(parseReference(r));
    } catch {
      return r;
    }
  };
  const named = [...new Set([...(index.indexes ?? []).flatMap((ix) => ix.refs), ...index.images.flatMap((i) => i.refs)])].map(familiar);
  const inIndex = new Set((index.indexes ?? []).flatMap((ix) => ix.images));
  const untagged = index.images.filter((i) => i.refs.length === 0 && !inIndex.has(i.manifest.digest)).map((i) => `untagged ${i.imageId.slice(7, 19)}`);
  const all = [...named, ...untagged];
  return all.length > 12 ? `${all.slice(0, 12).join(', ')}, … (${all.length} in all)` : all.join(', ') || 'no images';
}
