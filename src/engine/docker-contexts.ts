// Docker contexts as the docker CLI stores them (`docker context create/use`): the current one named in config.json,
// each context's endpoint in contexts/meta/<sha256 of name>/meta.json, its TLS files in contexts/tls/<sha256>/docker/.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../ui/errors.js';

/** The context that stands for DOCKER_HOST and the TLS flags (docker's own name for it). */
export const DEFAULT_CONTEXT = 'default';

export interface StoredContext {
  name: string;
  host: string;
  skipTlsVerify: boolean;
  /** PEM files kept with the context; each may be absent. */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** dockerConfigDir is where the docker CLI keeps config.json and contexts: $DOCKER_CONFIG, else ~/.docker. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : join(homedir(), '.docker');
}

/** currentContext reads `currentContext` from config.json (set by `docker context use`); undefined when none. */
export function currentContext(configDir: string): string | undefined {
  const file = join(configDir, 'config.json');
  const text = readOptional(file);
  if (text === undefined) return undefined;
  let config: { currentContext?: unknown };
  try {
    config = JSON.parse(text) as { currentContext?: unknown };
  } catch (err) {
    throw new FerryError('USAGE', `${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix or remove the file (docker reads it too)' });
  }
  return typeof config.currentContext === 'string' && config.currentContext !== '' ? config.currentContext : undefined;
}

/** readContext reads one stored context's Docker endpoint; a context that does not exist is a usage error. */
export function readContext(configDir: string, name: string, from: string): StoredContext {
  const id = createHash('sha256').update(name).digest('hex');
  const metaFile = join(configDir, 'contexts', 'meta', id, 'meta.json');
  const text = readOptional(metaFile);
  if (text === undefined) {
    throw new FerryError('USAGE', `Docker context "${name}" (${from}) does not exist: no ${metaFile}`, {
      hint: 'list contexts with `docker context ls`; create one with `docker context create NAME --docker host=…`, or choose another',
    });
  }
  let endpoint: { Host?: unknown; SkipTLSVerify?: unknown } | undefined;
  try {
    endpoint = (JSON.parse(text) as { Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } } }).Endpoints?.docker;
  } catch (err) {
    throw new FerryError('USAGE', `Docker context "${name}": ${metaFile} is not valid JSON: ${(err as Error).message}`, { hint: 'recreate it with `docker context rm` and `docker context create`' });
  }
  if (!endpoint || typeof endpoint.Host !== 'string' || endpoint.Host === '') {
    throw new FerryError('USAGE', `Docker context "${name}" names no Docker host (Endpoints.docker.Host in ${metaFile})`, { hint: 'recreate it with `docker context create NAME --docker host=…`' });
  }
  const tlsDir = join(configDir, 'contexts', 'tls', id, 'docker');
  const tls: StoredContext['tls'] = {};
  for (const part of ['ca', 'cert', 'key'] as const) {
    const pem = readOptional(join(tlsDir, `${part}.pem`), 'buffer');
    if (pem) tls[part] = pem;
  }
  return { name, host: endpoint.Host, skipTlsVerify: endpoint.SkipTLSVerify === true, tls };
}

function readOptional(file: string): string | undefined;
function readOptional(file: string, as: 'buffer'): Buffer | undefined;
function readOptional(file: string, as?: 'buffer'): string | Buffer | undefined {
  try {
    return as ? readFileSync(file) : readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError('USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check its permissions' });
  }
}
