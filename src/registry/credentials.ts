// Registry credentials as docker finds them: explicit ones first, then config.json credHelpers, credsStore and auths.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FerryError, escapeControls } from '../ui/errors.js';

export interface Credentials {
  username: string;
  password: string;
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

const HELPER_TIMEOUT_MS = 15_000;
/** docker.io is stored under its v1 index address by `docker login`; these names all mean it. */
const DOCKER_HUB_KEYS = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : join(homedir(), '.docker');
}

/** hostOfKey reduces an auths/credHelpers key (`https://host/v1/`, `host`) to the host[:port] it names, as docker's ConvertToHostname does. */
function hostOfKey(key: string): string {
  const h = key.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? '';
  return DOCKER_HUB_KEYS.includes(h) ? 'docker.io' : h;
}

/**
 * findCredentials returns what docker would use for this registry (as written in a reference: `docker.io`, `host:5000`),
 * or undefined for anonymous access. A broken config file or a failing credential helper is an error, not anonymity.
 */
export async function findCredentials(registry: string, dockerConfig: string = dockerConfigDir()): Promise<Credentials | undefined> {
  const file = join(dockerConfig, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError('REGISTRY_AUTH', `cannot read docker config ${file}: ${(err as Error).message}`, { cause: err });
  }
  let config: DockerConfigFile;
  try {
    config = JSON.parse(text) as DockerConfigFile;
  } catch (err) {
    throw new FerryError('REGISTRY_AUTH', `docker config ${file} is not valid JSON`, { hint: 'fix or remove the file, or pass --creds', cause: err });
  }
  const want = hostOfKey(registry);
  const serverUrl = want === 'docker.io' ? DOCKER_HUB_SERVER : registry;

  const helperKey = Object.keys(config.credHelpers ?? {}).find((k) => hostOfKey(k) === want);
  const helper = helperKey !== undefined ? config.credHelpers?.[helperKey] : config.credsStore;
  if (helper) return fromHelper(helper, helperKey ?? serverUrl);

  const authKey = Object.keys(config.auths ?? {}).find((k) => hostOfKey(k) === want);
  const entry = authKey !== undefined ? config.auths?.[authKey] : undefined;
  if (!entry) return undefined;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new FerryError('REGISTRY_AUTH', `docker config ${file}: the auth entry for ${registry} is not base64 of USER:PASSWORD`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

/** fromHelper runs `docker-credential-NAME get` with the server on stdin; "not found" is anonymous, any other failure an error. */
async function fromHelper(name: string, server: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const { code, stdout, stderr, error } = await run(program, ['get'], server);
  const fail = (why: string): FerryError =>
    new FerryError('REGISTRY_AUTH', `credential helper ${program} failed for ${server}: ${escapeControls(why)}`, {
      hint: `check that ${program} is installed and works (\`echo ${server} | ${program} get\`), or pass --creds`,
    });
  if (error) throw fail(error);
  if (code !== 0) {
    const said = (stdout + stderr).trim();
    if (/credentials not found/i.test(said)) return undefined;
    throw fail(said === '' ? `exit status ${code}` : said.slice(0, 300));
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw fail('it did not print JSON');
  }
  if (typeof parsed.Username !== 'string' || typeof parsed.Secret !== 'string') throw fail('its answer lacks Username or Secret');
  if (parsed.Username === '<token>') throw fail('it holds an identity token, which ferry does not support yet; pass --creds instead');
  return { username: parsed.Username, password: parsed.Secret };
}

function run(program: string, args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolveOnce) => {
    let stdout = '';
    let stderr = '';
    let error: string | undefined;
    // Our own timer, not spawn's `timeout`: that one outlives a helper that never started and holds the process open.
    let timer: NodeJS.Timeout | undefined;
    const resolve = (code: number | null): void => {
      if (timer === undefined) return;
      clearTimeout(timer);
      timer = undefined;
      resolveOnce({ code, stdout, stderr, ...(error ? { error } : {}) });
    };
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    timer = setTimeout(() => {
      error = `it did not answer within ${HELPER_TIMEOUT_MS / 1000} s`;
      child.kill('SIGKILL');
      resolve(null);
    }, HELPER_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(0, 65536)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(0, 65536)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code === 'ENOENT' ? `${program} is not installed (not found on PATH)` : err.message;
      resolve(null);
    });
    child.stdin.on('error', () => {
      /* the helper may exit without reading; its exit status says what happened */
    });
    child.stdin.end(input);
    child.on('close', (code) => resolve(code));
  });
}
