// lookup: what a name means in a bundle: a multi-platform index by reference, or an image by reference or image ID.
import { formatReference, parseReference } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import type { BundleImage, BundleImageIndex, BundleIndex } from './format.js';

export type Found = { kind: 'index'; index: BundleImageIndex; refs: string[] } | { kind: 'image'; image: BundleImage; refs: string[] };

/**
 * lookup finds a name (normalised like docker's) or an image ID prefix of 12 or more hex digits. refs are the
 * references the name selects: the one named, or every one an image has when it was named by ID.
 */
export function lookup(bundle: BundleIndex, name: string): Found {
  let full: string | undefined;
  try {
    full = formatReference(parseReference(name));
  } catch {
    full = undefined;
  }
  if (full !== undefined) {
    const index = (bundle.indexes ?? []).find((x) => x.refs.includes(full!));
    if (index) return { kind: 'index', index, refs: [full] };
    const image = bundle.images.find((i) => i.refs.includes(full!));
    if (image) return { kind: 'image', image, refs: [full] };
  }
  const id = name.replace(/^sha256:/, '');
  const image = /^[a-f0-9]{12,64}$/.test(id) ? bundle.images.find((i) => i.imageId.startsWith(`sha256:${id}`)) : undefined;
  if (image) return { kind: 'image', image, refs: [...image.refs] };
  throw new FerryError('USAGE', `the bundle holds no image "${name}"`, { hint: 'see what it holds with `ferry inspect BUNDLE`' });
}
