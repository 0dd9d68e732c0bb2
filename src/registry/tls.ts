// TLS material for a registry from a docker-style certs.d directory: extra CAs (*.crt) and client pairs (*.cert + *.key).
import { readdir, readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { FerryError } from '../ui/errors.js';

export interface TlsMaterial {
  /** system roots plus the host's own CAs: docker adds to the system pool, it does not replace it */
  ca?: (string | Buffer)[];
  cert?: Buffer;
  key?: Buffer;
}

export function certsDirRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? (env.FERRY_CERTS_D && env.FERRY_CERTS_D !== '' ? env.FERRY_CERTS_D : '/etc/docker/certs.d');
}

/** loadCertsDir reads ROOT/REGISTRY (host:port when there is a port); undefined when that directory is absent or holds nothing usable. */
export async function loadCertsDir(root: string, registry: string): Promise<TlsMaterial | undefined> {
  const dir = join(root, registry.replace(/[/\\]/g, '_'));
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new FerryError('REGISTRY_UNREACHABLE', `cannot read the certificates for ${registry} in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const cas = await Promise.all(names.filter((n) => n.endsWith('.crt')).map((n) => readFile(join(dir, n))));
  const certs = names.filter((n) => n.endsWith('.cert'));
  if (certs.length > 1) throw new FerryError('REGISTRY_UNREACHABLE', `${dir} holds several client certificates (${certs.join(', ')}); ferry uses one`);
  const material: TlsMaterial = {};
  if (cas.length > 0) material.ca = [...rootCertificates, ...cas];
  const certName = certs[0];
  if (certName !== undefined) {
    const keyName = `${certName.slice(0, -'.cert'.length)}.key`;
    if (!names.includes(keyName)) throw new FerryError('REGISTRY_UNREACHABLE', `client certificate ${join(dir, certName)} has no key ${keyName} beside it`);
    material.cert = await readFile(join(dir, certName));
    material.key = await readFile(join(dir, keyName));
  } else if (names.some((n) => n.endsWith('.key'))) {
    throw new FerryError('REGISTRY_UNREACHABLE', `${dir} holds a client key without a certificate (*.cert) to go with it`);
  }
  return material.ca || material.cert ? material : undefined;
}
