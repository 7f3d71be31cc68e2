import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { commandLine, ovsString, shellQuote } from '../../src/dpu/quote';
import { argvAsRunBySh } from './helpers/argv-echo';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

/** What `sh -c "printf %s <quoted>"` prints: the value as the shell sees it. */
function throughSh(quoted: string, cwd: string): string {
  return execFileSync('/bin/sh', ['-c', `printf %s ${quoted}`], { cwd, encoding: 'utf8' });
}

const hostile = [
  '$(rm -rf /)',
  '`rm -rf /`',
  "it's",
  "'",
  "''",
  '"',
  '"$HOME"',
  'a\nb',
  '\n',
  'a;b',
  '; reboot',
  'x && rm -rf /',
  'x || true',
  'a|b',
  '> /etc/passwd',
  '< /etc/shadow',
  '$HOME',
  '${IFS}',
  '*',
  '~',
  '~root',
  '!',
  '#comment',
  'a b\tc',
  '\\',
  '\\n',
  '-n',
  '--help',
  '=',
  '',
  ' ',
  'external_ids:dpu-overlay.container="c1"',
  '{"op":"wait","where":[["_uuid","==",["uuid","x"]]]}',
  'ünïcødé',
  "'$(id)'\"`id`\"",
];

describe('shellQuote', () => {
  it.each(hostile.map((v) => [JSON.stringify(v), v]))('%s reaches the shell unchanged', (_label, value) => {
    const cwd = tmpDir();
    expect(throughSh(shellQuote(value), cwd)).toBe(value);
    expect(execFileSync('ls', ['-A', cwd], { encoding: 'utf8' })).toBe(''); // nothing was created by redirections
  });

  it('command substitution never runs', () => {
    const dir = tmpDir();
    const canary = join(dir, 'canary');
    for (const v of [`$(touch ${canary})`, `\`touch ${canary}\``, `'; touch ${canary}; '`, `x\ntouch ${canary}`, `"; touch ${canary}; "`]) {
      expect(throughSh(shellQuote(v), dir)).toBe(v);
    }
    expect(existsSync(canary)).toBe(false);
  });

  it('leaves plain words bare (readable logs) and quotes everything else', () => {
    expect(shellQuote('br-vni5001')).toBe('br-vni5001');
    expect(shellQuote('--timeout=10')).toBe('--timeout=10');
    expect(shellQuote('options:remote_ip=192.0.2.2')).toBe('options:remote_ip=192.0.2.2');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe('commandLine', () => {
  it('runs each argv exactly as given, chained with &&', () => {
    const argvs = [
      ['ip', 'link', 'set', 'dev', 'pf0vf0', 'mtu', '1450', 'up'],
      ['ovs-vsctl', '--', 'set', 'Port', 'p', 'external_ids:x="$(id); `id`"', "a'b", '', 'two words'],
    ];
    expect(argvAsRunBySh(commandLine(argvs))).toEqual(argvs);
  });

  it('stops at the first failing command', () => {
    const dir = tmpDir();
    const canary = join(dir, 'ran');
    expect(() => execFileSync('/bin/sh', ['-c', commandLine([['false'], ['touch', canary]])])).toThrow();
    expect(existsSync(canary)).toBe(false);
  });
});

describe('ovsString', () => {
  it('is a JSON string literal (how ovs-vsctl reads quoted atoms)', () => {
    expect(ovsString('c1')).toBe('"c1"');
    expect(ovsString('a"b\\c\n')).toBe('"a\\"b\\\\c\\n"');
    expect(JSON.parse(ovsString('x"y'))).toBe('x"y');
  });
});
