// Reaching the Docker daemon as the docker CLI does: a dockerd behind --tlsverify (certificates made here with
// openssl) reached through DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, through -H and the TLS flags, through a Docker context
// made by the real `docker context create/use`; refused clearly without a client certificate, with an untrusted
// daemon certificate, or in plain HTTP; the choice between flags, environment and contexts in docker's order; and a
// load that moves a tag from another image says so, as `docker load` does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveEndpoint } from '../src/engine/endpoint.js';
import { certAuthority, signedCert } from './helpers/certs.js';
import { build, importBase, startDockerd, type Dockerd } from './helpers/dockerd.js';
import { ferry, json, type FerryRun } from './helpers/ferry.js';
import { assertFails } from './helpers/outcome.js';
import { dockerCli, missing } from './helpers/tools.js';

const skip = missing(['dockerd', 'docker', 'busybox', 'openssl'], { root: true });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A DOCKER_CERT_PATH directory holding the given files under docker's names. */
async function certDir(dir: string, files: { ca?: string; cert?: string; key?: string }): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, from] of Object.entries(files)) if (from) await copyFile(from, join(dir, `${name}.pem`));
  return dir;
}

describe('the Docker daemon reached as the docker CLI reaches it', { skip }, () => {
  let d: Dockerd;
  let work: string;
  let tcp: string;
  /** ca.pem, cert.pem, key.pem for the daemon's CA and a client it signed. */
  let good: string;
  let files: { ca: string; cert: string; key: string };
  let baseId: string;
  let appId: string;
  let baseBundle: string;
  let appBundle: string;
  /** No DOCKER_* from the test's own environment, and docker's config dir empty unless a test says otherwise. */
  let clean: NodeJS.ProcessEnv;

  const run = (args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<FerryRun> => ferry(args, { env: { ...clean, ...env } });
  const dockerWith = (config: string, args: readonly string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = spawn(dockerCli()!, args, { env: { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '', DOCKER_CONTEXT: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c) => (out += c));
      p.stderr.on('data', (c) => (err += c));
      p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`docker ${args.join(' ')}: ${err}`))));
    });

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ferry-daemon-conn-'));
    const pki = join(work, 'pki');
    await mkdir(pki);
    const ca = certAuthority(pki, 'daemon');
    const server = signedCert(pki, ca, 'server', 'server');
    const client = signedCert(pki, ca, 'client', 'client');
    files = { ca: ca.certFile, cert: client.certFile, key: client.keyFile };
    good = await certDir(join(work, 'good'), files);
    const port = await freePort();
    tcp = `tcp://127.0.0.1:${port}`;
    d = await startDockerd('conn', {
      extraArgs: ['--tlsverify', `--tlscacert=${ca.certFile}`, `--tlscert=${server.certFile}`, `--tlskey=${server.keyFile}`, `--host=${tcp}`],
    });
    clean = { DOCKER_HOST: '', DOCKER_CONTEXT: '', DOCKER_TLS: '', DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '', DOCKER_CONFIG: join(work, 'no-config') };
    baseId = await importBase(d, 'ferry-conn/base:1');
    appId = await build(d, 'ferry-conn/app:1', 'FROM ferry-conn/base:1\nCOPY v2.txt /v2.txt\n', { 'v2.txt': 'v2\n' });
    baseBundle = join(work, 'base.ferry.tar');
    appBundle = join(work, 'app.ferry.tar');
  });

  after(async () => {
    await d?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pack through a TLS daemon named by DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH', async () => {
    for (const [image, out, id] of [['ferry-conn/base:1', baseBundle, baseId], ['ferry-conn/app:1', appBundle, appId]] as const) {
      const r = await run(['pack', image, '-o', out, '--json'], { DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: good });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(json<{ images: { imageId: string }[] }>(r).images.map((i) => i.imageId), [id]);
    }
  });

  it('load through -H and the TLS flags, which beat DOCKER_HOST', async () => {
    const r = await run(
      ['load', baseBundle, '--retag', 'ferry-conn/base:1=ferry-conn/by-flags:1', '-H', tcp, '--tlsverify', '--tlscacert', files.ca, '--tlscert', files.cert, '--tlskey', files.key],
      { DOCKER_HOST: `unix://${join(work, 'nobody.sock')}` },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-conn/by-flags:1'])).trim(), baseId);
  });

  it('load (and inventory) through a Docker context made by `docker context create` and chosen by `docker context use`, DOCKER_CONTEXT or --context', async () => {
    const config = join(work, 'docker-config');
    await mkdir(config);
    await dockerWith(config, ['context', 'create', 'tls-daemon', '--docker', `host=${tcp},ca=${files.ca},cert=${files.cert},key=${files.key}`]);
    // A context whose daemon is not there: chosen by `docker context use`, beaten by DOCKER_CONTEXT and --context.
    await dockerWith(config, ['context', 'create', 'gone', '--docker', `host=unix://${join(work, 'nobody.sock')}`]);
    await dockerWith(config, ['context', 'use', 'tls-daemon']);
    const used = await run(['load', baseBundle, '--retag', 'ferry-conn/base:1=ferry-conn/by-context:1', '--json'], { DOCKER_CONFIG: config });
    assert.equal(used.code, 0, used.stderr);
    assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-conn/by-context:1'])).trim(), baseId);

    await dockerWith(config, ['context', 'use', 'gone']);
    const gone = await run(['load', baseBundle], { DOCKER_CONFIG: config });
    assertFails(gone, 5, [/cannot reach the Docker daemon at unix:\/\/.*nobody\.sock/, `Docker context "gone" (current in ${join(config, 'config.json')})`]);
    const byEnv = await run(['load', baseBundle, '--retag', 'ferry-conn/base:1=ferry-conn/by-env-context:1'], { DOCKER_CONFIG: config, DOCKER_CONTEXT: 'tls-daemon' });
    assert.equal(byEnv.code, 0, byEnv.stderr);
    // --context beats DOCKER_HOST, as docker's does.
    const byFlag = await run(['load', baseBundle, '--context', 'tls-daemon', '--retag', 'ferry-conn/base:1=ferry-conn/by-flag-context:1'], { DOCKER_CONFIG: config, DOCKER_HOST: 'unix:///nonexistent.sock' });
    assert.equal(byFlag.code, 0, byFlag.stderr);
    for (const t of ['by-env-context', 'by-flag-context']) assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', `ferry-conn/${t}:1`])).trim(), baseId);
    // inventory reaches the daemon the same way.
    const inv = await run(['inventory', '--context', 'tls-daemon'], { DOCKER_CONFIG: config });
    assert.equal(inv.code, 0, inv.stderr);
    assert.ok(json<{ images: { id: string }[] }>(inv).images.some((i) => i.id === appId), inv.stdout.slice(0, 500));

    assertFails(await run(['load', baseBundle, '--context', 'tls-daemon', '-H', tcp], { DOCKER_CONFIG: config }), 2, [/cannot specify both --host and --context/]);
    assertFails(await run(['load', baseBundle, '--context', 'nosuch'], { DOCKER_CONFIG: config }), 2, [/Docker context "nosuch" \(--context\) does not exist/]);
  });

  it('refuses clearly: no client certificate, an untrusted daemon certificate, a client certificate the daemon refuses, plain HTTP to the TLS port, TLS files missing', async () => {
    const caOnly = await certDir(join(work, 'ca-only'), { ca: files.ca });
    const noCert = await run(['load', baseBundle], { DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: caOnly });
    assertFails(noCert, 5, [tcp, /requires a client certificate, and none was given/, /^hint: .*cert\.pem and key\.pem/m]);

    const other = certAuthority(join(work, 'pki'), 'other');
    const wrongCa = await certDir(join(work, 'wrong-ca'), { ...files, ca: other.certFile });
    const untrusted = await run(['pack', 'ferry-conn/base:1', '-o', join(work, 'never.ferry.tar')], { DOCKER_HOST: tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: wrongCa });
    assertFails(untrusted, 5, [tcp, /certificate ferry does not trust/, /^hint: .*CA/m]);

    const stranger = signedCert(join(work, 'pki'), other, 'stranger', 'client');
    const refused = await run(['load', baseBundle, '-H', tcp, '--tlsverify', '--tlscacert', files.ca, '--tlscert', stranger.certFile, '--tlskey', stranger.keyFile]);
    assertFails(refused, 5, [tcp, /does not accept ferry's client certificate/, /^hint: .*signed/m]);

    const plain = await run(['load', baseBundle, '-H', tcp]);
    assertFails(plain, 5, [tcp, /speaks TLS/, /^hint: .*DOCKER_TLS_VERIFY/m]);

    const missingCa = await run(['load', baseBundle, '-H', tcp, '--tlsverify'], { DOCKER_CERT_PATH: join(work, 'empty') });
    assertFails(missingCa, 2, ['--tlsverify', join(work, 'empty', 'ca.pem'), /^hint: /m]);
  });

  it('a load that moves a tag from another image says which, in plain output and --json', async () => {
    const first = await run(['load', baseBundle, '--retag', 'ferry-conn/base:1=ferry-conn/moved:1', '--json'], { DOCKER_HOST: d.host });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(json<{ renamed: unknown[] }>(first).renamed, []);
    const second = await run(['load', appBundle, '--retag', 'ferry-conn/app:1=ferry-conn/moved:1', '--json'], { DOCKER_HOST: d.host });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(json<{ renamed: unknown[] }>(second).renamed, [{ tag: 'docker.io/ferry-conn/moved:1', imageId: appId, previousImageId: baseId }]);
    const back = await run(['load', baseBundle, '--retag', 'ferry-conn/base:1=ferry-conn/moved:1'], { DOCKER_HOST: d.host });
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stderr, new RegExp(`^The image ferry-conn/moved:1 already exists, renaming the old one with ID ${appId} to empty string$`, 'm'));
    assert.equal((await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'ferry-conn/moved:1'])).trim(), baseId);
  });

  it("chooses as docker's CLI does: --context, -H, DOCKER_HOST, DOCKER_CONTEXT, currentContext, the default socket", async () => {
    const config = join(work, 'docker-config');
    const env = { DOCKER_CONFIG: config };
    // docker-config holds tls-daemon and gone (above), with gone current.
    assert.equal(resolveEndpoint({}, env).from, `Docker context "gone" (current in ${join(config, 'config.json')})`);
    assert.equal(resolveEndpoint({}, { ...env, DOCKER_CONTEXT: 'tls-daemon' }).host, tcp);
    assert.equal(resolveEndpoint({}, { ...env, DOCKER_CONTEXT: 'tls-daemon', DOCKER_HOST: 'tcp://10.0.0.1:2375' }).host, 'tcp://10.0.0.1:2375');
    assert.equal(resolveEndpoint({ host: 'unix:///x.sock' }, { ...env, DOCKER_HOST: 'tcp://10.0.0.1' }).host, 'unix:///x.sock');
    assert.equal(resolveEndpoint({ context: 'tls-daemon' }, { ...env, DOCKER_HOST: 'tcp://10.0.0.1' }).host, tcp);
    assert.equal(resolveEndpoint({}, { ...env, DOCKER_CONTEXT: 'default' }).host, 'unix:///var/run/docker.sock');
    assert.equal(resolveEndpoint({}, { DOCKER_CONFIG: join(work, 'no-config') }).host, 'unix:///var/run/docker.sock');
    // The context's TLS files, verified; a host without a port gets docker's 2375; TLS only for tcp.
    const ctx = resolveEndpoint({ context: 'tls-daemon' }, env);
    assert.ok(ctx.tls?.verify && ctx.tls.ca && ctx.tls.cert && ctx.tls.key);
    assert.equal(resolveEndpoint({ host: 'tcp://example.com' }, env).host, 'tcp://example.com:2375');
    assert.equal(resolveEndpoint({ host: 'unix:///x.sock', tlsverify: true }, env).tls, undefined);
    // A certificate without its key, or files that do not load, are refused before any connection.
    const noDir = { DOCKER_CERT_PATH: join(work, 'empty') };
    assert.throws(() => resolveEndpoint({ host: tcp, tlsverify: true, tlscacert: files.ca, tlscert: files.cert }, noDir), { code: 'USAGE', message: /certificate without its key/ });
    assert.throws(() => resolveEndpoint({ host: tcp, tlsverify: true, tlscacert: files.ca, tlscert: files.cert, tlskey: files.ca }, noDir), { code: 'USAGE', message: /do not load/ });
    // --tls alone: TLS without verifying, no CA needed.
    assert.deepEqual(resolveEndpoint({ host: tcp, tls: true }, { DOCKER_CERT_PATH: join(work, 'empty') }).tls, { verify: false });
  });
});
