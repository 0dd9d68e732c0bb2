// The OCI and docker JSON shapes ferry reads and writes (index, manifest, config, docker-save manifest). Pure.

/** The parts of an image config (docker's and OCI's) ferry reads. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs?: { type?: string; diff_ids?: unknown };
}

export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: OciDescriptor[];
}

/** One entry of a docker-save manifest.json. */
export interface DockerSaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}
