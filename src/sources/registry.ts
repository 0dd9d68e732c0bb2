// RegistrySource: images from an OCI distribution registry (`docker://host/repo:tag`), pulled byte for byte
// through the distribution client; picking platforms and checking digests is ManifestStoreSource's job.
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { formatReference, parseReference, ReferenceError, repository } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';
import { ManifestStoreSource, type Located, type ManifestStore } from './manifest-store.js';
import type { BlobDescriptor, KeptManifest } from '../image/descriptor.js';

export const DOCKER_TRANSPORT = 'docker://';

/** RepositoryStore is one repository of a registry, seen as a ManifestStore. */
class RepositoryStore implements ManifestStore {
  readonly where: string;
  /** The client checks every pulled blob's digest and size. */
  readonly checksBlobs = true;

  constructor(
    private readonly client: RegistryClient,
    private readonly repo: string,
  ) {
    this.where = `docker://${client.registry}/${repo}`;
  }

  manifest(ref: string, signal?: AbortSignal): Promise<KeptManifest> {
    return this.client.getManifest(this.repo, ref, signal);
  }

  blob(desc: BlobDescriptor, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    return this.client.blob(this.repo, desc.digest, desc.size, signal);
  }
}

/** registryOptionsFor lets one set of flags give each registry its own options (e.g. --insecure-registry HOST). */
export type RegistryOptionsFor = (registry: string) => RegistryOptions;

export function registrySource(optionsFor: RegistryOptionsFor): ManifestStoreSource {
  const clients = new Map<string, RegistryClient>();
  const clientFor = (registry: string): RegistryClient => {
    let c = clients.get(registry);
    if (!c) clients.set(registry, (c = new RegistryClient(registry, optionsFor(registry))));
    return c;
  };
  const locate = async (asked: string): Promise<Located[]> => {
    const name = asked.startsWith(DOCKER_TRANSPORT) ? asked.slice(DOCKER_TRANSPORT.length) : asked;
    let ref;
    try {
      ref = parseReference(name);
    } catch (err) {
      throw new FerryError('USAGE', (err as ReferenceError).message, { hint: 'name registry images as docker://registry.example/team/app:2.4 or docker://nginx@sha256:…' });
    }
    const repo = repository(ref);
    const { digest, ...tagged } = ref;
    return [
      {
        store: new RepositoryStore(clientFor(ref.domain), ref.path),
        ref: digest ?? ref.tag ?? 'latest',
        // A reference with both tag and digest travels under the tag; the digest is what is fetched.
        refs: [digest && !ref.tag ? `${repo}@${digest}` : formatReference(tagged)],
        repository: repo,
      },
    ];
  };
  const onKnownHost = (name: string): boolean => {
    try {
      return clients.has(parseReference(name).domain);
    } catch {
      return false;
    }
  };
  return new ManifestStoreSource(
    'docker',
    locate,
    async () => {
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
    onKnownHost,
  );
}
