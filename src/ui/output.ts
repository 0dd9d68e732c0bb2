// Output for machines and people: --json results on stdout, errors as "ferry: what" plus "hint: what to do".
import { escapeControls, type FerryError } from './errors.js';

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
  // Messages quote names from bundles and daemons: no control character reaches the terminal.
  const shown = lines.map((l) => escapeControls(l, /[\t\n]/));
  if (process.env.FERRY_DEBUG && err.cause) shown.push(String((err.cause as Error).stack ?? err.cause));
  process.stderr.write(`${shown.join('\n')}\n`);
}
