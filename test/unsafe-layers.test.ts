// Layers that reach outside the image's root, in bundles whose every digest, size and diffID is right (packed by
// ferry from a crafted docker-save archive): `ferry verify` names the layer blob and the tar entry (exit 3); `load`
// into a real dockerd and into containerd, and `push` into a real registry (layers converted to gzip, and as stored)
// refuse it (exit 3) with nothing loaded, pushed or written where the entry aims; `--allow-unsafe-layers` sends a
// layer dockerd itself accepts. And the bundle's own tar: a PAX global header or a `repositories` entry is refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerdMissing, holdings, startContainerd, type Containerd } from './helpers/containerd.js';
import { startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { missing } from './helpers/tools.js';
import { paxRecords, tarBytes, type RawEntry } from './helpers/crafted-tar.js';
import { blobName, BundleModel } from './helpers/bundle-model.js';
import { assertFails, daemonState } from './helpers/outcome.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { writeSaveArchive } from './helpers/save-archive.js';

const skip = missing(['dockerd', 'docker', 'docker-registry'], { root: true });

/** Every path an entry aims at starts so; any such file at all means something got out. */
const CANARY = `ferry-unsafe-${process.pid}`;
const DEEP = '../'.repeat(12);
const OUT = `${DEEP}${tmpdir().slice(1)}/${CANARY}`;

const file = (name: string, data = 'x\n'): RawEntry => ({ name, data: Buffer.from(data) });
const pax = (records: Record<string, string>): RawEntry => ({ name: 'PaxHeaders/0', type: 'x', data: paxRecords(records) });

/** Each case: its layer's entries, and the entry name verify and the refusals must quote. */
const CASES: { title: string; entries: RawEntry[]; names: RegExp }[] = [
  { title: 'a ../ name', entries: [{ name: 'app/', type: '5' }, file(`${OUT}-dotdot`)], names: /layer entry "(\.\.\/)+.*-dotdot" has a "\.\." component/ },
  { title: 'an absolute name', entries: [file(`${tmpdir()}/${CANARY}-abs`)], names: /layer entry "\/.*-abs" is an absolute path/ },
  { title: 'a pax path override to ../', entries: [pax({ path: `${OUT}-pax` }), file('harmless')], names: /layer entry "(\.\.\/)+.*-pax" has a "\.\." component/ },
  { title: 'a GNU long name to ../', entries: [{ name: '././@LongLink', type: 'L', data: Buffer.from(`${OUT}-long\0`) }, file('harmless')], names: /layer entry "(\.\.\/)+.*-long" has a "\.\."/ },
  { title: 'a hard link to /etc/passwd', entries: [{ name: 'app/', type: '5' }, { name: 'app/passwd', type: '1', linkname: '/etc/passwd' }], names: /layer entry "app\/passwd" is a hard link to the absolute path "\/etc\/passwd"/ },
  { title: 'a hard link out of the root', entries: [{ name: 'shadow', type: '1', linkname: `${DEEP}etc/shadow` }], names: /layer entry "shadow" is a hard link to "(\.\.\/)+etc\/shadow", which climbs out/ },
  { title: 'a whiteout of ..', entries: [{ name: 'app/', type: '5' }, file('app/.wh...', '')], names: /layer entry "app\/\.wh\.\.\." is a whiteout of "\.\."/ },
  { title: 'a whiteout outside the root', entries: [file(`${DEEP}.wh.etc`, '')], names: /layer entry "(\.\.\/)+\.wh\.etc" has a "\.\."/ },
  { title: 'a symlink, then a write through it', entries: [{ name: 'app', type: '2', linkname: `${tmpdir()}/${CANARY}-dir` }, file('app/evil')], names: /layer entry "app\/evil" is written through the symlink "app"/ },
];

describe('unsafe layer entries are refused by ferry, not left to the daemon', { skip }, () => {
  let dst: Dockerd;
  let reg: Registry;
  let ctd: Containerd | undefined;
  let work: string;
  /** Per case: the bundle, and the hostile layer's blob entry. */
  const bundles = new Map<string, { path: string; blob: string }>();
  let good: string;

  /** packed makes a bundle with ferry from a docker-save archive of one image: a plain base layer, then `top`. */
  const packed = async (name: string, top: Buffer): Promise<{ path: string; blob: string }> => {
    const archive = join(work, `${name}.docker.tar`);
    await writeSaveArchive(archive, [{ tag: `unsafe/${name}:1`, layers: [{ 'base.txt': 'base\n' }, top] }]);
    const path = join(work, `${name}.ferry.tar`);
    const run = await ferry(['pack', `docker-archive:${archive}`, '-o', path]);
    assert.equal(run.code, 0, run.stderr);
    const model = await BundleModel.load(path);
    return { path, blob: blobName(model.image(`docker.io/unsafe/${name}:1`).layers[1]!.digest) };
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-unsafe-'));
    [dst, reg, ctd] = await Promise.all([startDockerd('unsafe-dst'), startRegistry(), containerdMissing() ? undefined : startContainerd('unsafe')]);
    const made = await Promise.all([...CASES.map((c, k) => packed(`case${k}`, tarBytes(c.entries))), packed('good', tarBytes([{ name: 'app/', type: '5' }, { name: 'app/sh', type: '2', linkname: '/bin/busybox' }, file('app/x')]))]);
    CASES.forEach((c, k) => bundles.set(c.title, made[k]!));
    good = made[CASES.length]!.path;
  });

  after(async () => {
    await Promise.all([dst?.stop(), reg?.stop(), ctd?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
    for (const f of await readdir(tmpdir())) if (f.startsWith(CANARY)) await rm(join(tmpdir(), f), { recursive: true, force: true });
  });

  const canaries = async (): Promise<string[]> => (await readdir(tmpdir())).filter((f) => f.startsWith(CANARY));

  /** tags is what the registry holds under a repository: its tags, or none (unknown repository). */
  const tags = async (repo: string): Promise<string[]> => {
    const res = await fetch(`http://${reg.host}/v2/${repo}/tags/list`);
    return res.status === 404 ? [] : (((await res.json()) as { tags?: string[] | null }).tags ?? []);
  };
  const hasBlob = async (repo: string, blob: string): Promise<boolean> => (await fetch(`http://${reg.host}/v2/${repo}/blobs/sha256:${blob.slice(13)}`, { method: 'HEAD' })).status === 200;

  it('control: a layer with an absolute symlink target verifies, loads and pushes', async () => {
    const v = await ferry(['verify', good]);
    assert.equal(v.code, 0, v.stderr);
    const l = await ferry(['load', good], { dockerHost: dst.host });
    assert.equal(l.code, 0, l.stderr);
    const p = await ferry(['push', good, '--to', `${reg.host}/control`]);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(await tags('control/unsafe/good'), ['1']);
    await dst.docker(['rmi', 'unsafe/good:1']);
  });

  for (const [k, c] of CASES.entries()) {
    it(`${c.title}: verify names it; load (dockerd${containerdMissing() ? '' : ', containerd'}) and push (gzip, as stored) refuse it, changing nothing`, async () => {
      const { path, blob } = bundles.get(c.title)!;
      const before = await daemonState(dst);
      const ns = `unsafe-${k}`;
      const [v, l, pushed, kept, cl] = await Promise.all([
        ferry(['verify', path]),
        ferry(['load', path], { dockerHost: dst.host }),
        ferry(['push', path, '--to', `${reg.host}/gz${k}`]),
        ferry(['push', path, '--to', `${reg.host}/kept${k}`, '--compression', 'keep']),
        ctd ? ferry(['load', path, '--containerd', ctd.address, '--namespace', ns]) : undefined,
      ]);
      assertFails(v, 3, [blob, c.names], `verify ${c.title}`);
      for (const [what, r] of [['load', l], ['push', pushed], ['push --compression keep', kept], ['load --containerd', cl]] as const) {
        if (r) assertFails(r, 3, [blob, c.names, /nothing was (loaded|pushed)/, /--allow-unsafe-layers/], `${what} ${c.title}`);
      }
      assert.deepEqual(await daemonState(dst), before, 'the daemon has no new image, tag or layer');
      assert.deepEqual(await tags(`gz${k}/unsafe/case${k}`), [], 'nothing was tagged in the registry');
      assert.deepEqual(await tags(`kept${k}/unsafe/case${k}`), [], 'nothing was tagged in the registry');
      assert.equal(await hasBlob(`kept${k}/unsafe/case${k}`, blob), false, 'the unsafe layer blob was not committed to the registry');
      if (ctd) assert.deepEqual(await holdings(ctd, ns), { images: [], content: [], snapshots: [], leases: [] }, `containerd's namespace ${ns} holds nothing`);
      assert.deepEqual(await canaries(), [], 'no file appeared where the entry aimed');
    });
  }

  it('a big layer pushed as stored (its entries scanned on a worker beside the upload) is refused the same way', async () => {
    // Random bytes do not compress: the stored layer is over the 1 MiB above which the scan runs on a worker.
    const { path, blob } = await packed('big', tarBytes([file('pad.bin', randomBytes(1_500_000).toString('latin1')), file(`${tmpdir()}/${CANARY}-bigabs`)]));
    const kept = await ferry(['push', path, '--to', `${reg.host}/bigkept`, '--compression', 'keep']);
    assertFails(kept, 3, [blob, /layer entry "\/.*-bigabs" is an absolute path/, /nothing was pushed/, /--allow-unsafe-layers/], 'push --compression keep of a big layer');
    assert.deepEqual(await tags('bigkept/unsafe/big'), []);
    assert.equal(await hasBlob('bigkept/unsafe/big', blob), false, 'the unsafe layer blob was not committed to the registry');
  });

  it('--allow-unsafe-layers sends a layer dockerd itself accepts (an absolute name, kept inside the image)', async () => {
    const { path } = bundles.get('an absolute name')!;
    const l = await ferry(['load', path, '--allow-unsafe-layers'], { dockerHost: dst.host });
    assert.equal(l.code, 0, l.stderr);
    assert.match(await dst.docker(['image', 'inspect', '--format', '{{.Id}}', 'unsafe/case1:1']), /^sha256:/);
    const p = await ferry(['push', path, '--to', `${reg.host}/allowed`, '--compression', 'keep', '--allow-unsafe-layers']);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(await tags('allowed/unsafe/case1'), ['1']);
    assert.deepEqual(await canaries(), [], 'dockerd kept the entry inside the image');
  });

  describe("the bundle's own tar", () => {
    const refusedOuter = async (name: string, extra: RawEntry, mentions: RegExp): Promise<void> => {
      const model = await BundleModel.load(good);
      const entries = model.entries();
      const dir = join(work, name);
      await mkdir(dir);
      const path = join(dir, 'outer.ferry.tar');
      await writeFile(path, tarBytes([entries[0]!, extra, ...entries.slice(1)]));
      const before = await daemonState(dst);
      const [v, l] = await Promise.all([ferry(['verify', path]), ferry(['load', path], { dockerHost: dst.host })]);
      assertFails(v, 3, [mentions], `verify ${name}`);
      assertFails(l, 3, [mentions], `load ${name}`);
      assert.deepEqual(await daemonState(dst), before, 'the daemon has no new image, tag or layer');
    };

    it('a PAX global header (GNU tar and Python would rename every later entry by it)', async () => {
      await refusedOuter('global', { name: 'pax_global_header', type: 'g', data: paxRecords({ path: 'blobs/sha256/x' }) }, /pax_global_header: is a PAX global header \(type 'g'\)/);
    });

    it('a repositories entry tagging the image under another name', async () => {
      const id = (await BundleModel.load(good)).image('docker.io/unsafe/good:1').layers[1]!.diffId.slice(7);
      await refusedOuter('repositories', { name: 'repositories', data: Buffer.from(JSON.stringify({ victim: { latest: id } })) }, /repositories: is docker's legacy tag list, which ferry never writes/);
    });
  });
});
