import { encodeBatchLine, encodeBatchWord } from '../../src/kernel/iproute2-batch';
import { iproute2BatchCommands, makeargs } from './helpers/iproute2-batch';

const PRINTABLE = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i));

/** Names with byte c alone, leading, inside, trailing, doubled, and next to quotes and backslashes. */
function namesWith(c: string): string[] {
  return [c, `${c}a`, `a${c}`, `a${c}b`, `${c}${c}`, `"${c}`, `'${c}`, `${c}"`, `${c}\\`, `\\${c}`, `x"${c}"y`, `${c}'"`];
}

/** Batch input of a few commands around argv, as LinkOps.batch writes it. */
function batchInput(argv: string[]): string | undefined {
  const line = encodeBatchLine(argv);
  return line === undefined ? undefined : ['link set dev a up', line, `addr add 10.0.0.1/24 dev b`].join('\n') + '\n';
}

describe('the iproute2 batch reader port', () => {
  it('behaves like iproute2: "#" cuts, a final "\\" joins lines, quote-led words run to their quote', () => {
    expect(iproute2BatchCommands('link set dev e#x up\n')).toEqual([['link', 'set', 'dev', 'e']]);
    expect(iproute2BatchCommands('link set dev a\\\n up\n')).toEqual([['link', 'set', 'dev', 'a', 'up']]);
    expect(makeargs('link set dev x name "x""netns"42')).toEqual(['link', 'set', 'dev', 'x', 'name', 'x', 'netns', '42']);
    expect(makeargs(`a'b "c d" 'e"f'`)).toEqual([`a'b`, 'c d', 'e"f']);
    expect(() => makeargs('"open')).toThrow('Unterminated');
  });
});

describe('encodeBatchWord', () => {
  it.each(PRINTABLE.map((c) => [c]))('every name containing %s reads back exactly or is reported unencodable', (c) => {
    for (const name of namesWith(c)) {
      const argv = ['link', 'set', 'dev', name, 'name', name];
      const input = batchInput(argv);
      if (input === undefined) {
        // only what no token can carry: "#", or a quote-led word holding both quote kinds
        expect(name.includes('#') || (/^["']/.test(name) && name.includes('"') && name.includes("'"))).toBe(true);
        continue;
      }
      expect(iproute2BatchCommands(input)).toEqual([['link', 'set', 'dev', 'a', 'up'], argv, ['addr', 'add', '10.0.0.1/24', 'dev', 'b']]);
    }
  });

  it('the attacks of issue 12 cannot change the command', () => {
    for (const name of ['"x""netns"1234', "'x' netns 1", 'a\\', 'e#x', 'x\\\nnetns']) {
      const argv = ['link', 'set', 'dev', 'dpuo1', 'name', name];
      const input = batchInput(argv);
      if (input !== undefined) expect(iproute2BatchCommands(input)[1]).toEqual(argv);
    }
    expect(encodeBatchWord('e#x')).toBeUndefined();
    expect(encodeBatchWord('a\nb')).toBeUndefined();
    expect(encodeBatchWord('a\rb')).toBeUndefined();
    expect(encodeBatchWord('')).toBeUndefined();
    expect(encodeBatchWord(`"'`)).toBeUndefined();
  });

  it('plain words stay as they are; separators, a leading quote or a final "\\" get the other quote', () => {
    expect(encodeBatchWord('net1')).toBe('net1');
    expect(encodeBatchWord(`a"b'c`)).toBe(`a"b'c`);
    expect(encodeBatchWord('a b')).toBe('"a b"');
    expect(encodeBatchWord('"x')).toBe(`'"x'`);
    expect(encodeBatchWord("'x")).toBe(`"'x"`);
    expect(encodeBatchWord('x\\')).toBe('"x\\"');
  });
});
