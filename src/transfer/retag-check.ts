// checkRetagRules: a --retag rule that renames none of the images a load or push takes is a usage error, raised
// before anything moves, naming the rule and the names it could have matched (it would otherwise do nothing, silently).
import { familiarReference, parseReference } from '../image/reference.js';
import { retagMatches, ruleFor, type RetagRule } from '../image/retag.js';
import { FerryError } from '../ui/errors.js';
import type { Chosen } from './select.js';

/** How many of the names a rule could have matched an error lists. */
const SHOWN = 12;

export function checkRetagRules(rules: readonly RetagRule[], choices: readonly Chosen[]): void {
  if (rules.length === 0) return;
  const refs = [...new Set(choices.flatMap((c) => [...c.images.flatMap((x) => x.refs), ...c.indexes.flatMap((x) => x.refs)]))];
  const used = new Set(refs.map((r) => ruleFor(r, rules)));
  const idle = rules.filter((r) => !used.has(r));
  if (idle.length === 0) return;
  const familiar = (r: string): string => familiarReference(parseReference(r));
  const names = [...new Set(refs.map(familiar))].sort();
  const shown = names.length === 0 ? 'none: the images taken have no names' : `${names.slice(0, SHOWN).join(', ')}${names.length > SHOWN ? ` and ${names.length - SHOWN} more` : ''}`;
  const why = (r: RetagRule): string => {
    const shadowed = refs.filter((ref) => retagMatches(r, ref));
    return shadowed.length ? `every name it matches (${shadowed.map(familiar).join(', ')}) is renamed by another rule first` : `it matches no image ${refs.length ? 'taken' : 'with a name'}`;
  };
  throw new FerryError('USAGE', `${idle.map((r) => `--retag ${r.given} renames nothing: ${why(r)}`).join('; ')}. Names it could match: ${shown}`, {
    hint: 'FROM is a name the bundle holds (`ferry inspect BUNDLE`): an image (nginx:1.27=web:prod), a repository with every tag (nginx=web), or a prefix ending in / (docker.io/library/=registry.local/); nothing was changed',
  });
}
