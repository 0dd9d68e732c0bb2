// verifyBundle: every cross-reference (index.json, manifests, configs, manifest.json, ferry.json), then every
// blob's digest and every layer's diffID after decompression. It collects every fault, each named by entry.
import { isSha256 } from '../image/digest.js';
import type { DockerSaveEntry, ImageConfig, OciIndex, OciManifest } from '../image/model.js';
import { OCI_INDEX } from '../image/media-types.js';
import { formatPlatform } from '../image/platform.js';
import { formatReference, parseReference } from '../image/reference.js';
import type { BlobCheck } from './blob-check.js';
import { checkBlobs } from './blob-check-pool.js';
import { blobPath, DELTA_MEDIA_TYPE, FERRY_INDEX, indexTags, partPath } from './format.js';
import type { BundleReader } from './reader.js';

export interface Fault {
  entry: string;
  problem: string;
}

export interface VerifyReport {
  ok: boolean;
  faults: Fault[];
  images: number;
  blobs: number;
  bytesRead: number;
}

export interface VerifyEvents {
  blob?(info: { done: number; total: number; entry: string }): void;
}

export async function verifyBundle(bundle: BundleReader, events: VerifyEvents = {}, signal?: AbortSignal): Promise<VerifyReport> {
  const faults: Fault[] = [];
  const fault = (entry: string, problem: string): void => void faults.push({ entry, problem });
  await checkReferences(bundle, fault);
  const jobs: BlobCheck[] = [];
  for (const blob of bundle.index.blobs) {
    const entry = bundle.entries.get(blobPath(blob.digest));
    // A blob with no entry was reported by checkReferences; the rest are read from their own byte range only.
    if (entry) jobs.push({ path: bundle.openPath, entry: entry.name, offset: entry.offset, length: entry.size, blob });
  }
  let done = 0;
  let bytesRead = 0;
  await checkBlobs(
    jobs,
    (job, problems) => {
      done++;
      bytesRead += job.length;
      events.blob?.({ done, total: jobs.length, entry: job.entry });
      for (const p of problems) fault(job.entry, p);
    },
    signal,
  );
  faults.sort((a, b) => (bundle.entries.get(a.entry)?.offset ?? -1) - (bundle.entries.get(b.entry)?.offset ?? -1));
  return { ok: faults.length === 0, faults, images: bundle.index.images.length, blobs: jobs.length, bytesRead };
}

/** A hostile bundle may hold millions of faults, quoting long strings: the first MAX_FAULTS are listed, each cut short. */
const MAX_FAULTS = 1000;
const MAX_PROBLEM = 400;

/** checkReferences ties the four indexes together without reading layer content. */
export async function checkReferences(bundle: BundleReader, report: (entry: string, problem: string) => void): Promise<void> {
  let seen = 0;
  let last = '';
  await checkAll(bundle, (entry, problem) => {
    last = entry;
    if (++seen <= MAX_FAULTS) report(entry, problem.length > MAX_PROBLEM ? `${problem.slice(0, MAX_PROBLEM)}…` : problem);
  });
  if (seen > MAX_FAULTS) report(last, `and ${seen - MAX_FAULTS} more fault(s) of the bundle's indexes, not listed`);
}

/** groupBy maps each key to the items that have it, in order (lookups instead of a scan per item: linear in the bundle). */
function groupBy<T>(items: readonly T[], key: (t: T) => unknown): Map<unknown, T[]> {
  const out = new Map<unknown, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return out;
}

/** checkDeltas: each delta's blob is listed as one, and a delta layer is neither stored whole nor its own reference. */
function checkDeltas(idx: BundleReader['index'], fault: (entry: string, problem: string) => void): void {
  const blobs = new Map(idx.blobs.map((b) => [b.digest as string, b]));
  for (const d of idx.deltas ?? []) {
    const what = `delta of layer ${d.diffId}`;
    if (blobs.get(d.blob)?.mediaType !== DELTA_MEDIA_TYPE) fault(FERRY_INDEX, `${what}: its blob ${d.blob} is not listed as a delta`);
    if (blobs.has(d.diffId)) fault(FERRY_INDEX, `${what}: the layer is stored whole too`);
    if (d.references.some((r) => r.diffId === d.diffId)) fault(FERRY_INDEX, `${what}: names itself as a reference`);
    if (new Set(d.references.map((r) => r.diffId)).size !== d.references.length) fault(FERRY_INDEX, `${what}: names a reference twice`);
  }
}

async function checkAll(bundle: BundleReader, fault: (entry: string, problem: string) => void): Promise<void> {
  const idx = bundle.index;
  const relied = groupBy(idx.reliesOn, (r) => r.digest);
  const listed = new Set(idx.blobs.map((b) => blobPath(b.digest)));
  for (const p of idx.parts ?? []) {
    const name = partPath(p.digest, p.part);
    listed.add(name);
    const e = bundle.entries.get(name);
    if (!e) fault(name, 'listed in ferry.json as a piece of a spanning blob but not in the bundle');
    else if (e.size !== p.size) fault(name, `is ${e.size} bytes; ferry.json says ${p.size}`);
  }
  for (const b of idx.blobs) {
    const e = bundle.entries.get(blobPath(b.digest));
    if (!e) fault(blobPath(b.digest), 'listed in ferry.json but not in the bundle');
    else if (e.size !== b.size) fault(e.name, `is ${e.size} bytes, ferry.json says ${b.size}`);
    if (b.diffId && b.uncompressedSize === undefined) fault(FERRY_INDEX, `layer ${b.digest} has no uncompressedSize`);
  }
  for (const name of bundle.entries.keys()) {
    if (name.startsWith('blobs/') && !listed.has(name)) fault(name, 'is in the bundle but not listed in ferry.json');
  }
  checkDeltas(idx, fault);
  for (const name of ['oci-layout', 'index.json', 'manifest.json']) if (!bundle.entries.has(name)) fault(name, 'is missing');

  const readJson = async <T>(name: string): Promise<T | undefined> => {
    if (!bundle.entries.has(name)) return undefined;
    try {
      return (await bundle.readJson(name)) as T;
    } catch (err) {
      fault(name, (err as Error).message.replace(`${bundle.path}: ${name}: `, ''));
      return undefined;
    }
  };
  const oci = await readJson<OciIndex>('index.json');
  const docker = await readJson<DockerSaveEntry[]>('manifest.json');
  const layout = await readJson<{ imageLayoutVersion?: string }>('oci-layout');
  if (layout && layout.imageLayoutVersion !== '1.0.0') fault('oci-layout', 'imageLayoutVersion is not 1.0.0');

  const ociDescs = Array.isArray(oci?.manifests) ? oci!.manifests : [];
  if (oci && !Array.isArray(oci.manifests)) fault('index.json', 'has no manifests list');
  if (oci && (oci.schemaVersion !== 2 || (oci.mediaType !== undefined && oci.mediaType !== OCI_INDEX))) {
    fault('index.json', `is not an OCI image index (schemaVersion ${JSON.stringify(oci.schemaVersion)}, mediaType ${JSON.stringify(oci.mediaType)})`);
  }
  const dockerEntries = Array.isArray(docker) ? docker : [];
  if (docker && !Array.isArray(docker)) fault('manifest.json', 'is not a list');

  const indexes = idx.indexes ?? [];
  const inIndex = new Set(indexes.flatMap((x) => x.images));
  const tagsFromIndexes = indexTags(indexes);
  const descsByDigest = groupBy(ociDescs, (d) => d?.digest);
  const dockerByConfig = groupBy(dockerEntries, (e) => e?.Config);
  const imagesByManifest = groupBy(idx.images, (i) => i.manifest.digest);
  const indexesByDigest = groupBy(indexes, (x) => x.digest);
  // An image is one record however many names it has: a second record of the same manifest is refused, not re-read.
  const firstWith = new Map<string, number>();
  // Every tag manifest.json may give a config: plain `docker load` tags by every entry, not only the first.
  const tagsByConfig = new Map<unknown, Set<unknown>>();
  // Images may share a config (one image, two manifests): each config is read once.
  const configs = new Map<string, { diffIds: unknown[] | undefined; os: unknown; architecture: unknown } | undefined>();
  for (const [i, img] of idx.images.entries()) {
    const where = `${FERRY_INDEX} image ${i + 1} (${img.refs[0] ?? img.imageId.slice(0, 19)})`;
    const first = firstWith.get(img.manifest.digest);
    if (first !== undefined) {
      fault(FERRY_INDEX, `${where}: has the manifest of image ${first + 1} (an image is listed once, with all its names)`);
      continue;
    }
    firstWith.set(img.manifest.digest, i);
    if (img.imageId !== img.config.digest) fault(FERRY_INDEX, `${where}: imageId differs from its config digest`);
    const mBlob = bundle.blob(img.manifest.digest);
    const cBlob = bundle.blob(img.config.digest);
    if (!mBlob) fault(blobPath(img.manifest.digest), `${where}: manifest is not among the bundle's blobs`);
    else if (mBlob.size !== img.manifest.size || mBlob.mediaType !== img.manifest.mediaType) fault(FERRY_INDEX, `${where}: manifest size ${img.manifest.size} or media type differs from its blob record (${mBlob.size} bytes, ${mBlob.mediaType})`);
    if (!cBlob) fault(blobPath(img.config.digest), `${where}: config is not among the bundle's blobs`);
    else if (cBlob.size !== img.config.size || cBlob.mediaType !== img.config.mediaType) fault(FERRY_INDEX, `${where}: config size ${img.config.size} or media type differs from its blob record (${cBlob.size} bytes, ${cBlob.mediaType})`);
    for (const r of img.refs) {
      try {
        parseReference(r);
      } catch {
        fault(FERRY_INDEX, `${where}: invalid reference ${JSON.stringify(r)}`);
      }
    }
    // OCI manifest: config and layers must be what ferry.json says.
    const manifest = mBlob && bundle.entries.has(blobPath(img.manifest.digest)) ? await readJson<OciManifest>(blobPath(img.manifest.digest)) : undefined;
    if (manifest) {
      const mName = blobPath(img.manifest.digest);
      if (manifest.config?.digest !== img.config.digest) fault(mName, `config ${manifest.config?.digest} differs from ferry.json's ${img.config.digest}`);
      else if (manifest.config.size !== img.config.size) fault(mName, `config size ${manifest.config.size} differs from ferry.json's ${img.config.size}`);
      const mLayers = Array.isArray(manifest.layers) ? manifest.layers : [];
      if (mLayers.length !== img.layers.length || mLayers.some((l, k) => l.digest !== img.layers[k]!.digest)) {
        fault(mName, 'layers differ from the ones ferry.json lists for this image');
      }
      for (const l of mLayers) {
        const held = bundle.blob(l.digest as never) ?? relied.get(l.digest)?.[0];
        if (!held) fault(mName, `layer ${l.digest} is neither in the bundle nor listed as relied on`);
        else if (held.size !== l.size || held.mediaType !== l.mediaType) fault(mName, `layer ${l.digest}: size or media type differs from ferry.json`);
      }
    }
    // Config: its diff_ids are the image's layers, in order.
    if (cBlob && bundle.entries.has(blobPath(img.config.digest)) && !configs.has(img.config.digest)) {
      const c = await readJson<ImageConfig>(blobPath(img.config.digest));
      configs.set(img.config.digest, c && { diffIds: Array.isArray(c.rootfs?.diff_ids) ? (c.rootfs!.diff_ids as unknown[]) : undefined, os: c.os, architecture: c.architecture });
    }
    const config = configs.get(img.config.digest);
    if (config) {
      const cName = blobPath(img.config.digest);
      const diffIds = config.diffIds;
      if (!diffIds || !diffIds.every(isSha256)) fault(cName, 'rootfs.diff_ids is missing or malformed');
      else if (diffIds.length !== img.layers.length) fault(cName, `lists ${diffIds.length} layers, the manifest ${img.layers.length}`);
      else if (diffIds.some((d, k) => d !== img.layers[k]!.diffId)) fault(cName, 'rootfs.diff_ids differ from the layers ferry.json lists');
      for (const [k, l] of img.layers.entries()) {
        const b = bundle.blob(l.digest) ?? relied.get(l.digest)?.[0];
        if (b && b.diffId !== l.diffId) fault(blobPath(l.digest), `${where} layer ${k + 1}: diffID differs between image and blob records`);
      }
      if (config.os !== img.platform.os || config.architecture !== img.platform.architecture) fault(cName, `platform ${config.os}/${config.architecture} differs from ferry.json's`);
    }
    // index.json: one descriptor per tag (one unnamed for an untagged image), pointing at this manifest.
    const named = descsByDigest.get(img.manifest.digest) ?? [];
    if (named.length === 0 && !(img.refs.length === 0 && inIndex.has(img.manifest.digest))) fault('index.json', `${where}: no descriptor for manifest ${img.manifest.digest}`);
    const namesGiven = new Set(named.map((d) => d.annotations?.['org.opencontainers.image.ref.name']));
    for (const r of img.refs) {
      if (!namesGiven.has(r)) fault('index.json', `${where}: no descriptor named ${r}`);
    }
    // manifest.json: the docker-save view of the same image.
    const tags = [...img.refs, ...(tagsFromIndexes.get(img.manifest.digest) ?? [])].filter((r) => !r.includes('@')).map(sameTag);
    const tagsOfConfig = tagsByConfig.get(blobPath(img.config.digest)) ?? new Set<unknown>();
    for (const t of tags) tagsOfConfig.add(t);
    tagsByConfig.set(blobPath(img.config.digest), tagsOfConfig);
    const dEntry = dockerByConfig.get(blobPath(img.config.digest))?.[0];
    if (!dEntry) fault('manifest.json', `${where}: no entry with Config ${blobPath(img.config.digest)}`);
    else {
      const paths = img.layers.map((l) => blobPath(l.digest));
      if (!Array.isArray(dEntry.Layers) || dEntry.Layers.length !== paths.length || dEntry.Layers.some((p, k) => p !== paths[k])) {
        fault('manifest.json', `${where}: Layers differ from ferry.json`);
      }
      const got = (Array.isArray(dEntry.RepoTags) ? dEntry.RepoTags : []).map(sameTag);
      const want = new Set(tags);
      if (got.length !== want.size || got.some((t) => !want.has(t))) fault('manifest.json', `${where}: RepoTags differ from ferry.json's references`);
    }
  }
  const checkedArtifacts = new Set<string>();
  for (const [k, ix] of indexes.entries()) {
    const where = `${FERRY_INDEX} index ${k + 1} (${ix.refs[0] ?? ix.digest.slice(0, 19)})`;
    const name = blobPath(ix.digest);
    const blob = bundle.blob(ix.digest);
    if (indexesByDigest.get(ix.digest)![0] !== ix) {
      fault(FERRY_INDEX, `${where}: repeats an earlier index (an index is listed once, with all its names)`);
      continue;
    }
    if (!blob) {
      fault(name, `${where}: is not among the bundle's blobs`);
      continue;
    }
    if (blob.size !== ix.size || blob.mediaType !== ix.mediaType) fault(FERRY_INDEX, `${where}: size or media type differs from its blob record`);
    if (!ix.images.includes(ix.dockerDefault)) fault(FERRY_INDEX, `${where}: dockerDefault is not one of its images`);
    for (const r of ix.refs) {
      try {
        parseReference(r);
      } catch {
        fault(FERRY_INDEX, `${where}: invalid reference ${JSON.stringify(r)}`);
      }
    }
    for (const r of ix.refs) {
      if (!ociDescs.some((d) => d?.digest === ix.digest && d.annotations?.['org.opencontainers.image.ref.name'] === r)) fault('index.json', `${where}: no descriptor named ${r}`);
    }
    const body = bundle.entries.has(name) ? await readJson<OciIndex>(name) : undefined;
    if (!body) continue;
    const listed = Array.isArray(body.manifests) ? body.manifests : [];
    const expected = new Set<string>([...ix.images, ...(ix.artifacts ?? [])]);
    if (listed.length !== expected.size || listed.some((d) => !expected.has(d?.digest))) fault(name, `${where}: lists other manifests than ferry.json says`);
    for (const a of ix.artifacts ?? []) {
      if (checkedArtifacts.has(a)) continue;
      checkedArtifacts.add(a);
      const aName = blobPath(a);
      const body = bundle.blob(a) && bundle.entries.has(aName) ? await readJson<OciManifest>(aName) : undefined;
      if (!body) {
        fault(aName, `${where}: artifact manifest is not in the bundle`);
        continue;
      }
      for (const b of [body.config, ...(Array.isArray(body.layers) ? body.layers : [])]) {
        const held = b && bundle.blob(b.digest as never);
        if (!held || held.size !== b.size) fault(aName, `artifact blob ${b?.digest} is not in the bundle as described`);
      }
    }
    for (const d of listed) {
      if ((ix.artifacts ?? []).includes(d?.digest as never)) continue;
      const img = imagesByManifest.get(d?.digest)?.[0];
      if (!img) fault(name, `manifest ${d?.digest} is not an image ferry.json lists`);
      else if (d.size !== img.manifest.size) fault(name, `manifest ${d.digest} has size ${d.size}, ferry.json says ${img.manifest.size}`);
    }
  }
  for (const d of ociDescs) {
    const ix = indexesByDigest.get(d?.digest)?.[0];
    if (ix) {
      if (d.size !== ix.size) fault('index.json', `descriptor ${d.digest} has size ${d.size}, ferry.json says ${ix.size}`);
      if (d.mediaType !== ix.mediaType) fault('index.json', `descriptor ${d.digest} has media type ${JSON.stringify(d.mediaType)}, ferry.json says ${ix.mediaType}`);
      for (const key of ['org.opencontainers.image.ref.name', 'io.containerd.image.name']) {
        const name: unknown = d.annotations?.[key];
        if (name !== undefined && (typeof name !== 'string' || !ix.refs.includes(name))) fault('index.json', `descriptor ${d.digest} is named ${JSON.stringify(name)} (${key}), a name ferry.json does not give that index`);
      }
      continue;
    }
    const img = imagesByManifest.get(d?.digest)?.[0];
    if (!img) {
      fault('index.json', `descriptor ${d?.digest} is not an image ferry.json lists`);
      continue;
    }
    if (d.size !== img.manifest.size) fault('index.json', `descriptor ${d.digest} has size ${d.size}, ferry.json says ${img.manifest.size}`);
    if (d.mediaType !== img.manifest.mediaType) fault('index.json', `descriptor ${d.digest} has media type ${JSON.stringify(d.mediaType)}, ferry.json says ${img.manifest.mediaType}`);
    // Readers that pick by platform (containerd, skopeo) go by the descriptor's: it must be the image's.
    const p = d.platform;
    if (p?.os !== img.platform.os || p?.architecture !== img.platform.architecture || p?.variant !== img.platform.variant) {
      fault('index.json', `descriptor ${d.digest} gives platform ${JSON.stringify(p)}, ferry.json says ${formatPlatform(img.platform)}`);
    }
    // Every name index.json gives an image is one ferry.json gives it: other readers (skopeo, containerd) go by these.
    for (const key of ['org.opencontainers.image.ref.name', 'io.containerd.image.name']) {
      const name: unknown = d.annotations?.[key];
      if (name !== undefined && (typeof name !== 'string' || !img.refs.includes(name))) {
        fault('index.json', `descriptor ${d.digest} is named ${JSON.stringify(name)} (${key}), a name ferry.json does not give that image`);
      }
    }
  }
  const configPaths = groupBy(idx.images, (i) => blobPath(i.config.digest));
  for (const e of dockerEntries) {
    if (!configPaths.has(e?.Config)) fault('manifest.json', `entry ${JSON.stringify(e?.Config)} is not an image ferry.json lists`);
    else {
      for (const t of Array.isArray(e.RepoTags) ? e.RepoTags : []) {
        if (!tagsByConfig.get(e.Config)?.has(sameTag(t))) fault('manifest.json', `entry ${JSON.stringify(e.Config)} is tagged ${JSON.stringify(t)}, a name ferry.json does not give that image`);
      }
    }
  }
  for (const [config, entries] of dockerByConfig) {
    const images = configPaths.get(config)?.length ?? 0;
    if (images && entries.length > images) fault('manifest.json', `${entries.length} entries have Config ${JSON.stringify(config)}, ferry.json has ${images} image(s) with it`);
  }
}

/**
 * sameTag is a RepoTags entry in one form whichever ferry wrote: full references today, docker's short ones before
 * (docker load reads both alike). Anything that is not a reference stays as it is, and matches no image.
 */
function sameTag(t: unknown): unknown {
  if (typeof t !== 'string') return t;
  try {
    return formatReference(parseReference(t));
  } catch {
    return t;
  }
}
