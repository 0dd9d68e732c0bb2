// Retag rules FROM=TO: a FROM ending in "/" rewrites a repository prefix, anything else renames one image. Pure.
import { formatReference, parseReference, ReferenceError } from './reference.js';

export interface RetagRule {
  kind: 'prefix' | 'exact';
  from: string;
  to: string;
}

/** parseRetagRule validates a rule; both sides are normalised so that "nginx:1.27" matches docker.io/library/nginx:1.27. */
export function parseRetagRule(rule: string): RetagRule {
  const eq = rule.indexOf('=');
  if (eq <= 0 || eq === rule.length - 1) {
    throw new ReferenceError(`invalid retag rule "${rule}": expected FROM=TO, e.g. docker.io/library/=registry.local/mirror/ or nginx:1.27=web:prod`);
  }
  const from = rule.slice(0, eq).trim();
  const to = rule.slice(eq + 1).trim();
  if (from.endsWith('/') !== to.endsWith('/')) {
    throw new ReferenceError(`invalid retag rule "${rule}": a prefix rule ends in "/" on both sides`);
  }
  if (from.endsWith('/')) {
    // Validate the prefixes by parsing a probe name under each.
    parseReference(`${to}probe:tag`);
    return { kind: 'prefix', from: normalisePrefix(from), to: normalisePrefix(to) };
  }
  return { kind: 'exact', from: formatReference(parseReference(from)), to: formatReference(parseReference(to)) };
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

/** applyRetag returns the new full reference for ref; the first matching rule wins, exact renames before prefixes. */
export function applyRetag(ref: string, rules: readonly RetagRule[]): string {
  for (const r of rules) if (r.kind === 'exact' && r.from === ref) return r.to;
  for (const r of rules) {
    if (r.kind === 'prefix' && ref.startsWith(r.from)) return formatReference(parseReference(r.to + ref.slice(r.from.length)));
  }
  return ref;
}
