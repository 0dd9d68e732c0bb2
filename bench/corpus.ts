// The bench corpus: which images on which package layers, built into a dockerd by import and FROM + ADD/COPY only.
import { createHash } from 'node:crypto';
import type { Dockerd } from '../test/helpers/dockerd.js';
import { build } from '../test/helpers/dockerd.js';
import type { Base } from './base.js';
import type { LayerSpec, PackageLayer } from './packages.js';

/** Package layers, each resolved against the layers below it (so a package lands in the lowest layer that needs it). */
export const LAYERS: LayerSpec[] = [
  { name: 'python', packages: ['python3', 'python3-pip', 'python3-venv'] },
  { name: 'sci', parent: 'python', packages: ['python3-numpy', 'python3-pandas', 'python3-lxml', 'python3-pil'] },
  { name: 'web', parent: 'sci', packages: ['python3-flask', 'python3-requests', 'python3-sqlalchemy', 'python3-psycopg2', 'gunicorn'] },
  { name: 'build', packages: ['build-essential', 'git', 'pkg-config', 'perl'] },
  { name: 'jre', packages: ['openjdk-17-jre-headless'] },
];

export interface ImageSpec {
  tag: string;
  /** The top package layer; none means the bare base. */
  top?: string;
  /** A small application layer (generated source files) on top, by version. */
  app?: string;
  cmd: string;
}

export const IMAGES: ImageSpec[] = [
  { tag: 'bench/debian:bookworm', cmd: 'bash' },
  { tag: 'bench/python:3.11', top: 'python', cmd: 'python3' },
  { tag: 'bench/pyapp:1.0', top: 'web', app: '1.0', cmd: 'gunicorn' },
  { tag: 'bench/pyapp:1.1', top: 'web', app: '1.1', cmd: 'gunicorn' },
  { tag: 'bench/builder:12', top: 'build', cmd: 'bash' },
  { tag: 'bench/jre:17', top: 'jre', cmd: 'java' },
];

/** appFiles makes a deterministic Python source tree of about 2 MB, different for each version. */
export function appFiles(version: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (let m = 0; m < 240; m++) {
    const lines: string[] = [`"""app ${version}: module ${m}."""`, 'import json', 'import logging', ''];
    for (let f = 0; f < 40; f++) {
      const h = createHash('sha256').update(`${version}/${m}/${f}`).digest('hex');
      lines.push(`def handler_${h.slice(0, 10)}(request, limit=${parseInt(h.slice(10, 14), 16)}):`);
      lines.push(`    """Serve ${h.slice(14, 30)} for ${h.slice(30, 40)}."""`);
      lines.push(`    data = json.loads(request.body or "{}")`);
      lines.push(`    logging.info("handling %s", "${h.slice(40, 56)}")`);
      lines.push(`    return {"id": "${h.slice(0, 24)}", "n": min(len(data), limit)}`, '');
    }
    files[`srv/app/pkg${Math.floor(m / 40)}/mod${m}.py`] = lines.join('\n');
  }
  files['srv/app/VERSION'] = `${version}\n`;
  return files;
}

/** appDockerfile is how every application image is built, so a rebuild (bench/incremental.ts) differs only in its files. */
export const appDockerfile = (from: string, img: ImageSpec): string =>
  `FROM ${from}\n${img.app ? 'COPY srv/ /srv/\nWORKDIR /srv/app\n' : ''}CMD ["${img.cmd}"]\n`;

export interface Corpus {
  /** Every image's tag, to pack. */
  tags: string[];
  /** The image ID of each package layer by name, for images built later on the same layers. */
  layerImages: ReadonlyMap<string, string>;
}

/** buildCorpus imports the base and builds every image into d. */
export async function buildCorpus(d: Dockerd, base: Base, layers: readonly PackageLayer[]): Promise<Corpus> {
  const baseSpec = IMAGES.find((i) => !i.top && !i.app)!;
  const baseId = (await d.docker(['import', '--change', `CMD ["${baseSpec.cmd}"]`, base.rootfsTar, baseSpec.tag])).trim();
  const ids = new Map<string, string>();
  for (const l of layers) {
    const from = l.parent ? ids.get(l.parent)! : baseId;
    const id = (await d.docker(['build', '-q', '-f', '-', l.context], { input: Buffer.from(`FROM ${from}\nADD rootfs.tar /\n`) })).trim();
    ids.set(l.name, id);
  }
  for (const img of IMAGES) {
    if (!img.top) continue;
    await build(d, img.tag, appDockerfile(ids.get(img.top)!, img), img.app ? appFiles(img.app) : {});
  }
  return { tags: IMAGES.map((i) => i.tag), layerImages: ids };
}
