// ferry serve's pure parts: HTTP ranges as RFC 9110 reads them, and htpasswd files (bcrypt only, as htpasswd -B).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { parseRange } from '../src/serve/range.js';
import { Htpasswd } from '../src/serve/access.js';
import { FerryError } from '../src/ui/errors.js';

describe('serve: ranges', () => {
  it('reads one byte range, an open end, a suffix; several ranges or another unit send the whole blob', () => {
    assert.deepEqual(parseRange('bytes=0-99', 1000), [0, 99]);
    assert.deepEqual(parseRange('bytes=900-', 1000), [900, 999]);
    assert.deepEqual(parseRange('bytes=-100', 1000), [900, 999]);
    assert.deepEqual(parseRange('bytes=-5000', 1000), [0, 999], 'a suffix longer than the blob is all of it');
    assert.deepEqual(parseRange('bytes=990-5000', 1000), [990, 999], 'an end past the blob is cut to it');
    for (const whole of [undefined, 'bytes=0-1,5-9', 'items=0-9', 'bytes=x-y', 'bytes=-']) assert.equal(parseRange(whole, 1000), undefined, String(whole));
  });

  it('is unsatisfiable past the end, backwards, empty, or absurdly large', () => {
    for (const bad of ['bytes=1000-', 'bytes=500-400', 'bytes=-0', 'bytes=1234567890123456-']) assert.equal(parseRange(bad, 1000), 'unsatisfiable', bad);
    assert.equal(parseRange('bytes=-1', 0), 'unsatisfiable', 'nothing to send of an empty blob');
  });
});

describe('serve: htpasswd', () => {
  it('takes bcrypt users ($2y$ as htpasswd -B writes them), checks passwords, refuses other hashes by line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-htpasswd-'));
    try {
      const file = join(dir, 'users');
      await writeFile(file, `# users\nsite:${bcrypt.hashSync('s3cret', 4).replace(/^\$2b\$/, '$2y$')}\n`);
      const h = await Htpasswd.read(file);
      const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
      assert.equal(await h.allows(basic('site', 's3cret')), true);
      assert.equal(await h.allows(basic('site', 's3cret')), true, 'remembered');
      assert.equal(await h.allows(basic('site', 'wrong')), false);
      assert.equal(await h.allows(basic('other', 's3cret')), false);
      assert.equal(await h.allows(undefined), false);
      assert.equal(await h.allows('Bearer x'), false);
      await writeFile(file, 'site:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n');
      await assert.rejects(Htpasswd.read(file), (e: unknown) => e instanceof FerryError && e.code === 'USAGE' && /users:1: .*only bcrypt/.test(e.message));
      await writeFile(file, '\n# nobody\n');
      await assert.rejects(Htpasswd.read(file), /names no user/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
