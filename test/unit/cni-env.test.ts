import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import { parseCniArgs, parseCommand, parseEnv, validateContainerId, validateIfname, validateNetnsPath } from '../../src/cni/env';
import { removeTmpDirs, tmpDir } from './helpers/tmp';
import { codeOf } from './helpers/errors';

afterAll(removeTmpDirs);

const NETNS = '/proc/self/ns/net'; // a real nsfs file
const full = { CNI_CONTAINERID: 'abc123', CNI_NETNS: NETNS, CNI_IFNAME: 'net1', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };


describe('parseCommand', () => {
  it.each(['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'])('accepts %s', (c) => {
    expect(parseCommand({ CNI_COMMAND: c })).toBe(c);
  });
  it('missing CNI_COMMAND is code 4', () => {
    expect(codeOf(() => parseCommand({}))).toBe(4);
  });
  it.each(['add', 'UPDATE', ' ADD', ''])('rejects %j with code 4', (c) => {
    expect(codeOf(() => parseCommand({ CNI_COMMAND: c }))).toBe(4);
  });
});

describe('required variables per command', () => {
  it.each<[string, string[]]>([
    ['ADD', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']],
    ['CHECK', ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH']],
    ['DEL', ['CNI_CONTAINERID', 'CNI_IFNAME']],
    ['GC', ['CNI_PATH']],
    ['STATUS', ['CNI_PATH']],
  ])('%s requires %j', (command, required) => {
    expect(parseEnv({ ...full, CNI_COMMAND: command }).command).toBe(command);
    for (const v of required) {
      let caught: unknown;
      try {
        parseEnv({ ...full, CNI_COMMAND: command, [v]: undefined });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CniError);
      expect((caught as CniError).code).toBe(4);
      expect((caught as CniError).message).toContain(v);
    }
  });

  it('an empty value counts as missing', () => {
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_IFNAME: '' }))).toBe(4);
  });

  it('DEL without CNI_NETNS (and without CNI_PATH) is fine', () => {
    const env = parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'abc', CNI_IFNAME: 'net1' });
    expect(env).toMatchObject({ command: 'DEL', netns: '', containerId: 'abc', ifname: 'net1', path: [] });
  });

  it('DEL does not require the netns to exist', () => {
    expect(parseEnv({ ...full, CNI_COMMAND: 'DEL', CNI_NETNS: '/run/netns/gone-long-ago' }).netns).toBe('/run/netns/gone-long-ago');
  });

  it('VERSION needs nothing', () => {
    expect(parseEnv({ CNI_COMMAND: 'VERSION' }).command).toBe('VERSION');
  });

  it('GC and STATUS need no container', () => {
    expect(parseEnv({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' })).toMatchObject({ containerId: '', ifname: '', netns: '' });
  });

  it('splits CNI_PATH and drops empty entries', () => {
    expect(parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_PATH: '/a::/b:' }).path).toEqual(['/a', '/b']);
  });

  it('keeps CNI_ARGS raw for delegation and parsed', () => {
    const env = parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0' });
    expect(env.argsRaw).toBe('IgnoreUnknown=1;K8S_POD_NAME=web-0');
    expect(env.args).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'web-0' });
  });
});

describe('CNI_IFNAME', () => {
  it.each(['eth0', 'net1', 'a', 'abcdefghijklmno', 'eth0.100', 'veth-x_y', '..a', '...', '"x""netns"1', "'a'", 'e#x', 'a\\', '\\', 'a@b', '@', '#', '"', "x'\"#\\@", 'net\u0001', 'é', '\ufeff'])('accepts %j (legal for the kernel and libcni)', (n) => {
    expect(() => validateIfname(n)).not.toThrow();
    expect(parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_IFNAME: n }).ifname).toBe(n);
  });
  it.each([
    ['16 bytes', 'abcdefghijklmnop'],
    ['15 chars but more than 15 bytes', 'abcdefghijklmné'],
    ['a slash', 'eth/0'],
    ['a colon', 'eth0:1'],
    ['a space', 'eth 0'],
    ['a tab', 'eth\t0'],
    ['a newline', 'eth0\n'],
    ['NUL', 'eth\u00000'],
    ['a vertical tab', 'a\vb'],
    ['a form feed', 'a\fb'],
    ['a carriage return', 'a\rb'],
    ['U+0085 (libcni: unicode.IsSpace)', 'a\u0085b'],
    ['U+00A0', 'a\u00a0b'],
    ['U+2003', 'a\u2003b'],
    ['U+3000', 'a\u3000'],
    ['byte 0xa0 in UTF-8 (kernel isspace)', 'a\u0120'],
    ['"%" (a kernel name template)', 'net%d'],
    ['"%" alone', '%'],
    ['"."', '.'],
    ['".."', '..'],
    ['empty', ''],
  ])('rejects %s with code 4', (_n, name) => {
    expect(codeOf(() => validateIfname(name))).toBe(4);
  });
  it('parseEnv applies the rules', () => {
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_IFNAME: '..' }))).toBe(4);
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'DEL', CNI_IFNAME: 'a/b' }))).toBe(4);
  });
});

describe('CNI_CONTAINERID', () => {
  it.each(['abc', '0123456789abcdef'.repeat(4), 'pod_1.web-0', 'A', 'x'.repeat(256)])('accepts %j', (id) => {
    expect(() => validateContainerId(id)).not.toThrow();
  });
  it.each([
    ['a leading dash', '-abc'],
    ['a leading dot', '.abc'],
    ['a leading underscore', '_abc'],
    ['a slash', 'a/b'],
    ['dot-dot traversal', '../etc'],
    ['a space', 'a b'],
    ['a colon', 'a:b'],
    ['257 chars', 'x'.repeat(257)],
    ['non-ASCII', 'contäiner'],
  ])('rejects %s with code 4', (_n, id) => {
    expect(codeOf(() => validateContainerId(id))).toBe(4);
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'DEL', CNI_CONTAINERID: id }))).toBe(4);
  });
});

describe('CNI_NETNS', () => {
  it('accepts an nsfs file for ADD and CHECK', () => {
    expect(() => validateNetnsPath(NETNS)).not.toThrow();
    expect(parseEnv({ ...full, CNI_COMMAND: 'CHECK' }).netns).toBe(NETNS);
  });
  it('a regular file is code 4', () => {
    const f = join(tmpDir(), 'netns');
    writeFileSync(f, '');
    expect(codeOf(() => validateNetnsPath(f))).toBe(4);
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'ADD', CNI_NETNS: f }))).toBe(4);
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'CHECK', CNI_NETNS: f }))).toBe(4);
  });
  it('a missing path is code 4 for CHECK too', () => {
    expect(codeOf(() => parseEnv({ ...full, CNI_COMMAND: 'CHECK', CNI_NETNS: '/run/netns/gone-xyz' }))).toBe(4);
  });
  it('a directory is code 4', () => {
    expect(codeOf(() => validateNetnsPath(tmpDir()))).toBe(4);
  });
  it('a missing path is code 4 and says so', () => {
    let caught: unknown;
    try {
      validateNetnsPath('/run/netns/does-not-exist-xyz');
    } catch (err) {
      caught = err;
    }
    expect((caught as CniError).code).toBe(4);
    expect((caught as CniError).message).toMatch(/does not exist/);
  });
  it.each(['run/netns/x', 'netns', '/proc/self/ns/net\n'])('a relative or control-character path %j is code 4', (p) => {
    expect(codeOf(() => validateNetnsPath(p))).toBe(4);
  });
});

describe('parseCniArgs', () => {
  it('parses pairs', () => {
    expect(parseCniArgs('A=1;B=two;C=')).toEqual({ A: '1', B: 'two', C: '' });
  });
  it('keeps "=" inside values', () => {
    expect(parseCniArgs('K=a=b')).toEqual({ K: 'a=b' });
  });
  it('skips empty pairs', () => {
    expect(parseCniArgs(';A=1;;')).toEqual({ A: '1' });
  });
  it('empty and undefined give nothing', () => {
    expect(parseCniArgs('')).toEqual({});
    expect(parseCniArgs(undefined)).toEqual({});
  });
  it.each(['A', '=1', 'A=1;B'])('%j is code 4', (raw) => {
    expect(codeOf(() => parseCniArgs(raw))).toBe(4);
  });
});
