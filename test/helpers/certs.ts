// Certificates and keys for tests (TLS proxies, token signing, a daemon behind --tlsverify), made by the openssl CLI
// into a temp dir: self-signed, or a CA and the server and client certificates it signs.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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

export interface Authority {
  /** The CA's certificate (PEM file), what clients and daemons are told to trust. */
  certFile: string;
  keyFile: string;
}

/** certAuthority makes an EC P-256 CA (basicConstraints CA:TRUE, as `openssl req -x509` writes). */
export function certAuthority(dir: string, name: string): Authority {
  const certFile = join(dir, `${name}-ca.pem`);
  const keyFile = join(dir, `${name}-ca-key.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name} CA`]);
  return { certFile, keyFile };
}

/** signedCert makes a key and a certificate the CA signs: for a server (SAN localhost, 127.0.0.1) or a client. */
export function signedCert(dir: string, ca: Authority, name: string, use: 'server' | 'client'): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, use === 'server' ? 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', ext]);
  return { certFile, keyFile };
}

function openssl(args: string[]): void {
  execFileSync(which('openssl') ?? 'openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
