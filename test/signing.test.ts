// Signed bundles and reports: keys from `ferry key generate`, bundles signed at pack and checked by verify, load
// and push before anything happens; unsigned, foreign-signed or altered ones refused, nothing loaded or tagged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry } from './helpers/ferry.js';
import { readEntries, tarBytes, layout } from './helpers/crafted-tar.js';
import { startRegistry, type Registry } from './helpers/registry.js';
import { missing } from './helpers/tools.js';

const skip = missing(['dockerd', 'docker', 'busybox', 'docker-registry'], { root: true });

describe('signed bundles, inventories and receipts', { skip }, () => {
  let src: Dockerd;
  let dst: Dockerd;
  let reg: Registry;
  let work: string;
  let signed: string;
  let unsigned: string;
  let key: string;
  let pub: string;
  let otherPub: string;
  let otherKey: string;

  const imagesIn = async (d: Dockerd): Promise<string> => d.docker(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  /** rewrite rebuilds a bundle with one entry changed (or dropped), entries otherwise as they were. */
  const rewrite = async (from: string, to: string, change: (name: string, data: Buffer) => Buffer | undefined): Promise<void> => {
    const entries = (await readEntries(from)).flatMap((e) => {
      const data = change(e.name, e.data!);
      return data === undefined ? [] : [{ name: e.name, data }];
    });
    await writeFile(to, tarBytes(entries));
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-sign-'));
    [src, dst, reg] = await Promise.all([startDockerd('sign-src'), startDockerd('sign-dst'), startRegistry()]);
    await importBase(src, 'signed/base:1');
    await build(src, 'signed/app:1', 'FROM signed/base:1\nCOPY a /a\n', { a: 'signed app' });
    signed = join(work, 'signed.ferry.tar');
    unsigned = join(work, 'unsigned.ferry.tar');
  });

  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), reg?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('generates a key pair: the private half readable only by its owner, never overwritten', async () => {
    const run = await ferry(['key', 'generate', join(work, 'site-a')]);
    assert.equal(run.code, 0, run.stderr);
    key = join(work, 'site-a.key');
    pub = join(work, 'site-a.pub');
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    assert.match(await readFile(pub, 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
    const again = await ferry(['key', 'generate', join(work, 'site-a')]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists \(ferry does not overwrite keys\)/);
    assert.equal((await ferry(['key', 'generate', join(work, 'other')])).code, 0);
    otherPub = join(work, 'other.pub');
    otherKey = join(work, 'other.key');
  });

  it('signs at pack; verify --key accepts it and refuses unsigned or foreign-signed bundles', async () => {
    let run = await ferry(['pack', 'signed/app:1', '-o', signed, '--sign', key], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    run = await ferry(['pack', 'signed/app:1', '-o', unsigned], { dockerHost: src.host });
    assert.equal(run.code, 0, run.stderr);
    run = await ferry(['verify', signed, '--key', pub]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Signed by/);
    // A signed bundle is still an ordinary bundle to whoever does not check.
    assert.equal((await ferry(['verify', signed])).code, 0);
    run = await ferry(['verify', unsigned, '--key', pub]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /is not signed \(no ferry\.sig\)/);
    run = await ferry(['verify', signed, '--key', otherPub]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /signed by another key/);
    run = await ferry(['verify', signed, '--key', key]);
    assert.equal(run.code, 2, 'a private key is not what checks');
  });

  it('refuses a bundle altered anywhere, before anything is loaded or tagged', async () => {
    const before = await imagesIn(dst);
    const cases: [string, (name: string, data: Buffer) => Buffer | undefined, RegExp][] = [
      ['a name changed in ferry.json', (n, d) => (n === 'ferry.json' ? Buffer.from(d.toString().replace('signed/app:1', 'signed/app:9')) : d), /does not match: the signed content was altered/],
      ['a tag added in manifest.json', (n, d) => (n === 'manifest.json' ? Buffer.from(d.toString().replace('"docker.io/signed/app:1"', '"docker.io/signed/app:1","evil/app:1"')) : d), /manifest\.json/],
      ['ferry.sig replaced by another key\'s', (n, d) => d, /signed by another key/],
      ['ferry.sig removed', (n, d) => (n === 'ferry.sig' ? undefined : d), /is not signed/],
    ];
    for (const [what, change, message] of cases) {
      const bad = join(work, `bad-${what.replace(/\W+/g, '-')}.ferry.tar`);
      if (what.startsWith('ferry.sig replaced')) {
        // Signed by the other key over the same ferry.json.
        assert.equal((await ferry(['pack', 'signed/app:1', '-o', bad, '--sign', otherKey], { dockerHost: src.host })).code, 0);
      } else {
        await rewrite(signed, bad, change);
      }
      for (const args of [['verify', bad, '--key', pub], ['load', bad, '--require-signature', pub]]) {
        const run = await ferry(args, { dockerHost: dst.host });
        assert.equal(run.code, 3, `${what}: ${args[0]}: ${run.stderr}`);
        assert.match(run.stderr, message, `${what}: ${args[0]}`);
        assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
      }
      assert.equal(await imagesIn(dst), before, `${what}: nothing loaded or tagged`);
    }
    // A layer blob's bytes changed: the signature over ferry.json holds, but the blob's digest does not.
    const buf = await readFile(signed);
    const layer = layout(buf).entries.filter((e) => e.name.startsWith('blobs/') && e.size > 1000).sort((a, b) => b.size - a.size)[0]!;
    const at = layer.data + Math.floor(layer.size / 2);
    buf[at] = buf[at]! ^ 0xff;
    const flipped = join(work, 'flipped.ferry.tar');
    await writeFile(flipped, buf);
    const run = await ferry(['load', flipped, '--require-signature', pub], { dockerHost: dst.host });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, new RegExp(layer.name));
    assert.equal(await imagesIn(dst), before, 'a changed blob: nothing loaded or tagged');
  });

  it('loads and pushes a signed bundle under --require-signature; refuses an unsigned one and pushes nothing', async () => {
    let run = await ferry(['load', signed, '--require-signature', pub], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    assert.match(await imagesIn(dst), /signed\/app:1/);
    run = await ferry(['push', unsigned, '--to', `${reg.host}/mirror`, '--require-signature', pub]);
    assert.equal(run.code, 3, run.stderr);
    const catalog = (await (await fetch(`http://${reg.host}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, []);
    run = await ferry(['push', signed, '--to', `${reg.host}/mirror`, '--require-signature', pub]);
    assert.equal(run.code, 0, run.stderr);
  });

  it("signs a site's inventory and receipts; the connected side imports only what the site's key signed", async () => {
    const env = { FERRY_HOME: join(work, 'home') };
    assert.equal((await ferry(['site', 'add', 'a'], { env })).code, 0);
    const inventory = join(work, 'site-a.inventory.json');
    let run = await ferry(['inventory', '-o', inventory, '--sign', key], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    const receipt = join(work, 'site-a.receipt.json');
    run = await ferry(['load', signed, '--receipt', receipt, '--sign', key], { dockerHost: dst.host });
    assert.equal(run.code, 0, run.stderr);
    await stat(`${receipt}.sig`);

    // Altered after signing: refused, nothing recorded.
    const altered = join(work, 'altered.inventory.json');
    await writeFile(altered, (await readFile(inventory, 'utf8')).replace('signed/app:1', 'signed/app:2'));
    await writeFile(`${altered}.sig`, await readFile(`${inventory}.sig`));
    run = await ferry(['site', 'import', altered, '--site', 'a', '--require-signature', pub], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /altered/);
    run = await ferry(['site', 'import', inventory, '--site', 'a', '--require-signature', otherPub], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /another key/);
    const unsignedInventory = join(work, 'unsigned.inventory.json');
    assert.equal((await ferry(['inventory', '-o', unsignedInventory], { dockerHost: dst.host })).code, 0);
    run = await ferry(['site', 'import', unsignedInventory, '--site', 'a', '--require-signature', pub], { env });
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /is not signed/);
    assert.match((await ferry(['site', 'show', 'a'], { env })).stdout, /^Site a[^\n]*\nPlanning assumes 0/m, 'nothing was recorded');

    run = await ferry(['site', 'import', inventory, receipt, '--site', 'a', '--require-signature', pub, '--json'], { env });
    assert.equal(run.code, 0, run.stderr);
  });
});
