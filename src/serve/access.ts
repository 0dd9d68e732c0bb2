// Who may pull from `ferry serve`: Basic auth against an htpasswd file of bcrypt hashes (as `htpasswd -B` writes).
// A bcrypt check costs ~100 ms by design, so a header that passed is remembered (by its SHA-256) for later requests.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { FerryError } from '../ui/errors.js';

/** How many passed headers are remembered: each is 32 bytes; clients reuse the same header. */
const REMEMBERED = 1024;

export class Htpasswd {
  private readonly passed = new Set<string>();

  private constructor(private readonly users: ReadonlyMap<string, string>) {}

  static async read(path: string): Promise<Htpasswd> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new FerryError('USAGE', `cannot read the htpasswd file ${path}: ${(err as NodeJS.ErrnoException).code}`, { hint: 'create it with `htpasswd -Bc FILE USER`' });
    }
    const users = new Map<string, string>();
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const at = line.indexOf(':');
      const hash = line.slice(at + 1);
      if (at <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw new FerryError('USAGE', `${path}:${i + 1}: not a user with a bcrypt hash (only bcrypt is accepted, as \`htpasswd -B\` writes it)`, { hint: 'write the file with `htpasswd -B`' });
      }
      users.set(line.slice(0, at), hash);
    }
    if (users.size === 0) throw new FerryError('USAGE', `${path} names no user`, { hint: 'add one with `htpasswd -B FILE USER`' });
    return new Htpasswd(users);
  }

  /** allows checks an Authorization header: Basic, a known user, the right password. */
  async allows(header: string | undefined): Promise<boolean> {
    if (!header?.startsWith('Basic ')) return false;
    const key = createHash('sha256').update(header).digest('hex');
    if (this.passed.has(key)) return true;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    if (at < 0) return false;
    const hash = this.users.get(decoded.slice(0, at));
    if (!hash || !(await bcrypt.compare(decoded.slice(at + 1), hash))) return false;
    if (this.passed.size >= REMEMBERED) this.passed.clear();
    this.passed.add(key);
    return true;
  }
}
