// The JSON Schemas of the commands' --json output (schemas/cli/*.json), compiled once with ajv, strict: a test
// hands each output to checkJson, which fails with ajv's faults when the output drifts from its schema.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const DIR = new URL('../../schemas/cli/', import.meta.url);
const BASE = 'https://ferry.invalid/schemas/cli/';

let ajv: Ajv | undefined;
const checked = new Set<string>();

/** schemaNames lists the command schemas (every file in schemas/cli but the shared definitions). */
export function schemaNames(): string[] {
  return readdirSync(DIR).filter((f) => f.endsWith('.json') && f !== 'defs.json').map((f) => f.slice(0, -'.json'.length)).sort();
}

function validator(name: string): ValidateFunction {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, strict: true });
    for (const f of readdirSync(DIR).filter((x) => x.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(new URL(f, DIR), 'utf8')) as object);
  }
  const v = ajv.getSchema(`${BASE}${name}.json`);
  assert.ok(v, `no schema schemas/cli/${name}.json`);
  return v;
}

/** checkJson asserts that doc (a command's parsed --json output) matches schemas/cli/NAME.json, and returns it. */
export function checkJson<T>(name: string, doc: T): T {
  const v = validator(name);
  const ok = v(doc);
  assert.ok(ok, `--json output does not match schemas/cli/${name}.json:\n${JSON.stringify(v.errors, null, 2)}\n${JSON.stringify(doc, null, 2).slice(0, 4000)}`);
  checked.add(name);
  return doc;
}

/** checkedSchemas names the schemas checkJson has validated an output against in this process. */
export function checkedSchemas(): string[] {
  return [...checked].sort();
}
