// containerd's image records: a name pointing at a manifest or index descriptor, with labels.
import { isAlreadyExists, isNotFound, type Rpc } from './rpc.js';
import { toDate, type Descriptor, type ImageRecord, type Labels, type Timestamp } from './types.js';

const IMAGES = 'containerd.services.images.v1.Images';

interface WireImage {
  name: string;
  labels: Labels;
  target: Descriptor | null;
  createdAt: Timestamp | null;
  updatedAt: Timestamp | null;
}

export interface NewImage {
  name: string;
  target: Descriptor;
  labels?: Labels;
}

function toRecord(i: WireImage): ImageRecord {
  const t = i.target ?? { mediaType: '', digest: '', size: 0 };
  return {
    name: i.name,
    target: { mediaType: t.mediaType, digest: t.digest, size: t.size, ...(t.annotations && Object.keys(t.annotations).length ? { annotations: { ...t.annotations } } : {}) },
    labels: { ...i.labels },
    createdAt: toDate(i.createdAt),
    updatedAt: toDate(i.updatedAt),
  };
}

const wire = (img: { name: string; target?: Descriptor; labels?: Labels }): object => ({ name: img.name, labels: img.labels ?? {}, ...(img.target ? { target: img.target } : {}) });

export class ImageService {
  constructor(private readonly rpc: Rpc) {}

  async get(name: string, signal?: AbortSignal): Promise<ImageRecord | undefined> {
    try {
      const res = await this.rpc.unary<{ image: WireImage | null }>(IMAGES, 'Get', { name }, `image ${name}`, signal);
      return res.image ? toRecord(res.image) : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** list returns the namespace's images; filters use containerd's syntax (e.g. `name==docker.io/library/x:1`). */
  async list(filters: readonly string[] = [], signal?: AbortSignal): Promise<ImageRecord[]> {
    const res = await this.rpc.unary<{ images: WireImage[] }>(IMAGES, 'List', { filters }, 'image list', signal);
    return res.images.map(toRecord);
  }

  /**
   * create records an image; an existing name is pointed at the new target instead (as `ctr import` does),
   * the given labels set on it and its other labels kept.
   */
  async create(img: NewImage, signal?: AbortSignal): Promise<ImageRecord> {
    try {
      const res = await this.rpc.unary<{ image: WireImage }>(IMAGES, 'Create', { image: wire(img) }, `image create ${img.name}`, signal);
      return toRecord(res.image);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return this.update(img, signal);
    }
  }

  /** update changes what is given: the target as a whole, and each given label (an empty value removes it). */
  async update(img: { name: string; target?: Descriptor; labels?: Labels }, signal?: AbortSignal): Promise<ImageRecord> {
    const paths = [...(img.target ? ['target'] : []), ...Object.keys(img.labels ?? {}).map((k) => `labels.${k}`)];
    // An empty mask would replace the whole record, dropping what was not given.
    if (!paths.length) throw new TypeError(`nothing to update on image ${img.name}`);
    const res = await this.rpc.unary<{ image: WireImage }>(IMAGES, 'Update', { image: wire(img), updateMask: { paths } }, `image update ${img.name}`, signal);
    return toRecord(res.image);
  }

  /** delete removes the record (not its content; containerd's GC collects what nothing references). */
  async delete(name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.rpc.unary<object>(IMAGES, 'Delete', { name }, `image delete ${name}`, signal);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
