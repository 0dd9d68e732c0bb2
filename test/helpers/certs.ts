// Self-signed certificates and keys for tests (TLS proxies, token signing), made by the openssl CLI into a temp dir.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { which } from './tools.js';

export interface SelfSigned {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** selfSigned makes an EC P-256 key and a self-signed certificate for localhost and 127.0.0.1 (it is its own CA). */
export function selfSigned(dir: string, name: string, cn = 'localhost'): SelfSigned {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    which('openssl') ?? 'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
