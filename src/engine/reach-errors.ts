// reachError: why a connection to the Docker daemon failed, in words that say what to check: nothing listening, a
// certificate ferry does not trust, a daemon that wants (or refused) a client certificate, TLS spoken to plain HTTP.
import { FerryError } from '../ui/errors.js';
import type { EngineEndpoint } from './endpoint.js';

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/** Node's codes for a server certificate that does not verify. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** OpenSSL's alerts from a server that will not take the client's certificate (or the lack of one). */
const CLIENT_REFUSED = /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|DECRYPT_ERROR|HANDSHAKE_FAILURE)$/;

const CLIENT_CERT_HINT =
  'a daemon started with --tlsverify takes only clients whose certificate its CA signed: put that cert.pem and key.pem in DOCKER_CERT_PATH (default ~/.docker), name them with --tlscert and --tlskey, or use a Docker context that has them';

export function reachError(err: unknown, endpoint: EngineEndpoint): Error {
  if (err instanceof FerryError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return e;
  const code = String(e?.code ?? '');
  const where = `the Docker daemon at ${endpoint.host}${endpoint.from === 'the default' ? '' : ` (named by ${endpoint.from})`}`;
  const tls = endpoint.tls;
  if (tls && UNTRUSTED.has(code)) {
    return new FerryError('DAEMON_UNREACHABLE', `${where} presented a certificate ferry does not trust: ${e.message} (${code})`, {
      hint: `give the CA that signed the daemon's certificate: ca.pem in DOCKER_CERT_PATH (default ~/.docker), --tlscacert, or the context's ca.pem${tls.ca ? '; the one given did not sign it' : ''}`,
      cause: err,
    });
  }
  if (tls && CLIENT_REFUSED.test(code)) {
    return new FerryError('DAEMON_UNREACHABLE', `${where} refused the TLS connection: ${tls.cert ? "it does not accept ferry's client certificate" : 'it requires a client certificate, and none was given'} (${code})`, {
      hint: CLIENT_CERT_HINT,
      cause: err,
    });
  }
  if (tls && (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')) {
    return new FerryError('DAEMON_UNREACHABLE', `${where} does not answer TLS (${code}): it is likely plain HTTP on that port`, {
      hint: "use the daemon's TLS port (2376 by convention), or drop TLS: unset DOCKER_TLS_VERIFY and DOCKER_TLS, no --tls/--tlsverify",
      cause: err,
    });
  }
  // A daemon that ends the handshake without a word undici passes on (dockerd's TLS 1.3 alert arrives as a close).
  if (tls && code === 'UND_ERR_SOCKET') {
    const why = tls.cert ? "it likely does not accept ferry's client certificate (one its CA did not sign)" : 'it likely requires a client certificate, and none was given';
    return new FerryError('DAEMON_UNREACHABLE', `${where} closed the TLS connection: ${why}`, { hint: CLIENT_CERT_HINT, cause: err });
  }
  if (UNREACHABLE.has(code)) {
    const by = endpoint.from === 'the default' ? '' : `, named by ${endpoint.from}`;
    return new FerryError('DAEMON_UNREACHABLE', `cannot reach the Docker daemon at ${endpoint.host} (${code})${by}`, {
      hint: 'is dockerd running? point ferry at it with -H or DOCKER_HOST (unix:///path/docker.sock, tcp://host:2375) or a Docker context (--context, DOCKER_CONTEXT), and check you may use it',
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}
