// oci-archive:FILE[:REF]: images from an OCI image layout in a tar file (as `skopeo copy … oci-archive:FILE`
// writes one). Headers are walked once by offset; each blob is then read by byte range, never extracted.
import type { ManifestStoreSource } from './manifest-store.js';
import { layoutSource, type LayoutFiles, type LayoutSourceOptions } from './oci-layout-store.js';
import { TarArchive } from './tar-archive.js';

export const OCI_ARCHIVE_TRANSPORT = 'oci-archive:';

const LAYOUT_NAME = /^(oci-layout|index\.json|blobs\/.*)$/;

class ArchiveFiles implements LayoutFiles {
  readonly where: string;

  constructor(private readonly tar: TarArchive) {
    this.where = `oci-archive:${tar.path}`;
  }

  read(name: string, cap: number): Promise<Buffer | undefined> {
    return this.tar.has(name) ? this.tar.read(name, cap) : Promise.resolve(undefined);
  }

  async stream(name: string): Promise<AsyncIterable<Buffer> | undefined> {
    return this.tar.has(name) ? this.tar.stream(name) : undefined;
  }

  async exists(name: string): Promise<boolean> {
    return this.tar.has(name);
  }

  close(): Promise<void> {
    return this.tar.close();
  }
}

/** ociArchiveSource reads images from OCI layouts in tar files, named oci-archive:FILE[:REF]. */
export function ociArchiveSource(opts: LayoutSourceOptions = {}): ManifestStoreSource {
  const open = async (file: string): Promise<LayoutFiles> =>
    new ArchiveFiles(
      await TarArchive.open(file, {
        where: `oci-archive:${file}`,
        what: 'an OCI archive',
        hint: `for an OCI layout directory, write oci:${file}`,
        // Links where a layout's files belong are refused: read by offset, they would be empty or point anywhere.
        linksAllowed: (name) => !LAYOUT_NAME.test(name),
      }),
    );
  return layoutSource('oci-archive', OCI_ARCHIVE_TRANSPORT, open, opts);
}
