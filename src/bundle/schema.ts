// Validation of ferry.json against schemas/ferry-bundle-v1.schema.json (shipped with ferry, used by tests too).
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';

let validate: ((doc: unknown) => boolean) & { errors?: { instancePath: string; message?: string; data?: unknown }[] | null };

export const BUNDLE_SCHEMA_PATH = new URL('../../schemas/ferry-bundle-v1.schema.json', import.meta.url);

/** validateBundleIndex returns undefined when doc is a valid v1 index, else the first few faults. */
export function validateBundleIndex(doc: unknown): string[] | undefined {
  if (!validate) {
    const ajv = new Ajv({ allErrors: false, strict: true, verbose: true });
    validate = ajv.compile(JSON.parse(readFileSync(BUNDLE_SCHEMA_PATH, 'utf8')));
  }
  if (validate(doc)) return undefined;
  return (validate.errors ?? []).slice(0, 10).map((e) => {
    // Say what was found, briefly: the value is from the bundle, so it is escaped by the printer.
    const got = typeof e.data === 'string' || typeof e.data === 'number' ? ` (found ${JSON.stringify(e.data).slice(0, 200)})` : '';
    return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${got}`;
  });
}
