// pooled: a bundle seen together with the others given with it (the volumes of a set, a chain): a blob it lacks
// but another holds is read from there, so an image spread over volumes loads and pushes whole.
import type { Digest } from '../image/digest.js';
import type { BundleReader } from './reader.js';

const BLOB = /^blobs\/sha256\/([a-f0-9]{64})$/;

export function pooled(bundle: BundleReader, pool: readonly BundleReader[]): BundleReader {
  if (pool.length <= 1) return bundle;
  const holder = (digest: string): BundleReader | undefined => (bundle.blob(digest as Digest) ? bundle : pool.find((b) => b !== bundle && b.blob(digest as Digest)));
  return new Proxy(bundle, {
    get(target, prop) {
      if (prop === 'blob') return (digest: Digest) => holder(digest)?.blob(digest);
      if (prop === 'stream') {
        return (name: string, from?: number) => {
          const m = BLOB.exec(name);
          const h = m ? holder(`sha256:${m[1]}`) : undefined;
          return (h ?? target).stream(name, from);
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
