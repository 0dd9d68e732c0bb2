// Inventories and receipts as files: their types, schema-checked reading, and writing that never leaves a
// half-written file behind. Both are small JSON documents meant to ride across the gap.
import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { writeAtomic } from '../files/atomic.js';
import { checkSignature, signaturePath, writeDetached, type Signer, type Verifier } from '../sign/signature.js';
import { Ajv, type ValidateFunction } from 'ajv';
import { FerryError } from '../ui/errors.js';
import { badLayerIndex, type Holdings } from '../image/holdings.js';

export const INVENTORY_MEDIA_TYPE = 'application/vnd.ferry.inventory.v1+json';
export const RECEIPT_MEDIA_TYPE = 'application/vnd.ferry.receipt.v1+json';

export type TargetKind = 'docker-daemon' | 'registry' | 'containerd';

export interface TargetInfo {
  kind: TargetKind;
  /** The daemon's ID, the registry's host, containerd's UUID/NAMESPACE, or catalog:SITE for what the catalog assumes. */
  id?: string;
  name: string;
}

export interface Inventory extends Holdings {
  mediaType: typeof INVENTORY_MEDIA_TYPE;
  version: 1;
  target: TargetInfo;
}

export interface Receipt extends Holdings {
  mediaType: typeof RECEIPT_MEDIA_TYPE;
  version: 1;
  created: string;
  operation: 'load' | 'push';
  target: TargetInfo;
  /** IDs of the bundles applied, in order. */
  bundles: string[];
  failures: string[];
}

export type Report = { kind: 'inventory'; doc: Inventory } | { kind: 'receipt'; doc: Receipt };

/** Reports are small; anything larger is not one (a site with 100,000 layers writes about 15 MB). */
const MAX_REPORT_BYTES = 256 << 20;

const validators = new Map<string, ValidateFunction>();
function validatorFor(mediaType: string): ValidateFunction | undefined {
  const file = mediaType === INVENTORY_MEDIA_TYPE ? 'ferry-inventory-v1.schema.json' : mediaType === RECEIPT_MEDIA_TYPE ? 'ferry-receipt-v1.schema.json' : undefined;
  if (!file) return undefined;
  let v = validators.get(file);
  if (!v) {
    const ajv = new Ajv({ allErrors: false, strict: true });
    v = ajv.compile(JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8')));
    validators.set(file, v);
  }
  return v;
}

/** parseReport checks a document against its schema and its layer indexes against its table. */
export function parseReport(text: string, where: string): Report {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new FerryError('USAGE', `${where} is not JSON`, { hint: 'give an inventory (ferry inventory), a receipt (ferry load --receipt) or a bundle' });
  }
  const mediaType = (doc as { mediaType?: unknown } | null)?.mediaType;
  const validate = typeof mediaType === 'string' ? validatorFor(mediaType) : undefined;
  if (!validate) {
    throw new FerryError('USAGE', `${where} is neither a ferry inventory nor a receipt (mediaType ${JSON.stringify(mediaType ?? null).slice(0, 80)})`, {
      hint: 'a newer ferry may have written it; otherwise give an inventory, a receipt or a bundle',
    });
  }
  if (!validate(doc)) {
    const e = validate.errors?.[0];
    throw new FerryError('USAGE', `${where} is not a valid ${mediaType === INVENTORY_MEDIA_TYPE ? 'inventory' : 'receipt'}: ${e?.instancePath || '/'} ${e?.message ?? 'is invalid'}`);
  }
  const bad = badLayerIndex(doc as Holdings);
  if (bad) throw new FerryError('USAGE', `${where} is not a valid document: ${bad}`);
  return mediaType === INVENTORY_MEDIA_TYPE ? { kind: 'inventory', doc: doc as Inventory } : { kind: 'receipt', doc: doc as Receipt };
}

/** readReport reads and checks an inventory or receipt; with a verifier, FILE.sig must sign it with that key. */
export async function readReport(path: string, verifier?: Verifier): Promise<Report> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new FerryError('USAGE', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { hint: 'check the path' });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FerryError('USAGE', `${path} is not a regular file`, { hint: 'name the inventory or receipt file itself' });
    if (st.size > MAX_REPORT_BYTES) throw new FerryError('USAGE', `${path} is ${st.size} bytes, too large for an inventory or receipt`, { hint: 'name the inventory or receipt file (ferry inventory -o FILE, load/push --receipt FILE)' });
    const bytes = await fh.readFile();
    if (verifier) {
      const sig = await readFile(signaturePath(path)).catch(() => undefined);
      checkSignature(verifier, bytes, sig, path, basename(signaturePath(path)));
    }
    return parseReport(bytes.toString('utf8'), path);
  } finally {
    await fh.close();
  }
}

/**
 * documentBytes is the stable text of a document: same holdings, same bytes. One line per layer and per image keeps
 * a site with thousands of layers to a few hundred KB while staying readable and diffable.
 */
export function documentBytes(doc: Inventory | Receipt): Buffer {
  const fields = Object.entries(doc);
  const lines = ['{'];
  fields.forEach(([k, v], i) => {
    const comma = i < fields.length - 1 ? ',' : '';
    if (Array.isArray(v) && v.length > 0) {
      lines.push(`${JSON.stringify(k)}: [`);
      v.forEach((item, j) => lines.push(`  ${JSON.stringify(item)}${j < v.length - 1 ? ',' : ''}`));
      lines.push(`]${comma}`);
    } else lines.push(`${JSON.stringify(k)}: ${JSON.stringify(v)}${comma}`);
  });
  lines.push('}', '');
  return Buffer.from(lines.join('\n'));
}

/** writeDocument writes a document whole or not at all (see writeAtomic), with FILE.sig when signed; "-" is stdout. */
export async function writeDocument(path: string, doc: Inventory | Receipt, signer?: Signer): Promise<void> {
  const bytes = documentBytes(doc);
  if (path === '-') {
    if (signer) throw new FerryError('USAGE', 'a signed document needs a file (-o FILE): its signature goes beside it in FILE.sig', { hint: 'add -o FILE' });
    await new Promise<void>((res, rej) => process.stdout.write(bytes, (err) => (err ? rej(err) : res())));
    return;
  }
  await writeAtomic(path, bytes);
  // A signature left from an earlier document would no longer match: it goes too.
  if (signer) await writeDetached(path, signer.sign(bytes, basename(path)));
  else await rm(signaturePath(path), { force: true });
}
