// LayerEntryScan on crafted layer tars, fed in chunks of every awkward size: each way an entry escapes the root
// is named, and what real images hold (absolute symlink targets, whiteouts, opaque markers, "./" names) is not.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LayerEntryScan } from '../src/tar/layer-entries.js';
import { BLOCK, paxRecords, setField, tarBytes, type RawEntry } from './helpers/crafted-tar.js';

/** scan feeds a tar to a fresh scan in chunks of `chunk` bytes and returns its report. */
function scan(tar: Buffer, chunk = 4096): string[] {
  const s = new LayerEntryScan();
  for (let at = 0; at < tar.length; at += chunk) s.write(tar.subarray(at, at + chunk));
  return s.report();
}

/** Each case is checked whole, in 1-byte, 511-byte and 100 KiB chunks: the parse must not depend on where chunks cut. */
function unsafe(entries: RawEntry[] | Buffer, ...expect: RegExp[]): void {
  const tar = Buffer.isBuffer(entries) ? entries : tarBytes(entries);
  for (const chunk of [tar.length || 1, 1, 511, 100 << 10]) {
    const report = scan(tar, chunk);
    assert.equal(report.length, expect.length, `chunks of ${chunk}: ${JSON.stringify(report)}`);
    expect.forEach((re, k) => assert.match(report[k]!, re, `chunks of ${chunk}`));
  }
}

const file = (name: string, data = 'x'): RawEntry => ({ name, data: Buffer.from(data) });
const dir = (name: string): RawEntry => ({ name, type: '5' });
const symlink = (name: string, linkname: string): RawEntry => ({ name, type: '2', linkname });
const hardlink = (name: string, linkname: string): RawEntry => ({ name, type: '1', linkname });
const pax = (records: Record<string, string>, type = 'x'): RawEntry => ({ name: 'PaxHeaders/x', type, data: paxRecords(records) });
const longName = (name: string, type = 'L'): RawEntry => ({ name: '././@LongLink', type, data: Buffer.from(`${name}\0`) });

describe('LayerEntryScan', () => {
  it('passes what real layers hold: directories, files, "./" names, absolute symlink targets, whiteouts, opaque markers, hard links inside', () => {
    unsafe([
      dir('./'),
      dir('bin/'),
      file('bin/busybox', 'x'.repeat(5000)),
      symlink('bin/sh', '/bin/busybox'),
      symlink('usr/lib/os-release', '../../etc/os-release'),
      hardlink('bin/ls', 'bin/busybox'),
      file('./etc/passwd', 'root:x:0:0::/root:/bin/sh\n'),
      file('var/.wh.cache'),
      file('opt/.wh..wh..opq'),
      file('usr/local/..foo/bar..baz'),
      pax({ path: 'a/very/long/name'.repeat(10), 'SCHILY.xattr.user.x': 'y' }),
      file('a/very/long/name'.repeat(10)),
      pax({ comment: 'git archive commit id' }, 'g'),
      symlink('lib', 'usr/lib'),
      // A symlink replaced by another.
      symlink('data', '/srv'),
      symlink('data', '/srv/data'),
    ]);
  });

  it('names "../" names and absolute names', () => {
    unsafe([file('../../etc/cron.d/x'), file('ok'), file('/etc/passwd'), file('a/../../b')], /"\.\.\/\.\.\/etc\/cron\.d\/x" has a "\.\." component/, /"\/etc\/passwd" is an absolute path/, /"a\/\.\.\/\.\.\/b" has a "\.\." component/);
  });

  it('names a pax path or linkpath that escapes, and a GNU long name or long link that does', () => {
    unsafe([pax({ path: '../../etc/x' }), file('harmless')], /"\.\.\/\.\.\/etc\/x" has a "\.\."/);
    unsafe([pax({ linkpath: '/etc/shadow' }), hardlink('shadow', 'harmless')], /"shadow" is a hard link to the absolute path "\/etc\/shadow"/);
    unsafe([longName('../x'), file('harmless')], /"\.\.\/x" has a "\.\."/);
    unsafe([longName('../../etc/passwd', 'K'), hardlink('passwd', 'harmless')], /"passwd" is a hard link to "\.\.\/\.\.\/etc\/passwd", which climbs out/);
    // A pax path applies to the next entry only.
    unsafe([pax({ path: 'ok' }), file('x'), file('y')]);
  });

  it('names a name the ustar prefix field makes escape', () => {
    const tar = tarBytes([file('passwd')]);
    setField(tar, 0, 'prefix', '../../etc');
    unsafe(tar, /"\.\.\/\.\.\/etc\/passwd" has a "\.\."/);
  });

  it('names hard links to absolute paths, out of the root, and through a symlink', () => {
    unsafe([hardlink('app/passwd', '/etc/passwd')], /"app\/passwd" is a hard link to the absolute path "\/etc\/passwd"/);
    unsafe([hardlink('app/passwd', '../../../etc/passwd')], /is a hard link to "\.\.\/\.\.\/\.\.\/etc\/passwd", which climbs out/);
    unsafe([symlink('root', '/'), hardlink('app/shadow', 'root/etc/shadow')], /"app\/shadow" is a hard link to "root\/etc\/shadow", through the symlink "root"/);
  });

  it('names a write through a symlink of the same layer, however the path is spelled', () => {
    unsafe([symlink('etc', '/etc'), file('etc/cron.d/evil')], /"etc\/cron\.d\/evil" is written through the symlink "etc"/);
    unsafe([symlink('./a/b', '../../..'), dir('a/b/x/'), file('./a//b/x/y')], /"a\/b\/x\/" is written through the symlink "a\/b"/, /"\.\/a\/\/b\/x\/y" is written through the symlink "a\/b"/);
    unsafe([symlink('passwd', '/etc/passwd'), file('passwd', 'root::0:0::/:/bin/sh\n')], /"passwd" replaces the symlink "passwd"/);
    // Python's tarfile chmods a directory entry's path after mkdir fails on the symlink: the target's mode changes.
    unsafe([symlink('etc', '/etc'), dir('etc/')], /"etc\/" replaces the symlink "etc"/);
  });

  it('names whiteouts of ".." and "." and whiteouts outside the root', () => {
    unsafe([file('usr/.wh...')], /"usr\/\.wh\.\.\." is a whiteout of "\.\."/);
    unsafe([file('usr/.wh..')], /"usr\/\.wh\.\." is a whiteout of "\."/);
    unsafe([file('../.wh.etc')], /"\.\.\/\.wh\.etc" has a "\.\." component/);
  });

  it('names a PAX global header that renames every later entry (GNU tar and Python apply it)', () => {
    unsafe([pax({ path: '../../etc/x' }, 'g'), file('a'), file('b')], /is the path a PAX global header gives every later entry/);
  });

  it('stops, as unsafe, where readers would part ways: a bad header, content on a link header, old GNU sparse', () => {
    const bad = tarBytes([file('a'), file('b')]);
    bad[BLOCK * 2 + 148] = bad[BLOCK * 2 + 148]! ^ 1;
    unsafe(bad, /tar header at byte 1024.*is not a valid tar header/);
    // Go reads no content after a symlink header: the "content" could be a hidden entry that we would skip.
    const hidden = tarBytes([file('../../hidden')]);
    unsafe([{ name: 'link', type: '2', linkname: 'x', data: hidden.subarray(0, BLOCK * 2), size: BLOCK * 2 }], /"link" is a header of type '2' claiming 1024 bytes/);
    unsafe([{ name: 'sparse', type: 'S', data: Buffer.alloc(10) }], /old GNU sparse file/);
  });

  it('skips content by size, so file data that looks like a header is not read as one, and stops at the end marker', () => {
    const inner = tarBytes([file('../../inside-data')]);
    unsafe(Buffer.concat([tarBytes([{ name: 'blob.tar', data: inner }]), tarBytes([file('../../after-end')])]));
  });

  it('names at most 20 entries and counts the rest', () => {
    const report = scan(tarBytes(Array.from({ length: 25 }, (_, i) => file(`/abs${i}`))));
    assert.equal(report.length, 21);
    assert.match(report[20]!, /and 5 more unsafe layer entries/);
  });
});
