// unsafe-layers: a layer's tar entries checked (LayerEntryScan) on the uncompressed bytes a copy already makes, so a
// layer that would write outside the image's root is refused (exit 3) before the entry reaches the target.
import { LayerEntryScan } from '../tar/layer-entries.js';
import { FerryError } from '../ui/errors.js';

/**
 * entryInspector returns a function to call with each uncompressed chunk of one layer, in order; it throws the
 * bundle error as soon as a chunk completes an unsafe entry, so the chunk holding it is never passed on.
 */
export function entryInspector(path: string, entry: string, stopped: string): (chunk: Uint8Array) => void {
  const scan = new LayerEntryScan();
  return (chunk) => {
    scan.write(chunk);
    if (scan.unsafe) throw unsafeLayer(path, entry, stopped, scan.report());
  };
}

/** entriesChecked yields src unchanged, each chunk only once its entries are checked (see entryInspector). */
export async function* entriesChecked(src: AsyncIterable<Buffer>, path: string, entry: string, stopped: string): AsyncGenerator<Buffer> {
  const inspect = entryInspector(path, entry, stopped);
  for await (const chunk of src) {
    inspect(chunk);
    yield chunk;
  }
}

export function unsafeLayer(path: string, entry: string, stopped: string, report: string[]): FerryError {
  return new FerryError('BUNDLE_INVALID', `${path}: ${entry}: ${report[0]}; ${stopped}`, {
    details: report,
    hint: "unpacked, this layer would write outside the image's root; `ferry verify` lists every such entry. If you trust the bundle, --allow-unsafe-layers sends it anyway, for the target to judge",
  });
}
