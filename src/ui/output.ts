// Output for machines and people: --json results on stdout, errors as "ferry: what" plus "hint: what to do".
import type { FerryError } from './errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printError(err: FerryError, json: boolean): void {
  if (json) {
    printJson({ error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details.length ? { details: err.details } : {}), exitCode: err.exitCode } });
  }
  const lines = [`ferry: ${err.message}`];
  for (const d of err.details.slice(0, 50)) lines.push(`  - ${d}`);
  if (err.details.length > 50) lines.push(`  … and ${err.details.length - 50} more`);
  if (err.hint) lines.push(`hint: ${err.hint}`);
  if (process.env.FERRY_DEBUG && err.cause) lines.push(String((err.cause as Error).stack ?? err.cause));
  process.stderr.write(`${lines.join('\n')}\n`);
}
