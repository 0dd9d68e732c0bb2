// The OCI 1.1 referrers of a digest among the artifacts the bundles carry (signatures, SBOMs, attestations kept
// with an index): each artifact manifest is read once at start, for its subject, artifact type and annotations.
import type { BundleReader } from '../bundle/reader.js';
import { blobPath } from '../bundle/format.js';
import { MAX_MANIFEST_BYTES } from '../image/media-types.js';

interface Referrer {
  subject: string;
  descriptor: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> };
}

export class Referrers {
  private constructor(private readonly all: readonly Referrer[]) {}

  static async read(bundles: readonly BundleReader[]): Promise<Referrers> {
    const out: Referrer[] = [];
    const seen = new Set<string>();
    for (const b of bundles) {
      for (const ix of b.index.indexes ?? []) {
        if (!ix.artifacts?.length) continue;
        // An index may name what an artifact is about in its descriptor (buildx: vnd.docker.reference.digest).
        const listed = (JSON.parse((await b.readBytes(blobPath(ix.digest), MAX_MANIFEST_BYTES)).toString('utf8')) as { manifests?: { digest?: string; annotations?: Record<string, string> }[] }).manifests ?? [];
        for (const d of ix.artifacts) {
          const blob = b.blob(d);
          if (!blob || seen.has(d) || !b.entries.has(blobPath(d))) continue;
          seen.add(d);
          const doc = JSON.parse((await b.readBytes(blobPath(d), MAX_MANIFEST_BYTES)).toString('utf8')) as {
            artifactType?: string;
            config?: { mediaType?: string };
            subject?: { digest?: string };
            annotations?: Record<string, string>;
          };
          const subject = doc.subject?.digest ?? listed.find((m) => m.digest === d)?.annotations?.['vnd.docker.reference.digest'];
          if (typeof subject !== 'string') continue;
          // OCI: with no artifactType, the config's media type says what the artifact is.
          const artifactType = doc.artifactType ?? doc.config?.mediaType;
          out.push({ subject, descriptor: { mediaType: blob.mediaType, digest: d, size: blob.size, ...(artifactType ? { artifactType } : {}), ...(doc.annotations ? { annotations: doc.annotations } : {}) } });
        }
      }
    }
    return new Referrers(out);
  }

  /** of is the referrers index of a digest, filtered by artifact type when asked. */
  of(digest: string, artifactType?: string): unknown {
    const manifests = this.all.filter((r) => r.subject === digest && (!artifactType || r.descriptor.artifactType === artifactType)).map((r) => r.descriptor);
    return { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
  }

  filtered(url: URL): boolean {
    return url.searchParams.has('artifactType');
  }
}
