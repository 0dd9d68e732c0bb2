// recogniseNotBundle: what a file that failed to open as a bundle really is (a `docker save` archive, an OCI
// archive, an inventory or receipt, a compressed file…), so the error names it and says how to go on, instead of
// reporting a "truncated bundle at offset 0". Asked only after the bundle walk failed; undefined: no better answer.
import type { FileHandle } from 'node:fs/promises';
import { BLOCK } from '../tar/header.js';
import { walkTarFile } from '../tar/offset-walk.js';
import { FerryError } from '../ui/errors.js';
import { FERRY_INDEX } from './format.js';

const SNIFF = 64 << 10;

export async function recogniseNotBundle(fh: FileHandle, path: string): Promise<FerryError | undefined> {
  const head = Buffer.alloc(SNIFF);
  const { bytesRead } = await fh.read(head, 0, SNIFF, 0);
  const start = head.subarray(0, bytesRead);
  if (bytesRead === 0) return undefined;
  // A tar header has "ustar" at 257: a damaged first header of a real tar is the walk's to report, not ours, and so
  // is a file cut inside its first header, unless its first bytes say what else it is.
  if (bytesRead < BLOCK) return notTar(start, path, false);
  if (start.toString('latin1', 257, 262) !== 'ustar') return notTar(start, path, true);
  const names = await tarNames(fh);
  if (!names || names.has(FERRY_INDEX)) return undefined;
  if (names.has('manifest.json')) {
    return notBundle(path, 'a `docker save` archive (manifest.json, no ferry.json)', `pack it into a bundle with \`ferry pack docker-archive:${path} -o NAME.ferry.tar\`, or load it as it is with \`docker load -i ${path}\``);
  }
  if (names.has('oci-layout') && names.has('index.json')) {
    return notBundle(path, 'an OCI image layout archive (oci-layout and index.json, no ferry.json)', `pack it into a bundle with \`ferry pack oci-archive:${path} -o NAME.ferry.tar\``);
  }
  return undefined;
}

/** tarNames lists a tar's entry names without any of the bundle's rules; undefined if it is not a whole tar. */
async function tarNames(fh: FileHandle): Promise<Set<string> | undefined> {
  const names = new Set<string>();
  try {
    await walkTarFile(fh, {
      kind: 'tar',
      gnuLongNames: true,
      fail: (_entry, what) => new Error(what),
      visit: (e) => {
        names.add(e.name.replace(/^\.\//, ''));
        return undefined;
      },
    });
  } catch {
    return undefined;
  }
  return names;
}

/** notTar names a file by its first bytes: a JSON document (an inventory or receipt, say), a compressed file, or else (if orElse). */
function notTar(head: Buffer, path: string, orElse: boolean): FerryError | undefined {
  const bundleHint = 'give the bundle file itself (NAME.ferry.tar, as `ferry pack` writes it)';
  const magic: [number[], string, string][] = [
    [[0x1f, 0x8b], 'gzip-compressed', `decompress it first (\`gunzip -k ${path}\`); ferry reads bundles uncompressed`],
    [[0x28, 0xb5, 0x2f, 0xfd], 'zstd-compressed', `decompress it first (\`zstd -d ${path}\`); ferry reads bundles uncompressed`],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz-compressed', `decompress it first (\`xz -dk ${path}\`); ferry reads bundles uncompressed`],
    [[0x42, 0x5a, 0x68], 'bzip2-compressed', `decompress it first (\`bunzip2 -k ${path}\`); ferry reads bundles uncompressed`],
    [[0x50, 0x4b, 0x03, 0x04], 'a zip archive', bundleHint],
    [[0x7f, 0x45, 0x4c, 0x46], 'an executable (ELF)', bundleHint],
  ];
  for (const [bytes, what, hint] of magic) if (bytes.every((b, i) => head[i] === b)) return notBundle(path, what, hint);
  const text = head.toString('utf8').trimStart();
  if (text.startsWith('{') || text.startsWith('[')) {
    const doc = /application\/vnd\.ferry\.(inventory|receipt|bundle)\.v[^"+]*\+json/.exec(text)?.[1];
    if (doc === 'inventory' || doc === 'receipt') {
      return notBundle(path, `a ferry ${doc} (JSON)`, `${doc === 'inventory' ? 'an inventory says what a site holds' : 'a receipt says what a load or push left at a site'}: use it with \`ferry pack --have ${path}\`, \`ferry verify BUNDLE --have ${path}\` or \`ferry site import ${path}\`; ${bundleHint}`);
    }
    if (doc === 'bundle') return notBundle(path, "a bundle's ferry.json taken out of it (JSON)", bundleHint);
    return notBundle(path, 'a JSON document', bundleHint);
  }
  return orElse ? notBundle(path, 'not a tar archive (no tar header at its start)', bundleHint) : undefined;
}

function notBundle(path: string, what: string, hint: string): FerryError {
  return new FerryError('BUNDLE_INVALID', `${path} is not a ferry bundle: it is ${what}`, { hint });
}
