// oci:DIR[:REF]: images from an OCI image layout directory (as `skopeo copy … oci:DIR:TAG` writes one), kept
// byte for byte. Every file read must resolve inside DIR, symbolic links included.
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { FerryError } from '../ui/errors.js';
import type { ManifestStoreSource } from './manifest-store.js';
import { invalid, layoutSource, type LayoutFiles, type LayoutSourceOptions } from './oci-layout-store.js';

export const OCI_TRANSPORT = 'oci:';

/** DirFiles reads a layout's files from a directory; nothing is held open between reads. */
class DirFiles implements LayoutFiles {
  readonly where: string;

  private constructor(private readonly root: string) {
    this.where = `oci:${root}`;
  }

  static async open(dir: string): Promise<DirFiles> {
    let root: string;
    try {
      root = await realpath(dir);
      if (!(await stat(root)).isDirectory()) {
        throw new FerryError('USAGE', `oci:${dir} is not a directory`, { hint: `for an OCI layout in a tar file, write oci-archive:${dir}` });
      }
    } catch (err) {
      if (err instanceof FerryError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new FerryError('USAGE', `cannot read OCI layout oci:${dir}: ${code === 'ENOENT' ? 'no such directory' : code}`, { hint: 'check the path' });
    }
    return new DirFiles(root);
  }

  /** path gives a file's real path, undefined if absent; one that leads out of the layout is refused. */
  private async path(name: string): Promise<string | undefined> {
    let real: string;
    try {
      real = await realpath(join(this.root, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new FerryError('RUNTIME', `${this.where}: cannot read ${name}: ${(err as Error).message}`);
    }
    if (!real.startsWith(this.root + sep)) throw invalid(this.where, `${name} leads outside the layout (to ${real})`);
    if (!(await stat(real)).isFile()) throw invalid(this.where, `${name} is not a regular file`);
    return real;
  }

  async read(name: string, cap: number): Promise<Buffer | undefined> {
    const p = await this.path(name);
    if (!p) return undefined;
    if ((await stat(p)).size > cap) throw invalid(this.where, `${name} is larger than the ${cap} bytes it may have`);
    return readFile(p);
  }

  async stream(name: string): Promise<AsyncIterable<Buffer> | undefined> {
    const p = await this.path(name);
    return p === undefined ? undefined : createReadStream(p, { highWaterMark: 1 << 20 });
  }

  async exists(name: string): Promise<boolean> {
    return (await this.path(name)) !== undefined;
  }

  async close(): Promise<void> {}
}

/** ociLayoutSource reads images from OCI layout directories, named oci:DIR[:REF]. */
export function ociLayoutSource(opts: LayoutSourceOptions = {}): ManifestStoreSource {
  return layoutSource('oci', OCI_TRANSPORT, (dir) => DirFiles.open(dir), opts);
}
