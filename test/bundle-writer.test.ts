// BundleWriter's record of what it holds and the thin plan pack applies, as pack asks them while layers pass (no
// daemon needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleWriter } from '../src/bundle/writer.js';
import type { DiffId, Digest } from '../src/image/digest.js';
import { OCI_LAYER_ZSTD } from '../src/image/media-types.js';
import { ThinPlan } from '../src/transfer/thin-plan.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('BundleWriter.layersOfSize and ThinPlan.layersOfSize', () => {
  it('name the layers held with a size: stored ones, and ones named to stay behind, not others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-writer-'));
    try {
      const writer = await BundleWriter.create(join(dir, 'b.ferry.tar'), { compression: 'zstd' });
      const behind = sha(Buffer.from('behind')) as DiffId;
      const unnamed = sha(Buffer.from('unnamed')) as DiffId;
      const thin = new ThinPlan({
        reliedLayers: new Map([
          [behind, { digest: sha(Buffer.from('blob')) as Digest, size: 10, mediaType: OCI_LAYER_ZSTD, diffId: behind, uncompressedSize: 7000 }],
          [unnamed, undefined],
        ]),
        reliedBlobs: new Map(),
      });
      const layer = Buffer.alloc(5000, 1);
      const stored = await writer.addLayer((async function* () { yield layer; })(), (d) => !thin.staysBehind(d));
      assert.equal(stored.diffId, sha(layer));
      assert.equal(stored.dropped, undefined, 'a layer the plan does not leave behind is stored');
      assert.deepEqual(writer.layersOfSize(5000), [sha(layer)]);
      assert.deepEqual(thin.layersOfSize(7000), [behind]);
      assert.deepEqual([...writer.layersOfSize(5001), ...thin.layersOfSize(5001)], []);
      // A layer left behind but not yet named is compressed to learn which it is, dropped, then named by its tar.
      const other = Buffer.alloc(3000, 2);
      const plan2 = new ThinPlan({ reliedLayers: new Map([[sha(other) as DiffId, undefined]]), reliedBlobs: new Map() });
      const dropped = await writer.addLayer((async function* () { yield other; })(), (d) => !plan2.staysBehind(d));
      assert.equal(dropped.dropped, true);
      assert.equal(writer.layer(sha(other) as DiffId), undefined);
      assert.equal(plan2.leavesOut(sha(other) as DiffId), false);
      assert.deepEqual(plan2.passed(sha(other) as DiffId, 3000), { digest: sha(other), size: 3000, mediaType: 'application/vnd.oci.image.layer.v1.tar', diffId: sha(other), uncompressedSize: 3000 });
      assert.equal(plan2.leavesOut(sha(other) as DiffId), true);
      await writer.abort();
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
