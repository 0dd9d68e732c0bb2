// The --retag option `load` and `push` share: FROM=TO rules, checked once, as usage errors.
import { parseRetagRule, type RetagRule } from '../image/retag.js';
import type { ReferenceError } from '../image/reference.js';
import { FerryError } from '../ui/errors.js';

export const RETAG_DESCRIPTION = 'FROM=TO: a prefix ending in "/" on both sides, a repository (every tag kept), or one image (repeatable)';

export function retagRules(list: readonly string[] | undefined): RetagRule[] {
  try {
    return (list ?? []).map(parseRetagRule);
  } catch (err) {
    throw new FerryError('USAGE', (err as ReferenceError).message, {
      hint: 'e.g. --retag docker.io/library/=registry.local/mirror/ (a prefix), --retag nginx=web (every tag of nginx) or --retag nginx:1.27=web:prod (one image)',
    });
  }
}
