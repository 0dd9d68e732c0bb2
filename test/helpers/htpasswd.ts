// A bcrypt htpasswd line for the registry's Basic auth: from apache2-utils' htpasswd, else python3's crypt; undefined if neither can.
import { execFileSync } from 'node:child_process';
import { which } from './tools.js';

export function htpasswdLine(user: string, password: string): string | undefined {
  const htpasswd = which('htpasswd');
  if (htpasswd) return execFileSync(htpasswd, ['-nbB', '-C', '4', user, password], { encoding: 'utf8' }).trim();
  const python = which('python3');
  if (!python) return undefined;
  try {
    const hash = execFileSync(
      python,
      ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim();
    return hash.startsWith('$2') ? `${user}:${hash}` : undefined;
  } catch {
    return undefined;
  }
}
