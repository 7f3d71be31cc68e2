import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KnownHostsLineError, knownKeysFor, lookupName, matchPattern, matchPatternList } from '../../src/dpu/known-hosts';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

const dir = tmpDir('known-hosts-test-');
afterAll(removeTmpDirs);

/** A public key blob as OpenSSH encodes it: string type, then key material (random here; only bytes are compared). */
function key(type = 'ssh-ed25519'): { line: string; b64: string } {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  const b64 = Buffer.concat([len, t, randomBytes(36)]).toString('base64');
  return { line: `${type} ${b64}`, b64 };
}

function hashed(name: string, salt = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

const A = key();
const B = key('ecdsa-sha2-nistp256');
const C = key();
const found = (content: string, host: string, port = 22) => knownKeysFor(content, host, port).map((k) => k.blob.toString('base64'));

describe('matchPattern (OpenSSH match_pattern)', () => {
  it.each([
    ['dpu1', 'dpu1', true],
    ['dpu1', 'dpu2', false],
    ['dpu1', 'dpu', false],
    ['dpu', 'dpu1', false],
    ['dpu1', '*', true],
    ['', '*', true],
    ['dpu1', 'dpu?', true],
    ['dpu12', 'dpu?', false],
    ['dpu1.lab', '*.lab', true],
    ['lab', '*.lab', false],
    ['a.b.lab', '*.lab', true],
    ['dpu1.lab', 'd*1*b', true],
    ['dpu1.lax', 'd*1*b', false],
    ['10.0.0.7', '10.0.0.?', true],
    ['10.0.0.17', '10.0.0.?', false],
    ['[dpu1]:2222', '[dpu1]:*', true],
    ['dpu1', '[dpu1]:*', false],
    ['[dpu1]:2222', '[dpu?]:2222', true],
    ['aaa', '*a', true],
    ['ab', '*?*?*', true],
    ['a', '*?*?*', false],
  ])('%j against %j: %s', (s, p, want) => {
    expect(matchPattern(s, p)).toBe(want);
  });
});

describe('matchPatternList (OpenSSH match_pattern_list, lower-cased)', () => {
  it.each([
    ['dpu1', 'dpu1', 'match'],
    ['dpu1', 'other,dpu1', 'match'],
    ['dpu1', 'DPU1', 'match'],
    ['dpu1', 'other', 'no-match'],
    ['dpu1', 'dpu1,!dpu1', 'negated'],
    ['dpu1', '!dpu1,dpu1', 'negated'],
    ['dpu1', '*,!dpu1', 'negated'],
    ['dpu2', '*,!dpu1', 'match'],
    ['dpu2', '!dpu1', 'no-match'],
    ['dpu1', '!dpu*,dpu1', 'negated'],
    ['dpu1', ',dpu1', 'match'],
    ['dpu1', '', 'no-match'],
  ] as const)('%j in %j: %s', (s, list, want) => {
    expect(matchPatternList(s, list)).toBe(want);
  });
});

describe('lookupName', () => {
  it.each([
    ['dpu1', 22, 'dpu1'],
    ['DPU1', 22, 'dpu1'],
    ['dpu1', 2222, '[dpu1]:2222'],
    ['fd00::1', 22, 'fd00::1'],
    ['fd00::1', 2222, '[fd00::1]:2222'],
  ])('%s port %d is %s', (host, port, want) => {
    expect(lookupName(host, port)).toBe(want);
  });
});

describe('knownKeysFor', () => {
  it.each<[string, string[], string, number, string[]]>([
    ['a plain entry', [`dpu1 ${A.line} comment`], 'dpu1', 22, [A.b64]],
    ['comma list', [`other,dpu1,10.0.0.1 ${A.line}`], '10.0.0.1', 22, [A.b64]],
    ['no entry for the host', [`dpu2 ${A.line}`], 'dpu1', 22, []],
    ['a prefix is not a match', [`dpu ${A.line}`], 'dpu1', 22, []],
    ['host names are case-insensitive', [`DPU1 ${A.line}`], 'dpu1', 22, [A.b64]],
    ['wildcard *', [`*.lab ${A.line}`], 'dpu1.lab', 22, [A.b64]],
    ['wildcard ?', [`dpu? ${A.line}`], 'dpu7', 22, [A.b64]],
    ['several lines, file order', [`dpu1 ${A.line}`, `dpu* ${B.line}`, `dpu2 ${C.line}`], 'dpu1', 22, [A.b64, B.b64]],
    ['negation drops the whole line (host,!host)', [`dpu1,!dpu1 ${A.line}`], 'dpu1', 22, []],
    ['negation with a wildcard', [`*,!dpu1 ${A.line}`, `dpu1 ${B.line}`], 'dpu1', 22, [B.b64]],
    ['negation of another host does not match by itself', [`!dpu2 ${A.line}`], 'dpu1', 22, []],
    ['negation of another host, with a positive pattern', [`*.lab,!dpu2.lab ${A.line}`], 'dpu1.lab', 22, [A.b64]],
    ['port 22 is written plainly: [host]:22 is not it', [`[dpu1]:22 ${A.line}`], 'dpu1', 22, []],
    ['another port needs [host]:port', [`dpu1 ${A.line}`, `[dpu1]:2222 ${B.line}`], 'dpu1', 2222, [B.b64]],
    ['[host]:port of another port', [`[dpu1]:2200 ${A.line}`], 'dpu1', 2222, []],
    ['[host]:* pattern', [`[dpu1]:* ${A.line}`], 'dpu1', 2222, [A.b64]],
    ['hashed name', [`${hashed('dpu1')} ${A.line}`, `${hashed('dpu2')} ${B.line}`], 'dpu1', 22, [A.b64]],
    ['hashed [host]:port', [`${hashed('[dpu1]:2222')} ${A.line}`, `${hashed('dpu1')} ${B.line}`], 'dpu1', 2222, [A.b64]],
    ['hashed names are of the lower-cased host', [`${hashed('dpu1')} ${A.line}`], 'DPU1', 22, [A.b64]],
    ['malformed hashed name grants nothing', [`|1|onlysalt ${A.line}`, `|2|${randomBytes(20).toString('base64')}|${randomBytes(20).toString('base64')} ${B.line}`], 'dpu1', 22, []],
    ['comments, blank lines, indentation', ['# dpu1 ' + A.line, '', `   dpu1 ${C.line}   `, '\t'], 'dpu1', 22, [C.b64]],
    ['a line without a key grants nothing', ['dpu1 ssh-ed25519', 'dpu1'], 'dpu1', 22, []],
    ['a key blob of another type than its line says grants nothing', [`dpu1 ssh-rsa ${A.b64}`], 'dpu1', 22, []],
    ['a key that is not base64 grants nothing', [`dpu1 ssh-ed25519 @@notbase64@@`], 'dpu1', 22, []],
    ['@cert-authority is not a host key', [`@cert-authority dpu1 ${A.line}`], 'dpu1', 22, []],
    ['@cert-authority * is not a host key either', [`@cert-authority * ${A.line}`, `dpu1 ${B.line}`], 'dpu1', 22, [B.b64]],
    ['@revoked for this host', [`dpu1 ${A.line}`, `dpu1 ${B.line}`, `@revoked dpu1 ${A.line}`], 'dpu1', 22, [B.b64]],
    ['@revoked before the entry', [`@revoked dpu1,dpu2 ${A.line}`, `dpu1 ${A.line}`], 'dpu1', 22, []],
    ['@revoked * revokes everywhere', [`dpu1 ${A.line}`, `@revoked * ${A.line}`], 'dpu1', 22, []],
    ['@revoked [host]:* revokes on every port', [`[dpu1]:2222 ${A.line}`, `@revoked [dpu1]:* ${A.line}`], 'dpu1', 2222, []],
    ['@revoked with a hashed name', [`dpu1 ${A.line}`, `@revoked ${hashed('dpu1')} ${A.line}`], 'dpu1', 22, []],
    ['@revoked for another host only', [`dpu1 ${A.line}`, `@revoked dpu2 ${A.line}`], 'dpu1', 22, [A.b64]],
    ['@revoked negated for this host', [`dpu1 ${A.line}`, `@revoked *,!dpu1 ${A.line}`], 'dpu1', 22, [A.b64]],
    ['@revoked of another key', [`dpu1 ${A.line}`, `@revoked dpu1 ${B.line}`], 'dpu1', 22, [A.b64]],
  ])('%s', (_name, lines, host, port, want) => {
    expect(found(lines.join('\n'), host, port)).toEqual(want);
  });

  it('returns the key type of each line', () => {
    expect(knownKeysFor(`dpu1 ${A.line}\ndpu1 ${B.line}\n`, 'dpu1', 22).map((k) => k.type)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256']);
  });

  it.each([
    ['an unknown marker', [`dpu1 ${A.line}`, `@revokd dpu1 ${A.line}`], /line 2: unknown marker @revokd/],
    ['an unknown marker with no host field', ['@foo'], /line 1: unknown marker/],
    ['@revoked with an unreadable hashed name', [`dpu1 ${A.line}`, `@revoked |1|junk ${A.line}`], /line 2: @revoked line cannot be read \(malformed hashed host name\)/],
    ['@revoked with an unreadable key', [`dpu1 ${A.line}`, '@revoked dpu1 ssh-ed25519 ###'], /line 2: @revoked line cannot be read \(malformed key\)/],
    ['@revoked without a key', ['@revoked dpu1'], /line 1: @revoked line cannot be read/],
    ['@revoked without hosts', ['@revoked'], /line 1: @revoked without host names/],
  ])('fails closed on %s', (_name, lines, message) => {
    expect(() => knownKeysFor(lines.join('\n'), 'dpu1', 22)).toThrow(KnownHostsLineError);
    expect(() => knownKeysFor(lines.join('\n'), 'dpu1', 22)).toThrow(message);
  });

  it('understands a file hashed by ssh-keygen -H, and ssh-keygen -F agrees', () => {
    const f = join(dir, 'kh-hashed');
    writeFileSync(f, `dpu9 ${A.line}\n[dpu9]:2022 ${B.line}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
    const content = readFileSync(f, 'utf8');
    expect(content).not.toContain('dpu9');
    expect(found(content, 'dpu9', 22)).toEqual([A.b64]);
    expect(found(content, 'dpu9', 2022)).toEqual([B.b64]);
    expect(found(content, 'dpu8', 22)).toEqual([]);
  });

  it.each([
    ['dpu1', 22],
    ['dpu1', 2222],
    ['dpu1.lab', 22],
    ['dpu2', 22],
  ])('agrees with ssh-keygen -F for %s port %d on a mixed file', (host, port) => {
    const f = join(dir, `kh-mixed-${host}-${port}`);
    const lines = [`dpu1,!dpu2 ${A.line}`, `[dpu1]:2222 ${B.line}`, `*.lab ${C.line}`, `${hashed('dpu2')} ${B.line}`, `dpu? ${C.line}`];
    writeFileSync(f, lines.join('\n') + '\n');
    const name = port === 22 ? host : `[${host}]:${port}`;
    const r = execFileSync('sh', ['-c', `ssh-keygen -F '${name}' -f '${f}' || true`], { encoding: 'utf8' });
    const fromSshKeygen = r.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.trim().split(/\s+/).pop());
    expect(found(lines.join('\n'), host, port)).toEqual(fromSshKeygen);
  });
});
