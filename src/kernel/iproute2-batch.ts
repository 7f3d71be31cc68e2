/**
 * Encoding of argv for `ip -batch`. iproute2 reads a batch line with getcmdline (cuts at "#", joins a line
 * ending in "\" with the next) and splits it with makeargs (words separated by space, tab, CR, LF; a word
 * that starts with ' or " runs to the next same quote). Interface names may legally contain all of these
 * characters, so every word is encoded here and read back exactly, or the command is reported unencodable.
 */

const SEPARATORS = /[ \t\r\n]/;

/** The batch token iproute2 reads back as exactly `word`, or undefined if there is none. */
export function encodeBatchWord(word: string): string | undefined {
  // "#" ends the line wherever it is; a line break ends it too; NUL ends the C string.
  if (word === '' || /[#\r\n\0]/.test(word)) return undefined;
  const quoteLed = word.startsWith("'") || word.startsWith('"');
  if (!quoteLed && !SEPARATORS.test(word) && !word.endsWith('\\')) return word;
  // Quoted: runs to the next same quote, so the word must not contain it; a final "\" is then followed by the quote.
  if (!word.includes('"')) return `"${word}"`;
  if (!word.includes("'")) return `'${word}'`;
  return undefined;
}

/** One batch line for argv, or undefined if a word cannot be encoded. */
export function encodeBatchLine(argv: readonly string[]): string | undefined {
  const words = argv.map(encodeBatchWord);
  return words.every((w): w is string => w !== undefined) ? words.join(' ') : undefined;
}
