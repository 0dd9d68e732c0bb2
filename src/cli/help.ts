// Help text laid out for a terminal: the width every command's help wraps at, and examples that never wrap inside a
// command (yargs squeezes them into half the width): a "# what it does" line, then the command, continued with " \"
// between arguments when it is too long, so it can be copied as it stands.

/** helpWidth is the width help text wraps at: the terminal's, at most 110; 100 when not on a terminal. */
export function helpWidth(): number {
  return Math.min(110, process.stdout.columns || 100);
}

/** example is the two arguments of yargs' .example() for one command line and what it does (may be empty). */
export function example(command: string, what: string): [string, string] {
  const room = helpWidth() - 6;
  // A flag and its value stay on one line. (yargs' layout trims leading space, so a continued line is not indented.)
  const groups: string[] = [];
  for (const word of command.replace(/\$0/g, 'ferry').split(' ')) {
    const prev = groups[groups.length - 1];
    if (prev !== undefined && /^-[^ ]*$/.test(prev) && !word.startsWith('-')) groups[groups.length - 1] = `${prev} ${word}`;
    else groups.push(word);
  }
  const lines: string[] = [];
  let line = '';
  for (const g of groups) {
    if (line !== '' && line.length + 1 + g.length + 2 > room) {
      lines.push(`${line} \\`);
      line = g;
    } else line = line === '' ? g : `${line} ${g}`;
  }
  lines.push(line);
  return [`${what ? `# ${what}\n` : ''}${lines.join('\n')}`, ''];
}
