/**
 * A faithful port of how `ip -batch` reads its input (iproute2 lib/utils.c): getcmdline cuts each line at the
 * first "#" and joins a line ending in "\" with the next (cutting that at "#" too); makeargs splits on space,
 * tab, CR and LF, and a word starting with ' or " runs to the next same quote (an unterminated one is fatal).
 */
export function iproute2BatchCommands(input: string): string[][] {
  const physical = input.split(/(?<=\n)/); // keeps each "\n", like getline
  const commands: string[][] = [];
  for (let i = 0; i < physical.length; i++) {
    let line = cutAtHash(physical[i] as string);
    while (line.includes('\\\n')) {
      const next = physical[++i];
      if (next === undefined) throw new Error('Missing continuation line');
      line = line.slice(0, line.indexOf('\\\n')) + cutAtHash(next);
    }
    const argv = makeargs(line);
    if (argv.length > 0) commands.push(argv);
  }
  return commands;
}

function cutAtHash(line: string): string {
  const hash = line.indexOf('#');
  return hash < 0 ? line : line.slice(0, hash);
}

const WS = ' \t\r\n';

export function makeargs(line: string): string[] {
  const cut = line.indexOf('\0');
  const s = cut < 0 ? line : line.slice(0, cut);
  const argv: string[] = [];
  let cp = 0;
  while (cp < s.length) {
    while (cp < s.length && WS.includes(s[cp] as string)) cp++;
    if (cp >= s.length) break;
    const c = s[cp] as string;
    if (c === "'" || c === '"') {
      const end = s.indexOf(c, cp + 1);
      if (end < 0) throw new Error('Unterminated quoted string');
      argv.push(s.slice(cp + 1, end));
      cp = end + 1; // the closing quote is overwritten with NUL: the next word starts right after it
    } else {
      let end = cp;
      while (end < s.length && !WS.includes(s[end] as string)) end++;
      argv.push(s.slice(cp, end));
      cp = end + 1;
    }
  }
  return argv;
}
