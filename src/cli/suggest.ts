// suggest: "did you mean" for a mistyped command or flag, as git and docker offer it: the closest known name, if
// one is close enough (an edit or two, a swapped pair of letters counting as one).

/** closest is the candidate nearest to word, if at most max(1, a third of its length) edits away (two at most). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length < 2) return undefined;
  const limit = Math.min(2, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/** distance is the optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * unknown rewords yargs' "Unknown argument(s): a, b": flags are named as typed (docker says "unknown flag: --kee"),
 * and the hint offers, for each, the nearest flag the command knows, or for an unknown first word the nearest command.
 */
export function unknown(message: string, argv: readonly string[], flags: readonly string[], commands: readonly string[]): { message: string; mean?: string } {
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return { message };
  const words = m[1]!.split(', ');
  const command = argv.find((a) => !a.startsWith('-'));
  const dashes = (w: string): string => (w.length > 1 ? '--' : '-');
  const typedAsFlag = (w: string): boolean => argv.some((a) => a === `${dashes(w)}${w}` || a.startsWith(`--${w}=`));
  const means: string[] = [];
  for (const w of words) {
    if (typedAsFlag(w)) {
      const near = closest(w, flags);
      if (near) means.push(`${dashes(near)}${near} for ${dashes(w)}${w}`);
    } else if (w === command && !commands.includes(w)) {
      const near = closest(w, commands);
      if (near) means.push(`\`ferry ${near}\` for \`ferry ${w}\``);
    }
  }
  const shown = words.every(typedAsFlag) ? `unknown flag${words.length > 1 ? 's' : ''}: ${words.map((w) => `${dashes(w)}${w}`).join(', ')}` : message;
  return { message: shown, ...(means.length ? { mean: `did you mean ${means.join(', ')}?` } : {}) };
}
