// Digests and diffIDs: branded strings, strict parsing, chain IDs. Pure; no I/O.
import { createHash } from 'node:crypto';

/** Digest is the sha256 of a blob's bytes as stored (compressed, for layers). */
export type Digest = string & { readonly brand: 'Digest' };
/** DiffId is the sha256 of a layer's uncompressed tar. */
export type DiffId = string & { readonly brand: 'DiffId' };
/** ChainId identifies a layer together with every layer below it (image-spec "ChainID"). */
export type ChainId = string & { readonly brand: 'ChainId' };

const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** isSha256 accepts only the canonical form: lowercase hex, the one algorithm ferry writes. */
export function isSha256(s: unknown): s is string {
  return typeof s === 'string' && SHA256.test(s);
}

export function asDiffId(s: string): DiffId {
  if (!isSha256(s)) throw new TypeError(`not a sha256 diffID: ${JSON.stringify(s).slice(0, 100)}`);
  return s as DiffId;
}

/** hex returns the 64 hex characters after "sha256:". */
export function hex(d: string): string {
  return d.slice('sha256:'.length);
}

export function sha256Of(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

/** chainIds returns the ChainID of each layer prefix: ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)). */
export function chainIds(diffIds: readonly DiffId[]): ChainId[] {
  const out: ChainId[] = [];
  let prev: string | undefined;
  for (const d of diffIds) {
    prev = prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`;
    out.push(prev as ChainId);
  }
  return out;
}
