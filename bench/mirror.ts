// debianMirror: the Debian archive URI that this host's apt sources already use for bookworm (no other host).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface Source {
  types: string[];
  uris: string[];
  suites: string[];
}

/** One-line format: `deb [options] URI SUITE COMPONENT…`. */
function parseList(text: string): Source[] {
  const out: Source[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim();
    const [type, uri, suite] = line.split(/\s+/);
    if (type && uri && suite) out.push({ types: [type], uris: [uri], suites: [suite] });
  }
  return out;
}

/** deb822 format (`*.sources`): stanzas of `Field: value` separated by blank lines. */
function parseDeb822(text: string): Source[] {
  return text
    .split(/\n\s*\n/)
    .map((stanza) => {
      const fields = new Map<string, string>();
      for (const line of stanza.split('\n')) {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
      }
      const list = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
      return { types: list('types'), uris: list('uris'), suites: list('suites') };
    })
    .filter((s) => s.uris.length > 0);
}

export async function debianMirror(suite = 'bookworm'): Promise<string> {
  const sources: Source[] = [];
  sources.push(...parseList(await readFile('/etc/apt/sources.list', 'utf8').catch(() => '')));
  const dir = '/etc/apt/sources.list.d';
  for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
    const text = await readFile(join(dir, f), 'utf8').catch(() => '');
    if (f.endsWith('.list')) sources.push(...parseList(text));
    else if (f.endsWith('.sources')) sources.push(...parseDeb822(text));
  }
  const hit = sources.find((s) => s.types.includes('deb') && s.suites.includes(suite));
  if (!hit) throw new Error(`no apt source for Debian ${suite} in /etc/apt/sources.list(.d); the bench uses only the mirror apt already uses`);
  return hit.uris[0]!;
}
