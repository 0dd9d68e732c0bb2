// Every command's --json output, run for real, checked against its JSON Schema in schemas/cli/ (strict: a field
// added, renamed or retyped fails here until the schema says so): pack (whole, in volumes, a dry run against an
// inventory), inspect, verify, load and inventory with a private containerd, push and inventory with a registry,
// site, key, and the error document. Load into a Docker daemon is checked in daemon-bundle.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { containerdMissing, startContainerd, type Containerd } from './helpers/containerd.js';
import { ferry, json, type FerryRun } from './helpers/ferry.js';
import { checkedSchemas, checkJson, schemaNames } from './helpers/json-schemas.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { writeSaveArchive } from './helpers/save-archive.js';
import { missing } from './helpers/tools.js';

const skip = containerdMissing() ?? missing(['docker-registry']);
const PLATFORM = { os: 'linux', architecture: 'amd64' };

describe('--json output matches its schema (real containerd and registry)', { skip }, () => {
  let work: string;
  let ctd: Containerd;
  let reg: Registry;
  let archive: string;
  let bundle: string;
  const env = (): NodeJS.ProcessEnv => ({ FERRY_HOME: join(work, 'home') });
  const run = async (args: string[], code = 0): Promise<FerryRun> => {
    const r = await ferry(args, { env: env() });
    assert.equal(r.code, code, `ferry ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => {
    work = await mkdtemp('/tmp/ferry-json-');
    [ctd, reg] = await Promise.all([startContainerd('json'), startRegistry()]);
    archive = join(work, 'images.tar');
    const base = { 'etc/base.txt': 'base\n' };
    await writeSaveArchive(archive, [
      { tag: 'ferry-test/base:1', layers: [base] },
      // Random bytes do not compress: 1.2 MB of layers need two volumes of 1 MB.
      { tag: 'ferry-test/app:1', layers: [base, { 'srv/a.bin': randomBytes(600_000) }, { 'srv/b.bin': randomBytes(600_000) }] },
    ]);
    bundle = join(work, 'all.ferry.tar');
  });

  after(async () => {
    await Promise.all([ctd?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pack, inspect and verify: platform an object, images by imageId and refs', async () => {
    const packed = checkJson('pack', json<{ images: { platform: unknown }[] }>(await run(['pack', `docker-archive:${archive}`, '-o', bundle, '--json'])));
    assert.deepEqual(packed.images.map((i) => i.platform), [PLATFORM, PLATFORM]);
    const view = checkJson('inspect', json<{ images: { platform: unknown }[] }>(await run(['inspect', bundle, '--json'])));
    assert.deepEqual(view.images.map((i) => i.platform), [PLATFORM, PLATFORM], 'inspect says platform as pack does');
    checkJson('verify', json(await run(['verify', bundle, '--json'])));
  });

  it('pack in volumes, and verify of the set', async () => {
    const first = join(work, 'set.ferry.tar');
    const packed = checkJson('pack', json<{ volumes?: { path: string }[] }>(await run(['pack', `docker-archive:${archive}`, '-o', first, '--max-volume-size', '1MB', '--json'])));
    assert.ok((packed.volumes?.length ?? 0) > 1, 'the set has volumes');
    checkJson('verify', json(await run(['verify', ...packed.volumes!.map((v) => v.path), '--json'])));
  });

  it('load into containerd, inventory of it, and a dry-run pack against that inventory', async () => {
    const receipt = join(work, 'load.receipt.json');
    checkJson('load', json(await run(['load', bundle, '--containerd', ctd.address, '--namespace', 'json', '--receipt', receipt, '--json'])));
    const inventory = join(work, 'ctd.inventory.json');
    checkJson('inventory', json(await run(['inventory', '--containerd', ctd.address, '--namespace', 'json', '-o', inventory, '--json'])));
    const plan = checkJson('pack-dry-run', json<{ travel: string[] }>(await run(['pack', `docker-archive:${archive}`, '--have', inventory, '--dry-run', '--json'])));
    assert.deepEqual(plan.travel, [], 'containerd holds every layer');
  });

  it('push to a registry (and its dry run), inventory of the registry', async () => {
    checkJson('push-dry-run', json(await run(['push', bundle, '--to', `${reg.host}/json`, '--dry-run', '--json'])));
    const pushed = checkJson('push', json<{ images: { imageId?: string; platform?: unknown }[] }>(await run(['push', bundle, '--to', `${reg.host}/json`, '--json'])));
    assert.deepEqual(pushed.images.map((i) => i.platform), [PLATFORM, PLATFORM]);
    assert.ok(pushed.images.every((i) => i.imageId), 'each pushed image says its imageId');
    checkJson('inventory', json(await run(['inventory', '--registry', `${reg.host}/json`, '-o', join(work, 'reg.inventory.json'), '--json'])));
  });

  it('site add, list, import and show; key generate', async () => {
    checkJson('site-add', json(await run(['site', 'add', 'site-b', '--kind', 'registry', '--note', 'the far side', '--json'])));
    const inventory = join(work, 'site.inventory.json');
    await run(['inventory', '--registry', `${reg.host}/json`, '-o', inventory]);
    checkJson('site-import', json(await run(['site', 'import', inventory, '--site', 'site-b', '--json'])));
    checkJson('site-list', json(await run(['site', 'list', '--json'])));
    checkJson('site-show', json(await run(['site', 'show', 'site-b', '--json'])));
    checkJson('key-generate', json(await run(['key', 'generate', join(work, 'k'), '--json'])));
    checkJson('cache-prune', json(await run(['cache', 'prune', '--json'])));
  });

  it('a failure prints the error document, with the exit code it exits with', async () => {
    const notBundle = join(work, 'not-a-bundle.tar');
    await writeFile(notBundle, 'not a tar\n');
    const r = await run(['verify', notBundle, '--json'], 3);
    const doc = checkJson('error', json<{ error: { exitCode: number } }>(r));
    assert.equal(doc.error.exitCode, r.code);
    const usage = await run(['pack', '--json', '--no-such-option'], 2);
    checkJson('error', json(usage));
  });

  it('every schema in schemas/cli was checked against a real output (load into a Docker daemon in daemon-bundle.test.ts)', () => {
    assert.deepEqual(checkedSchemas(), schemaNames());
  });
});
