// The --retag option `load` and `push` share: FROM=TO rules, checked once, as usage errors.
import { parseRetagRule, type RetagRule } from '../image/retag.js';
import type { ReferenceError } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';

export const RETAG_DESCRIPTION = 'FROM=TO: a prefix rule ending in "/" or an exact rename (repeatable)';

export function retagRules(list: readonly string[] | undefined): RetagRule[] {
  try {
    return (list ?? []).map(parseRetagRule);
  } catch (err) {
    throw new FerryError('USAGE', (err as ReferenceError).message);
  }
}
