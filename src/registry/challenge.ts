// WWW-Authenticate parsing (RFC 7235 challenges) and scope strings. Pure; no I/O.

export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** parseChallenges reads every Bearer or Basic challenge in one or more WWW-Authenticate values; other schemes are skipped. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let cur: Challenge | { scheme: string; params: Record<string, string> } | undefined;
    let i = 0;
    const s = value;
    const skipSpaceAndCommas = (): void => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    };
    const token = (): string => {
      const start = i;
      while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(s[i]!)) i++;
      return s.slice(start, i);
    };
    for (;;) {
      skipSpaceAndCommas();
      if (i >= s.length) break;
      const name = token();
      if (name === '') {
        i++;
        continue;
      }
      let j = i;
      while (j < s.length && s[j] === ' ') j++;
      if (s[j] === '=') {
        // a parameter of the current challenge
        i = j + 1;
        while (i < s.length && s[i] === ' ') i++;
        let val: string;
        if (s[i] === '"') {
          i++;
          val = '';
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i];
            i++;
          }
          i++;
        } else {
          const start = i;
          while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++;
          val = s.slice(start, i);
        }
        if (cur) cur.params[name.toLowerCase()] = val;
      } else {
        // a new challenge: "Scheme" followed by parameters
        if (cur && (cur.scheme === 'bearer' || cur.scheme === 'basic')) out.push(cur as Challenge);
        cur = { scheme: name.toLowerCase(), params: {} };
      }
    }
    if (cur && (cur.scheme === 'bearer' || cur.scheme === 'basic')) out.push(cur as Challenge);
  }
  return out;
}

/** pickChallenge prefers Bearer (scoped, short-lived) over Basic when a registry offers both. */
export function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic');
}

export type Action = 'pull' | 'push';

/** repositoryScope is the token scope for actions on one repository: `repository:NAME:pull,push`. */
export function repositoryScope(repo: string, actions: readonly Action[]): string {
  return `repository:${repo}:${[...new Set(actions)].sort().join(',')}`;
}

/** scopeKey names a set of scopes for the token cache, whatever order they were asked in. */
export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}
