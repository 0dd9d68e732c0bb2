// Mutation fuzzing of bundles: three good bundles made by ferry (a full zstd one, a gzip one, and a thin one packed
// --since the full one) mutated at random, with a fixed seed: bytes flipped where the structure is (headers, data,
// padding, the end marker), cut at block boundaries and anywhere, header fields rewritten with a valid checksum,
// whole entries duplicated, dropped or reordered, and values in ferry.json, index.json and manifest.json replaced by
// hostile ones. For each mutant `ferry verify` and `ferry inspect` exit 0 or 3, never crash, print no stack trace or
// control character, stay in bounded time and memory; verify exits 0 only for a harmless mutation, and then `ferry
// load` loads the right image IDs. A subset of the refused mutants is loaded too: refused, nothing is tagged and the
// daemon gains nothing (or, if load accepts what verify refused, what it loads is exactly the good bundle's images).
// Every mutant is rebuilt from (seed, number):
//   FERRY_FUZZ_SEED=S FERRY_FUZZ_ONLY=N   reruns mutant N of seed S;   FERRY_FUZZ_COUNT=5000   runs longer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, buildTestImages, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { BLOCK, HEADER_FIELDS, layout, setField, ustarHeader, type EntryLayout } from './helpers/crafted-tar.js';
import { daemonState, ferryMeasured, listTree, type DaemonState, type MeasuredRun } from './helpers/outcome.js';
import { seededRandom } from './helpers/seeded.js';

const skip = missing(['dockerd', 'docker', 'busybox'], { root: true });

const SEED = process.env.FERRY_FUZZ_SEED ? Number(process.env.FERRY_FUZZ_SEED) : 0x5eed2026;
const COUNT = process.env.FERRY_FUZZ_COUNT ? Number(process.env.FERRY_FUZZ_COUNT) : 40;
/** Refused mutants that are loaded as well (every accepted one is): one in LOAD_EVERY, all of them in a long run. */
const LOAD_EVERY = process.env.FERRY_FUZZ_COUNT ? 1 : 3;
const ONLY = process.env.FERRY_FUZZ_ONLY !== undefined ? Number(process.env.FERRY_FUZZ_ONLY) : undefined;
const BOUND = { ms: 60_000, rssMiB: 250 };

interface Rand {
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

function rand(seed: number): Rand {
  const next = seededRandom(seed);
  return {
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

const padded = (e: EntryLayout): number => e.data + Math.ceil(e.size / BLOCK) * BLOCK;

/** Rebuild a tar from its entries' byte ranges (headers, data and padding as they are) and its end marker. */
function reassemble(bytes: Buffer, parts: (EntryLayout | Buffer)[], end: number): Buffer {
  return Buffer.concat([...parts.map((p) => (Buffer.isBuffer(p) ? p : bytes.subarray(p.header, padded(p)))), bytes.subarray(end)]);
}

/** entryBytes lays out one entry anew (header, data, padding). */
function entryBytes(name: string, data: Buffer): Buffer {
  return Buffer.concat([ustarHeader({ name, data }), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

function deepList(n: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

const HOSTILE_VALUES: (() => unknown)[] = [
  () => null,
  () => true,
  () => -1,
  () => 0,
  () => 1e308,
  () => 2 ** 53 + 2,
  () => '',
  () => 'sha256:../../../tmp/ferry-escape-fuzz',
  () => `sha256:${'A'.repeat(64)}`,
  () => `sha512:${'ab'.repeat(64)}`,
  () => 'md5:d41d8cd98f00b204e9800998ecf8427e',
  () => '../../../../etc/passwd',
  () => '/etc/passwd',
  () => 'docker.io/library/victim:latest',
  () => 'victim:latest',
  () => '\u001b]0;owned\u0007\u001b[2J',
  () => 'x'.repeat(100_000),
  () => [],
  () => ({}),
  () => deepList(50),
  () => ({ $ne: null, __proto__: { polluted: true } }),
];

/** mutateJson replaces, deletes or duplicates one value somewhere in a JSON document. */
function mutateJson(r: Rand, text: string): { text: string; what: string } {
  const doc = JSON.parse(text) as unknown;
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]): void => {
    if (path.length) paths.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  const path = r.pick(paths);
  let parent = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const key = path.at(-1)!;
  const op = r.int(10);
  let what: string;
  if (op === 0 && !Array.isArray(parent)) {
    delete parent[key];
    what = `delete ${path.join('.')}`;
  } else if (op === 1 && Array.isArray(parent)) {
    parent.push(structuredClone(parent[key as number]));
    what = `duplicate ${path.join('.')}`;
  } else if (op === 2) {
    const other = r.pick(paths);
    let v: unknown = doc;
    for (const k of other) v = (v as Record<string | number, unknown>)[k];
    parent[key] = structuredClone(v);
    what = `${path.join('.')} = the value at ${other.join('.')}`;
  } else {
    const v = r.pick(HOSTILE_VALUES)();
    parent[key] = v;
    what = `${path.join('.')} = ${JSON.stringify(v)?.slice(0, 60)}`;
  }
  return { text: JSON.stringify(doc), what };
}

/** mutate makes mutant number n of a good bundle: the bytes and a description of what was done. */
function mutate(base: Buffer, seed: number, n: number): { bytes: Buffer; what: string } {
  const r = rand((seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
  const { entries, end } = layout(base);
  const kind = r.pick(['flip', 'flip', 'flip', 'flip', 'cut-block', 'cut', 'header', 'header', 'header', 'entries', 'json', 'json'] as const);
  const b = Buffer.from(base);
  switch (kind) {
    case 'flip': {
      // Aim at structure: one entry (or the end marker), then its header, data or padding.
      const k = r.int(entries.length + 1);
      let at: number;
      let where: string;
      if (k === entries.length) {
        at = end + r.int(base.length - end);
        where = 'the end-of-archive marker';
      } else {
        const e = entries[k]!;
        const region = r.pick(['header', 'header', 'data', 'data', 'data', 'data', 'data', 'data', 'padding'] as const);
        const pad = padded(e) - (e.data + e.size);
        if (region === 'header' || (region === 'padding' && pad === 0) || e.size === 0) {
          at = e.header + r.int(BLOCK);
          where = `${e.name}'s header`;
        } else if (region === 'data') {
          at = e.data + r.int(e.size);
          where = `${e.name}'s data`;
        } else {
          at = e.data + e.size + r.int(pad);
          where = `${e.name}'s padding`;
        }
      }
      const n = 1 + r.int(r.chance(0.7) ? 1 : 8);
      for (let i = 0; i < n && at + i < b.length; i++) b[at + i]! ^= 1 + r.int(255);
      return { bytes: b, what: `flip ${n} byte(s) at ${at} (${where})` };
    }
    case 'cut-block': {
      const at = BLOCK * r.int(Math.floor(base.length / BLOCK));
      return { bytes: base.subarray(0, at), what: `cut at block boundary ${at} of ${base.length}` };
    }
    case 'cut': {
      const at = r.int(base.length);
      return { bytes: base.subarray(0, at), what: `cut at ${at} of ${base.length}` };
    }
    case 'header': {
      const e = r.pick(entries);
      // Mostly the fields a reader acts on; the others (mode, owner, times, device numbers) now and then.
      const fields = Object.keys(HEADER_FIELDS) as (keyof typeof HEADER_FIELDS)[];
      const field = r.chance(0.8) ? r.pick(['name', 'size', 'typeflag', 'prefix', 'checksum'] as const) : r.pick(fields);
      const other = r.pick(entries).name;
      const values: Record<keyof typeof HEADER_FIELDS, () => string | Buffer> = {
        name: () => r.pick([other, `../${e.name}`, `/${e.name}`, `./${e.name}`, `${e.name}/`, `${e.name.slice(0, -1)}${r.pick(['A', '0', '/', '.'])}`, '', `../../../tmp/ferry-escape-fuzz-${n}`]),
        mode: () => (r.int(0o7777) >>> 0).toString(8).padStart(7, '0'),
        uid: () => r.int(0o7777777).toString(8).padStart(7, '0'),
        gid: () => r.int(0o7777777).toString(8).padStart(7, '0'),
        size: () => r.pick([e.size + 1, Math.max(0, e.size - 1), e.size + BLOCK, 0, e.size * 2, 0o77777777777].map((v) => v.toString(8).padStart(11, '0')).concat(['garbage', '-1'])),
        mtime: () => r.int(0o77777777777).toString(8).padStart(11, '0'),
        checksum: () => r.int(0o777777).toString(8).padStart(6, '0'),
        typeflag: () => r.pick(['0', '\0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'V', 'Z']),
        linkname: () => r.pick(['/etc/passwd', other, `../../tmp/ferry-escape-fuzz-${n}`]),
        magic: () => r.pick(['ustar ', 'xxxxx\0', '\0\0\0\0\0\0']),
        version: () => r.pick(['00', ' \0', 'zz']),
        uname: () => r.pick(['', 'nobody', '\u001b[2J']),
        gname: () => r.pick(['', 'wheel']),
        devmajor: () => r.int(0o7777).toString(8),
        devminor: () => r.int(0o7777).toString(8),
        prefix: () => r.pick(['..', '../../tmp', 'blobs', '/']),
      };
      const value = values[field]();
      if (field === 'checksum') b.write(`${value}\0 `, e.header + 148, 8, 'latin1');
      else setField(b, e.header, field, value);
      return { bytes: b, what: `header of ${e.name}: ${field} = ${JSON.stringify(value.toString())}` };
    }
    case 'entries': {
      const parts: EntryLayout[] = [...entries];
      const i = r.int(parts.length);
      const op = r.pick(['duplicate', 'drop', 'swap', 'move-first'] as const);
      if (op === 'duplicate') parts.splice(r.int(parts.length + 1), 0, parts[i]!);
      else if (op === 'drop') parts.splice(i, 1);
      else if (op === 'swap') {
        const j = r.int(parts.length);
        [parts[i], parts[j]] = [parts[j]!, parts[i]!];
      } else parts.unshift(...parts.splice(i, 1));
      return { bytes: reassemble(base, parts, end), what: `${op} entry ${entries[i]!.name}` };
    }
    case 'json': {
      const docs = entries.filter((e) => ['ferry.json', 'index.json', 'manifest.json'].includes(e.name));
      const e = r.pick(docs);
      const { text, what } = mutateJson(r, base.subarray(e.data, e.data + e.size).toString());
      const parts = entries.map((x) => (x === e ? entryBytes(e.name, Buffer.from(text)) : x));
      return { bytes: reassemble(base, parts, end), what: `${e.name}: ${what}` };
    }
  }
}

describe('mutated bundles: verify exits 0 or 3 and load agrees, never a crash, never a tag from a refused bundle', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let work: string;
  interface Base {
    name: string;
    bytes: Buffer;
    target: () => Dockerd;
    /** The target before any load, and after the good bundle's load (which images, with which names). */
    before: DaemonState;
    after: DaemonState;
  }
  const bases: Base[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-fuzz-'));
    [src, dst] = await Promise.all([startDockerd('fuzz-src'), startDockerd('fuzz-dst')]);
    await buildTestImages(src);
    const pack = async (name: string, args: string[]): Promise<Buffer> => {
      const out = join(work, `${name}.ferry.tar`);
      const run = await ferry(['pack', ...args, '-o', out], { dockerHost: src.host, env: { FERRY_HOME: join(work, 'ferry-home') } });
      assert.equal(run.code, 0, run.stderr);
      return readFile(out);
    };
    const full = await pack('full', ['ferry-test/app:1', 'ferry-test/tool:2']);
    const gzip = await pack('gzip', ['ferry-test/app:1', '--compression', 'gzip']);
    await build(src, 'ferry-test/app:2', 'FROM ferry-test/app:1\nCOPY more.txt /srv/more.txt\n', { 'more.txt': 'more\n' });
    const thin = await pack('thin', ['ferry-test/app:2', '--since', join(work, 'full.ferry.tar')]);
    // The thin bundle's target is the source itself without app:2: it holds every layer the bundle relies on.
    await src.docker(['rmi', 'ferry-test/app:2']);
    for (const [name, bytes, target] of [['full', full, () => dst], ['gzip', gzip, () => dst], ['thin', thin, () => src]] as const) {
      bases.push({ name, bytes, target, before: await daemonState(target()), after: { images: [], layers: [] } });
    }
    // What a good load leaves: each mutant that loads must leave exactly that.
    for (const base of bases) {
      const file = join(work, `${base.name}-control.ferry.tar`);
      await writeFile(file, base.bytes);
      const v = await ferry(['verify', file]);
      assert.equal(v.code, 0, v.stderr);
      const l = await ferry(['load', file], { dockerHost: base.target().host });
      assert.equal(l.code, 0, l.stderr);
      base.after = await daemonState(base.target());
      await reset(base);
    }
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** reset removes what a load added, so that the next mutant meets the same target. */
  async function reset(base: Base): Promise<void> {
    const ids = (s: DaemonState): Set<string> => new Set(s.images.map((l) => l.split(' ')[0]!));
    const was = ids(base.before);
    const now = await daemonState(base.target());
    const added = [...ids(now)].filter((id) => !was.has(id));
    if (added.length) await base.target().docker(['rmi', '-f', ...added]);
    // A tag moved onto an image that was there before (none of ours does that) would show here.
    assert.deepEqual(await daemonState(base.target()), base.before, 'the target is back as it was');
  }

  const escapes = async (): Promise<string[]> => (await readdir(tmpdir())).filter((f) => f.startsWith('ferry-escape-'));

  it(`${ONLY !== undefined ? `mutant ${ONLY}` : `${COUNT} mutants`} of seed ${SEED}`, { timeout: Math.max(10 * 60_000, COUNT * 20_000) }, async (t) => {
    t.diagnostic(`seed ${SEED} (FERRY_FUZZ_SEED), ${COUNT} mutants (FERRY_FUZZ_COUNT); rerun one with FERRY_FUZZ_ONLY=N`);
    const tally = { verify0: 0, verify3: 0, loaded: 0, loadRefused: 0, loadAccepted: 0 };
    const accepted: string[] = [];
    const loadedAnyway: string[] = [];
    const numbers = ONLY !== undefined ? [ONLY] : Array.from({ length: COUNT }, (_, i) => i);
    for (const n of numbers) {
      const base = bases[n % bases.length]!;
      const { bytes, what } = mutate(base.bytes, SEED, n);
      const label = `mutant ${n} of ${base.name} (${what}); reproduce with FERRY_FUZZ_SEED=${SEED} FERRY_FUZZ_ONLY=${n}`;
      const dir = join(work, `m${n}`);
      const cwd = join(dir, 'cwd');
      await mkdir(cwd, { recursive: true });
      const file = join(dir, 'mutant.ferry.tar');
      await writeFile(file, bytes);
      const check = (what: string, r: MeasuredRun, codes: number[]): void => {
        const show = `${what} of ${label}\nexit ${r.code} in ${r.ms} ms, peak ${r.peakRssKiB} KiB\nstderr:\n${r.stderr.slice(0, 3000)}`;
        assert.ok(codes.includes(r.code), `exit ${r.code}, want one of ${codes.join(', ')}: ${show}`);
        assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace: ${show}`);
        assert.doesNotMatch(r.stderr, /Uncaught|Unhandled|node:internal|TypeError|RangeError|Maximum call stack/, `an internal error: ${show}`);
        assert.doesNotMatch(r.stderr, /[\u0000-\u0008\u000b-\u001f\u007f]/, `a control character reached the terminal: ${show}`);
        if (r.code !== 0) assert.match(r.stderr, /^ferry: .+/m, `no "ferry: " message: ${show}`);
        assert.ok(r.ms < BOUND.ms, `took ${r.ms} ms: ${show}`);
        assert.ok(r.peakRssKiB > 0 && r.peakRssKiB < BOUND.rssMiB * 1024, `peaked at ${r.peakRssKiB} KiB: ${show}`);
      };
      const [v, ins] = await Promise.all([
        ferryMeasured(['verify', file], { cwd, timeoutMs: BOUND.ms + 5000 }),
        ferryMeasured(['inspect', file], { cwd, timeoutMs: BOUND.ms + 5000 }),
      ]);
      check('verify', v, [0, 3]);
      // inspect reads only the indexes: it may show a bundle verify refuses, never refuse one verify accepts.
      check('inspect', ins, v.code === 0 ? [0] : [0, 3]);
      assert.doesNotMatch(ins.stdout, /[\u0000-\u0008\u000b-\u001f\u007f]/, `inspect printed a control character for ${label}`);
      if (v.code === 0) {
        tally.verify0++;
        accepted.push(`${n}: ${what}`);
      } else tally.verify3++;
      if (v.code === 0 || n % LOAD_EVERY === 0) {
        tally.loaded++;
        const l = await ferryMeasured(['load', file], { dockerHost: base.target().host, cwd, timeoutMs: BOUND.ms + 5000 });
        // A bundle verify accepts must load; one it refuses may still load when the damage is where load never reads
        // (an OCI manifest docker does not use), but then exactly the good bundle's images arrive.
        check('load', l, v.code === 0 ? [0] : [0, 3]);
        const state = await daemonState(base.target());
        if (l.code === 0) {
          if (v.code !== 0) {
            tally.loadAccepted++;
            loadedAnyway.push(`${n}: ${what}`);
          }
          assert.deepEqual(state, base.after, `load accepted ${label}, so the target must hold exactly the good bundle's images and names`);
          await reset(base);
        } else {
          tally.loadRefused++;
          assert.deepEqual(state, base.before, `load refused ${label}: the target must have no new image, tag or layer`);
        }
      }
      assert.deepEqual(await listTree(dir), ['cwd', 'mutant.ferry.tar'], `nothing written beside ${label}`);
      assert.deepEqual(await escapes(), [], `nothing written outside: ${label}`);
      await rm(dir, { recursive: true, force: true });
    }
    t.diagnostic(`verify: ${tally.verify0} accepted, ${tally.verify3} refused; load run on ${tally.loaded}: ${tally.loadRefused} refused, ${tally.loadAccepted} accepted although verify refused`);
    for (const a of accepted) t.diagnostic(`harmless: ${a}`);
    for (const a of loadedAnyway) t.diagnostic(`refused by verify, loaded (the good images) by load: ${a}`);
  });
});
