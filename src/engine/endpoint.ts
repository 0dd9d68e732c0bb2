// Which Docker daemon to talk to, and how, chosen as the docker CLI chooses (cli/command/cli.go): --context, else
// -H, else DOCKER_HOST, else DOCKER_CONTEXT, else config.json's currentContext, else the default socket; TLS from the
// context's files, or for the default context from --tls/--tlsverify/--tlscacert/--tlscert/--tlskey,
// DOCKER_TLS/DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { FerryError } from '../ui/errors.js';
import { DEFAULT_CONTEXT, currentContext, dockerConfigDir, readContext } from './docker-contexts.js';

export interface EngineTls {
  /** PEM; absent: the system's certificate authorities. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false: TLS without checking the daemon's certificate (--tls alone, a context's SkipTLSVerify). */
  verify: boolean;
}

export interface EngineEndpoint {
  /** unix:///path/docker.sock or tcp://host:port. */
  host: string;
  /** Set for a tcp host spoken to over TLS. */
  tls?: EngineTls;
  /** Where the host came from, for messages: "-H", "DOCKER_HOST", `context "x" (DOCKER_CONTEXT)`, "the default". */
  from: string;
}

/** The docker CLI's connection flags, as given (undefined: not given). */
export interface EndpointFlags {
  host?: string | string[];
  context?: string;
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

const DEFAULT_SOCKET = 'unix:///var/run/docker.sock';
const HOST_HINT = 'use unix:///path/to/docker.sock or tcp://host:port (ssh://, npipe:// and fd:// are not supported)';

/** resolveEndpoint picks the daemon and its TLS settings from flags, environment and docker's config files. */
export function resolveEndpoint(flags: EndpointFlags = {}, env: NodeJS.ProcessEnv = process.env): EngineEndpoint {
  if (Array.isArray(flags.host) && flags.host.length > 1) throw new FerryError('USAGE', `specify only one -H (given: ${flags.host.join(', ')})`, { hint: 'ferry talks to one Docker daemon per run' });
  // An empty -H is no -H, as an empty DOCKER_HOST is none (docker falls back to its default for both).
  const hostFlag = (Array.isArray(flags.host) ? flags.host[0] : flags.host)?.trim() || undefined;
  if (flags.context !== undefined && hostFlag !== undefined) {
    throw new FerryError('USAGE', 'conflicting options: cannot specify both --host and --context', { hint: 'give one: -H names a daemon, --context a stored one' });
  }
  const envHost = env.DOCKER_HOST?.trim() ? env.DOCKER_HOST.trim() : undefined;
  const configDir = dockerConfigDir(env);
  const chosen =
    flags.context !== undefined ? { name: flags.context, from: '--context' }
    : hostFlag !== undefined || envHost !== undefined ? { name: DEFAULT_CONTEXT, from: '' }
    : env.DOCKER_CONTEXT ? { name: env.DOCKER_CONTEXT, from: 'DOCKER_CONTEXT' }
    : { name: currentContext(configDir) ?? DEFAULT_CONTEXT, from: `current in ${join(configDir, 'config.json')}` };
  if (chosen.name === DEFAULT_CONTEXT) return defaultEndpoint(flags, hostFlag, envHost, env, configDir);
  const ctx = readContext(configDir, chosen.name, chosen.from);
  const from = `Docker context "${ctx.name}" (${chosen.from})`;
  const host = parseHost(ctx.host, `the host of ${from}`);
  const hasTls = ctx.tls.ca !== undefined || ctx.tls.cert !== undefined || ctx.tls.key !== undefined;
  if (!host.startsWith('tcp://') || (!hasTls && !ctx.skipTlsVerify)) return { host, from };
  return { host, from, tls: tlsChecked({ ...ctx.tls, verify: !ctx.skipTlsVerify }, `the TLS files of ${from}`) };
}

/** defaultEndpoint is docker's "default" context: -H or DOCKER_HOST, TLS from the flags and environment. */
function defaultEndpoint(flags: EndpointFlags, hostFlag: string | undefined, envHost: string | undefined, env: NodeJS.ProcessEnv, configDir: string): EngineEndpoint {
  const verify = flags.tlsverify ?? Boolean(env.DOCKER_TLS_VERIFY);
  // As docker: --tlsverify given at all, even =false, means TLS; DOCKER_TLS or --tls without verifying.
  const tls = flags.tlsverify !== undefined || verify || (flags.tls ?? Boolean(env.DOCKER_TLS));
  const from = hostFlag !== undefined ? '-H' : envHost !== undefined ? 'DOCKER_HOST' : 'the default';
  const given = hostFlag ?? envHost;
  const host = given === undefined ? (tls ? 'tcp://localhost:2376' : DEFAULT_SOCKET) : parseHost(given, from === '-H' ? '--host' : 'DOCKER_HOST');
  if (!tls || !host.startsWith('tcp://')) return { host, from };
  const certPath = env.DOCKER_CERT_PATH || configDir;
  const why = flags.tlsverify !== undefined || flags.tls !== undefined ? (verify ? '--tlsverify' : '--tls') : verify ? 'DOCKER_TLS_VERIFY' : 'DOCKER_TLS';
  const file = (flag: string | undefined, name: string, needed: boolean): Buffer | undefined => {
    const path = flag ?? join(certPath, name);
    // Files not named by a flag are optional, as docker's: a client certificate only where the daemon asks for one.
    if (flag === undefined && !needed && !isFile(path)) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new FerryError('USAGE', `${why} is set but ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
        hint: 'put ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH (default ~/.docker), or name them with --tlscacert, --tlscert and --tlskey',
      });
    }
  };
  const ca = file(flags.tlscacert, 'ca.pem', verify);
  const cert = file(flags.tlscert, 'cert.pem', false);
  const key = file(flags.tlskey, 'key.pem', false);
  return { host, from, tls: tlsChecked({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), verify }, why) };
}

/**
 * tlsChecked refuses a client certificate without its key (or the reverse), and files that are not PEM or do not
 * match, here rather than as an OpenSSL error at the first connection.
 */
function tlsChecked(tls: EngineTls, what: string): EngineTls {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new FerryError('USAGE', `${what}: a client ${tls.cert ? 'certificate without its key' : 'key without its certificate'}`, { hint: 'give both cert.pem and key.pem (--tlscert and --tlskey), or neither' });
  }
  try {
    createSecureContext({ ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) });
  } catch (err) {
    throw new FerryError('USAGE', `${what}: the TLS files do not load (${(err as Error).message})`, {
      hint: 'ca.pem and cert.pem must be PEM certificates, key.pem the unencrypted PEM key of cert.pem',
    });
  }
  return tls;
}

/** parseHost normalises a daemon address as docker does (opts.ParseHost): tcp://host:port (2375 by default) or unix://path. */
export function parseHost(value: string, what: string): string {
  const text = value.trim();
  const sep = text.indexOf('://');
  const proto = sep < 0 ? 'tcp' : text.slice(0, sep);
  const rest = sep < 0 ? text : text.slice(sep + 3);
  if (proto === 'unix') return `unix://${rest || '/var/run/docker.sock'}`;
  if (proto !== 'tcp' && proto !== 'http') throw new FerryError('USAGE', `unsupported ${what} "${value}"`, { hint: HOST_HINT });
  let url: URL;
  try {
    url = new URL(`tcp://${rest}`);
  } catch {
    throw new FerryError('USAGE', `${what} "${value}" is not a host and port`, { hint: HOST_HINT });
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.username) {
    throw new FerryError('USAGE', `${what} "${value}": ferry takes only a host and port`, { hint: HOST_HINT });
  }
  return `tcp://${url.hostname || 'localhost'}:${url.port || '2375'}`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
