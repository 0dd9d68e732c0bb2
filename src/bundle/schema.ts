// Validation of ferry.json against schemas/ferry-bundle-v1.schema.json (shipped with ferry, used by tests too).
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

type Validate = ((doc: unknown) => boolean) & { errors?: { instancePath: string; message?: string; data?: unknown }[] | null };
const validators = new Map<number, Validate>();

export const BUNDLE_SCHEMA_PATH = new URL('../../schemas/ferry-bundle-v1.schema.json', import.meta.url);
export const BUNDLE_SCHEMA_V2_PATH = new URL('../../schemas/ferry-bundle-v2.schema.json', import.meta.url);

/** validateBundleIndex returns undefined when doc is a valid index of its version (1, or 2 with deltas), else the first few faults. */
export function validateBundleIndex(doc: unknown): string[] | undefined {
  const version = (doc as { version?: unknown } | null)?.version === 2 ? 2 : 1;
  let validate = validators.get(version);
  if (!validate) {
    const ajv = new Ajv({ allErrors: false, strict: true, verbose: true });
    validate = ajv.compile(JSON.parse(readFileSync(version === 2 ? BUNDLE_SCHEMA_V2_PATH : BUNDLE_SCHEMA_PATH, 'utf8'))) as Validate;
    validators.set(version, validate);
  }
  if (validate(doc)) return undefined;
  return (validate.errors ?? []).slice(0, 10).map((e) => {
    // Say what was found, briefly: the value is from the bundle, so it is escaped by the printer.
    const got = typeof e.data === 'string' || typeof e.data === 'number' ? ` (found ${JSON.stringify(e.data).slice(0, 200)})` : '';
    return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${got}`;
  });
}
