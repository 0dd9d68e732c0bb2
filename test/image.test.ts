// Pure parts: references normalised like docker's, retag rules, chain IDs, platforms, tar headers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chainIds, asDiffId, isSha256 } from '../src/image/digest.js';
import { formatReference, familiarReference, parseReference } from '../src/image/reference.js';
import { applyRetag, parseRetagRule } from '../src/image/retag.js';
import { parsePlatform, formatPlatform } from '../src/image/platform.js';
import { decodeHeader, encodeHeader } from '../src/tar/header.js';
import { groupForSaves } from '../src/sources/docker-daemon.js';
import type { SourceImage } from '../src/sources/source.js';

describe('references', () => {
  const cases: [string, string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27', 'nginx:1.27'],
    ['team/app:2', 'docker.io/team/app:2', 'team/app:2'],
    ['index.docker.io/library/redis:7', 'docker.io/library/redis:7', 'redis:7'],
    ['registry.local:5000/mirror/app:2.4', 'registry.local:5000/mirror/app:2.4', 'registry.local:5000/mirror/app:2.4'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    [`app@sha256:${'a'.repeat(64)}`, `docker.io/library/app@sha256:${'a'.repeat(64)}`, `app@sha256:${'a'.repeat(64)}`],
  ];
  for (const [input, full, familiar] of cases) {
    it(`${input} -> ${full}`, () => {
      const r = parseReference(input);
      assert.equal(formatReference(r), full);
      assert.equal(familiarReference(r), familiar);
    });
  }
  for (const bad of ['', 'Upper:1', 'team/Upper', 'app:', 'app:bad tag', `${'a'.repeat(64)}`, 'app@sha256:xyz', 'a/../b', '/abs']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseReference(bad)));
  }
});

describe('retag rules', () => {
  it('rewrites a prefix', () => {
    const r = [parseRetagRule('docker.io/library/=registry.local/mirror/')];
    assert.equal(applyRetag('docker.io/library/nginx:1.27', r), 'registry.local/mirror/nginx:1.27');
    assert.equal(applyRetag('docker.io/team/app:1', r), 'docker.io/team/app:1');
  });
  it('renames one image exactly, before prefix rules, with docker-style short names', () => {
    const r = ['docker.io/library/=mirror.local/lib/', 'nginx:1.27=web:prod'].map(parseRetagRule);
    assert.equal(applyRetag('docker.io/library/nginx:1.27', r), 'docker.io/library/web:prod');
    assert.equal(applyRetag('docker.io/library/nginx:1.26', r), 'mirror.local/lib/nginx:1.26');
  });
  it('treats a bare registry host as every repository on it', () => {
    const r = [parseRetagRule('docker.io/=registry.local:5000/hub/')];
    assert.equal(applyRetag('docker.io/library/nginx:1', r), 'registry.local:5000/hub/library/nginx:1');
  });
  it('renames every tag of a bare repository, keeping the tag; exact renames win, prefixes come last', () => {
    const r = ['docker.io/library/=mirror.local/lib/', 'demo=web', 'demo:2=old:2'].map(parseRetagRule);
    assert.equal(r[1]!.kind, 'repository');
    assert.equal(applyRetag('docker.io/library/demo:1', r), 'docker.io/library/web:1');
    assert.equal(applyRetag('docker.io/library/demo:latest', r), 'docker.io/library/web:latest');
    assert.equal(applyRetag('docker.io/library/demo:2', r), 'docker.io/library/old:2');
    assert.equal(applyRetag('docker.io/library/demox:1', r), 'mirror.local/lib/demox:1');
    // A tag on either side makes it one image, named as docker normalises it (demo is demo:latest).
    assert.equal(parseRetagRule('demo=web:1').from, 'docker.io/library/demo:latest');
    assert.equal(parseRetagRule('registry.local:5000/demo=web').kind, 'repository');
  });
  for (const bad of ['nginx', '=x', 'a/=b', 'nginx:1=Bad:Name']) {
    it(`rejects ${bad}`, () => assert.throws(() => parseRetagRule(bad)));
  }
});

describe('digests and platforms', () => {
  it('computes chain IDs as image-spec defines them', () => {
    const a = asDiffId(`sha256:${'1'.repeat(64)}`);
    const b = asDiffId(`sha256:${'2'.repeat(64)}`);
    const [c1, c2] = chainIds([a, b]);
    assert.equal(c1, a);
    // sha256("sha256:111… sha256:222…")
    assert.notEqual(c2, b);
    assert.ok(isSha256(c2));
    assert.deepEqual(chainIds([a, b]), [c1, c2]);
    assert.notDeepEqual(chainIds([b, a])[1], c2);
  });
  it('accepts only canonical sha256', () => {
    assert.ok(!isSha256(`sha256:${'A'.repeat(64)}`));
    assert.ok(!isSha256('sha256:../../x'));
    assert.ok(!isSha256(`sha512:${'a'.repeat(128)}`));
  });
  it('parses os/arch[/variant]', () => {
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.equal(formatPlatform(parsePlatform('Linux/AMD64')), 'linux/amd64');
    assert.throws(() => parsePlatform('linux'));
  });
});

describe('tar headers', () => {
  it('round-trips names, sizes past 8 GiB and long paths', () => {
    for (const [name, size] of [['ferry.json', 10], [`blobs/sha256/${'f'.repeat(64)}`, 12 * 1024 ** 3], [`${'d'.repeat(120)}/file`, 0]] as const) {
      const h = decodeHeader(encodeHeader(name, size));
      assert.equal(h.name, name);
      assert.equal(h.size, size);
      assert.equal(h.type, 'file');
    }
  });
  it('refuses a header whose checksum does not match', () => {
    const buf = encodeHeader('x', 1);
    buf[0] = 'y'.charCodeAt(0);
    assert.throws(() => decodeHeader(buf), /checksum/);
  });
});

describe('grouping images for concurrent saves', () => {
  const img = (id: string, diffIds: string[], size: number): SourceImage => ({ asked: id, refs: [], id, platform: { os: 'linux', architecture: 'amd64' }, diffIds: diffIds.map((d) => asDiffId(`sha256:${d.repeat(64)}`)), size });
  it('keeps images that share layers together and balances the groups by size', () => {
    const groups = groupForSaves([img('a', ['1', '2'], 100), img('b', ['1', '3'], 50), img('c', ['4'], 120), img('d', ['5'], 20)], 2);
    assert.equal(groups.length, 2);
    const ids = groups.map((g) => g.map((i) => i.id).sort().join(''));
    assert.ok(ids.includes('ab'), ids.join('|'));
    assert.deepEqual(ids.sort(), ['ab', 'cd']);
  });
  it('splits images that share only a base when that balances the daemon\'s work', () => {
    const groups = groupForSaves([img('a', ['1', '2'], 100), img('b', ['1', '3'], 100)], 2);
    assert.deepEqual(groups.map((g) => g.map((i) => i.id)), [['a'], ['b']]);
  });
  it('keeps a small image with the one it extends', () => {
    const groups = groupForSaves([img('big', ['1', '2'], 100), img('other', ['3'], 90), img('child', ['1', '2', '4'], 101)], 2);
    const withChild = groups.find((g) => g.some((i) => i.id === 'child'))!;
    assert.ok(withChild.some((i) => i.id === 'big'), JSON.stringify(groups.map((g) => g.map((i) => i.id))));
  });
  it('never makes empty groups', () => {
    assert.equal(groupForSaves([img('a', ['1'], 1)], 4).length, 1);
  });
});
