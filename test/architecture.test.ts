// The folder layout is the architecture: imports point down the levels of ARCHITECTURE.md, folders form no
// cycle, and one source or target module never imports another.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

/** Levels, bottom first; a folder may import its own folder and folders of lower levels only. Root files are level 0. */
const LEVELS: readonly (readonly string[])[] = [
  ['', 'image', 'ui'],
  ['stream', 'files', 'tar'],
  ['registry', 'engine', 'containerd', 'sign'],
  ['bundle', 'catalog'],
  ['sources', 'targets', 'sync'],
  ['transfer'],
  ['cli'],
];

/** Modules that are one place images come from or go to: none of them may import another of its folder. */
const PLACES: Record<string, readonly string[]> = {
  sources: ['docker-daemon', 'registry', 'docker-archive', 'oci-layout', 'oci-archive', 'bundle'],
  targets: ['docker-daemon', 'registry', 'containerd', 'bundle'],
};

interface Edge {
  from: string;
  to: string;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** imports lists each relative import of the source tree as an edge between files (relative to src, no extension). */
export function imports(files: ReadonlyMap<string, string>): Edge[] {
  const out: Edge[] = [];
  for (const [file, text] of files) {
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
      const spec = (m[1] ?? m[2])!;
      const to = join(dirname(file), spec).replace(/\.js$/, '');
      out.push({ from: file, to });
    }
  }
  return out;
}

const folderOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '');
const levelOf = (folder: string): number => LEVELS.findIndex((l) => l.includes(folder));

/** faults says what breaks the rules: unknown folders, upward or sideways imports, places importing places, cycles. */
export function faults(edges: readonly Edge[], folders: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const f of folders) if (levelOf(f) < 0) out.push(`src/${f}/ is in no level of ARCHITECTURE.md`);
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === b) {
      const places = PLACES[a] ?? [];
      const name = (p: string): string => p.slice(a.length + 1);
      if (places.includes(name(from)) && places.includes(name(to))) out.push(`src/${from}.ts imports src/${to}.ts: one ${a.replace(/s$/, '')} must not know another`);
      continue;
    }
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
    const la = levelOf(a);
    const lb = levelOf(b);
    if (la >= 0 && lb >= 0 && lb >= la) out.push(`src/${from}.ts imports src/${to}.ts: ${b || 'src/'} is ${lb === la ? 'beside' : 'above'} ${a || 'src/'}`);
  }
  // Cycles between folders (the levels rule them out; this names one if the levels are ever loosened).
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      out.push(`folders form a cycle: ${[...path.slice(path.indexOf(n)), n].join(' -> ')}`);
      return;
    }
    state.set(n, 'open');
    for (const m of graph.get(n) ?? []) visit(m, [...path, n]);
    state.set(n, 'done');
  };
  for (const n of graph.keys()) visit(n, []);
  return out;
}

describe('architecture', () => {
  const files = new Map(tsFiles(SRC).map((p) => [relative(SRC, p).replace(/\.ts$/, ''), readFileSync(p, 'utf8')]));
  const edges = imports(files);
  const folders = new Set([...files.keys()].map(folderOf));

  test('imports point down the levels, folders form no cycle, places do not know each other', () => {
    assert.ok(edges.length > 200, `read ${edges.length} imports: the scan found too few to be the whole tree`);
    assert.deepEqual(faults(edges, folders), []);
  });

  test('the check names an upward import, a sideways one, a place importing a place, a cycle and an unknown folder', () => {
    const found = faults(
      [
        { from: 'stream/hash', to: 'transfer/load' },
        { from: 'sources/registry', to: 'targets/registry' },
        { from: 'targets/containerd', to: 'targets/docker-daemon' },
        { from: 'x/a', to: 'y/b' },
        { from: 'y/b', to: 'x/a' },
      ],
      new Set(['stream', 'transfer', 'sources', 'targets', 'x', 'y']),
    );
    assert.ok(found.some((f) => f.includes('stream/hash.ts imports src/transfer/load.ts') && f.includes('above')), found.join('\n'));
    assert.ok(found.some((f) => f.includes('beside')), found.join('\n'));
    assert.ok(found.some((f) => f.includes('must not know another')), found.join('\n'));
    assert.ok(found.some((f) => f.startsWith('folders form a cycle')), found.join('\n'));
    assert.ok(found.some((f) => f.includes('src/x/ is in no level')), found.join('\n'));
  });

  test('the import scan reads static, re-exported and dynamic imports', () => {
    const e = imports(new Map([['cli/a', "import { x } from '../transfer/b.js';\nexport { y } from './c.js';\nconst m = await import('../sources/d.js');"]]));
    assert.deepEqual(e.map((x) => x.to), ['transfer/b', 'cli/c', 'sources/d']);
  });
});
