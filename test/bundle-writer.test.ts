// BundleWriter's record of what it holds, as pack asks it while layers pass (no daemon needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleWriter } from '../src/bundle/writer.js';
import type { DiffId, Digest } from '../src/image/digest.js';
import { OCI_LAYER_ZSTD } from '../src/image/media-types.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BundleWriter.layersOfSize', () => {
  it('names the layers held with a size: stored ones and ones named to stay behind, not others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-writer-'));
    try {
      const writer = await BundleWriter.create(join(dir, 'b.ferry.tar'), { compression: 'zstd' });
      const behind = sha(Buffer.from('behind')) as DiffId;
      const unnamed = sha(Buffer.from('unnamed')) as DiffId;
      writer.relyOn({
        layers: new Map([
          [behind, { digest: sha(Buffer.from('blob')) as Digest, size: 10, mediaType: OCI_LAYER_ZSTD, diffId: behind, uncompressedSize: 7000 }],
          [unnamed, undefined],
        ]),
        blobs: new Map(),
      });
      const layer = Buffer.alloc(5000, 1);
      const stored = await writer.addLayer((async function* () { yield layer; })());
      assert.equal(stored.diffId, sha(layer));
      assert.deepEqual(writer.layersOfSize(5000), [sha(layer)]);
      assert.deepEqual(writer.layersOfSize(7000), [behind]);
      assert.deepEqual(writer.layersOfSize(5001), []);
      await writer.abort();
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
