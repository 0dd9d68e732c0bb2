// Media types ferry reads and writes (OCI image-spec and Docker's). Pure constants.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

export type Compression = 'zstd' | 'gzip' | 'none';

export function layerMediaType(c: Compression): string {
  return c === 'zstd' ? OCI_LAYER_ZSTD : c === 'gzip' ? OCI_LAYER_GZIP : OCI_LAYER_TAR;
}

/** compressionOf maps a layer media type to how its bytes are compressed; undefined if unknown. */
export function compressionOf(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case OCI_LAYER_ZSTD:
      return 'zstd';
    case OCI_LAYER_GZIP:
    case DOCKER_LAYER_GZIP:
      return 'gzip';
    case OCI_LAYER_TAR:
    case DOCKER_LAYER_TAR:
      return 'none';
    default:
      return undefined;
  }
}

/** Every manifest type a registry may answer with that ferry reads: images and indexes, OCI and Docker v2. */
export const MANIFEST_TYPES: readonly string[] = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST];

/** Registries refuse manifests above 4 MiB; anything larger that claims to be one is not read. */
export const MAX_MANIFEST_BYTES = 4 << 20;

export function isIndexType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

export function isImageManifestType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
