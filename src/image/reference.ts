// Image references normalised as docker does: nginx -> docker.io/library/nginx:latest. Pure.

export interface ImageRef {
  /** Registry host, with port if any: docker.io, registry.local:5000. */
  domain: string;
  /** Repository path below the domain: library/nginx, team/app. */
  path: string;
  tag?: string;
  /** Manifest digest when the reference pins one (name@sha256:...). */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export class ReferenceError extends Error {}

/** parseReference normalises a docker reference; it throws ReferenceError with the reason. */
export function parseReference(input: string): ImageRef {
  const s = input.trim();
  if (s === '' || s.length > 1024) throw new ReferenceError(`invalid reference "${input}": empty or too long`);
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(`invalid reference "${input}": digest must be sha256:<64 lowercase hex>`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(`invalid reference "${input}": bad tag "${tag}"`);
  }
  const parts = rest.split('/');
  let domain = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    parts.shift();
    if (!DOMAIN.test(domain)) throw new ReferenceError(`invalid reference "${input}": bad registry host "${domain}"`);
  }
  if (domain === 'index.docker.io' || domain === 'registry-1.docker.io') domain = 'docker.io';
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) {
    throw new ReferenceError(`invalid reference "${input}": repository names are lowercase letters, digits and separators (. _ __ -)`);
  }
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  const path = parts.join('/');
  if (/^[a-f0-9]{64}$/.test(path.replace(/^library\//, '')) && domain === 'docker.io' && !tag && !digest) {
    throw new ReferenceError(`invalid reference "${input}": a 64-character hex string is an image ID, not a name`);
  }
  if (domain.length + path.length + 1 > 255) throw new ReferenceError(`invalid reference "${input}": name longer than 255 characters`);
  if (!tag && !digest) tag = 'latest';
  return { domain, path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** repository returns domain/path, the part before tag and digest. */
export function repository(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

/** formatReference returns the full normalised form: docker.io/library/nginx:1.27. */
export function formatReference(r: ImageRef): string {
  return `${repository(r)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** familiarReference returns the short form docker prints: nginx:1.27, team/app:2. */
export function familiarReference(r: ImageRef): string {
  let repo = repository(r);
  if (r.domain === 'docker.io') repo = r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice(8) : r.path;
  return `${repo}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}
