// Retag rules FROM=TO: a FROM ending in "/" rewrites a repository prefix, a bare repository renames every tag of
// it, anything else renames one image. Pure.
import { formatReference, parseReference, repository, ReferenceError } from './reference.js';

export interface RetagRule {
  /** prefix: "docker.io/library/=mirror/"; repository: "demo=web" (every tag, kept); exact: "demo:1=web:prod". */
  kind: 'prefix' | 'repository' | 'exact';
  from: string;
  to: string;
  /** The rule as the user wrote it, for messages. */
  given: string;
}

/** parseRetagRule validates a rule; both sides are normalised so that "nginx:1.27" matches docker.io/library/nginx:1.27. */
export function parseRetagRule(rule: string): RetagRule {
  const eq = rule.indexOf('=');
  if (eq <= 0 || eq === rule.length - 1) {
    throw new ReferenceError(`invalid retag rule "${rule}": expected FROM=TO, e.g. docker.io/library/=registry.local/mirror/, nginx=web or nginx:1.27=web:prod`);
  }
  const from = rule.slice(0, eq).trim();
  const to = rule.slice(eq + 1).trim();
  if (from.endsWith('/') !== to.endsWith('/')) {
    throw new ReferenceError(`invalid retag rule "${rule}": a prefix rule ends in "/" on both sides`);
  }
  if (from.endsWith('/')) {
    // Validate the prefixes by parsing a probe name under each.
    parseReference(`${to}probe:tag`);
    return { kind: 'prefix', from: normalisePrefix(from), to: normalisePrefix(to), given: rule };
  }
  const [f, t] = [parseReference(from), parseReference(to)];
  // Two bare repositories rename a repository, every tag kept, as `docker tag` users mean "demo=web".
  if (!namesTag(from) && !namesTag(to)) return { kind: 'repository', from: repository(f), to: repository(t), given: rule };
  return { kind: 'exact', from: formatReference(f), to: formatReference(t), given: rule };
}

/** namesTag says a reference as written carries a tag or a digest (after its last "/", so a registry port is not one). */
function namesTag(s: string): boolean {
  return s.includes('@') || s.lastIndexOf(':') > s.lastIndexOf('/');
}

function normalisePrefix(p: string): string {
  const bare = p.slice(0, -1);
  // A bare registry host ("registry.local:5000/") names everything on it, not its library/ namespace.
  if (!bare.includes('/') && (bare.includes('.') || bare.includes(':') || bare === 'localhost')) {
    return bare === 'index.docker.io' ? 'docker.io/' : `${bare}/`;
  }
  const probe = formatReference(parseReference(`${p}probe:tag`));
  return probe.slice(0, probe.length - 'probe:tag'.length);
}

/** retagMatches says the rule would rename ref (a full reference), were no other rule before it. */
export function retagMatches(rule: RetagRule, ref: string): boolean {
  switch (rule.kind) {
    case 'exact':
      return rule.from === ref;
    case 'repository':
      return ref.startsWith(`${rule.from}:`) || ref.startsWith(`${rule.from}@`);
    case 'prefix':
      return ref.startsWith(rule.from);
  }
}

/** ruleFor is the rule that renames ref: exact renames first, then repositories, then the first matching prefix. */
export function ruleFor(ref: string, rules: readonly RetagRule[]): RetagRule | undefined {
  for (const kind of ['exact', 'repository', 'prefix'] as const) {
    const hit = rules.find((r) => r.kind === kind && retagMatches(r, ref));
    if (hit) return hit;
  }
  return undefined;
}

/** applyRetag returns the new full reference for ref (see ruleFor), or ref itself when no rule matches. */
export function applyRetag(ref: string, rules: readonly RetagRule[]): string {
  const r = ruleFor(ref, rules);
  if (!r) return ref;
  if (r.kind === 'exact') return r.to;
  return formatReference(parseReference(r.to + ref.slice(r.from.length)));
}
