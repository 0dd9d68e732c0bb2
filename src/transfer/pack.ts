// pack: the pipeline from a source into a new bundle. Resolve names, stream every layer once into the
// writer (hashed and compressed as it passes), record the images, commit; on any failure nothing is left.
import type { BundleWriter } from '../bundle/writer.js';
import type { BundleIndex } from '../bundle/format.js';
import type { ImageSource, SourceImage } from '../sources/source.js';

export interface PackEvents {
  resolved?(images: readonly SourceImage[]): void;
  layer?(info: { diffId: string; size: number; uncompressedSize: number; repeat: boolean; done: number; total: number }): void;
}

/** packImages writes images into writer and commits it; the writer is aborted (temp file removed) on failure. */
export async function packImages(
  source: ImageSource,
  images: readonly SourceImage[],
  writer: BundleWriter,
  events: PackEvents = {},
  signal?: AbortSignal,
): Promise<BundleIndex> {
  try {
    const total = new Set(images.flatMap((i) => i.diffIds)).size;
    let done = 0;
    const exported = await source.export(
      images,
      {
        has: (d) => writer.layer(d) !== undefined,
        put: async (body) => {
          const l = await writer.addLayer(body);
          if (!l.repeat) done++;
          events.layer?.({ diffId: l.diffId, size: l.size, uncompressedSize: l.uncompressedSize, repeat: l.repeat, done, total });
          return l.diffId;
        },
      },
      signal,
    );
    for (const img of exported) {
      await writer.addImage({ refs: img.refs, platform: img.platform, config: img.config, diffIds: img.diffIds });
    }
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
