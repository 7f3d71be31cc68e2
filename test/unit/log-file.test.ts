/**
 * The log file is opened only if it is a regular file in a directory only root can write, and logging never
 * fails a command: a device, a FIFO, a symlink or a directory is never opened (no side effects), a full
 * filesystem drops lines instead of throwing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClosableLogger, createLogger, openLogFile, SafeFileDestination } from '../../src/log';
import { RequestLoggers } from '../../src/daemon/loggers';

const tmp = () => mkdtempSync(join(tmpdir(), 'dpuo-log-'));
const openFds = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });

function captureStderr<T>(fn: () => T): { out: T; stderr: string } {
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const out = fn();
    return { out, stderr: spy.mock.calls.map((c) => String(c[0])).join('') };
  } finally {
    spy.mockRestore();
  }
}

describe('openLogFile opens only regular files', () => {
  test.each([
    ['/dev/ptmx', /not a regular file \(a character device\)/],
    ['/dev/null', /not a regular file \(a character device\)/],
  ])('%s is refused without being opened', (path, why) => {
    // /dev itself is root-owned and 0755: only the file's type refuses it.
    const before = openFds();
    expect(openLogFile(path)).toMatch(why);
    expect(openFds()).toEqual(before);
  });

  test('a FIFO is refused and its waiting reader is not unblocked', async () => {
    const dir = tmp();
    const fifo = join(dir, 'log');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo], { stdio: 'ignore' });
    let exited = false;
    reader.once('exit', () => (exited = true));
    await new Promise((r) => setTimeout(r, 200));
    const { stderr } = captureStderr(() => createLogger({ logFile: fifo, logLevel: 'info' }).info('x'));
    expect(stderr).toMatch(/not logging to logFile .*log: it is not a regular file \(a FIFO\); name a regular file/);
    await new Promise((r) => setTimeout(r, 500));
    expect(exited).toBe(false);
    reader.kill();
  });

  test('a directory, a symlink and a file in a group-writable directory are refused with what to fix', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'real'), 'keep\n');
    spawnSync('ln', ['-s', join(dir, 'real'), join(dir, 'link')]);
    expect(openLogFile(join(dir, 'd'))).toMatch(/not a regular file \(a directory\)/);
    expect(openLogFile(join(dir, 'link'))).toMatch(/symbolic link \(not followed\)/);
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(openLogFile(join(shared, 'p.log'))).toMatch(/its directory .*shared is writable by group or others \(mode 777\)/);
    expect(readFileSync(join(dir, 'real'), 'utf8')).toBe('keep\n');
  });

  test('a relative path is refused', () => {
    expect(openLogFile('p.log')).toMatch(/not an absolute path/);
  });

  test('a new file is created 0640 (O_EXCL), an existing one appended to; a missing directory is created 0700', () => {
    const dir = join(tmp(), 'logs');
    const file = join(dir, 'p.log');
    createLogger({ logFile: file, logLevel: 'info' }).info('one');
    createLogger({ logFile: file, logLevel: 'info' }).info('two');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['one', 'two']);
  });

  test('the command still logs its warnings to stderr, with one line saying what to fix', () => {
    const { stderr } = captureStderr(() => {
      const log = createLogger({ logFile: '/dev/ptmx', logLevel: 'debug' });
      log.debug('quiet');
      log.warn('loud');
    });
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^dpu-overlay: not logging to logFile \/dev\/ptmx: it is not a regular file/);
    expect(JSON.parse(lines[1] as string)).toMatchObject({ msg: 'loud' });
  });
});

describe('logging never throws', () => {
  test('a full device (ENOSPC) drops lines, warns once, and never throws', () => {
    const fd = openSync('/dev/full', 'w');
    const warnings: string[] = [];
    const dest = new SafeFileDestination(fd, '/var/log/x.log', (w) => warnings.push(w));
    for (let i = 0; i < 5; i++) expect(() => dest.write('{"msg":"x"}\n')).not.toThrow();
    expect(warnings).toEqual([expect.stringMatching(/cannot write to log file \/var\/log\/x.log \(ENOSPC\)/)]);
    dest.close();
    expect(() => dest.write('after close\n')).not.toThrow();
    expect(() => closeSync(fd)).toThrow(/EBADF/);
  });

  test('a logger whose stderr throws (EPIPE) does not throw', () => {
    const throwing = { write: () => { throw Object.assign(new Error('EPIPE'), { code: 'EPIPE' }); } };
    const log = createLogger({ logLevel: 'info' }, {}, throwing);
    expect(() => log.error('x')).not.toThrow();
  });
});

describe('evicted daemon loggers are closed', () => {
  test('41 distinct log files leave at most 32 open, and closing frees each descriptor', () => {
    const dir = tmp();
    const loggers = new RequestLoggers(0);
    const before = openFds().filter((p) => p.startsWith(dir)).length;
    for (let i = 0; i < 41; i++) loggers.forCommand({ logFile: join(dir, `n${i}.log`), logLevel: 'info' }, {}).info('x');
    expect(before).toBe(0);
    expect(openFds().filter((p) => p.startsWith(dir))).toHaveLength(32);
    expect(loggers.size).toBe(32);
  });

  test('a logger used again is kept (least recently used goes first)', () => {
    const dir = tmp();
    const loggers = new RequestLoggers(0);
    const first = join(dir, 'first.log');
    loggers.forCommand({ logFile: first, logLevel: 'info' }, {});
    for (let i = 0; i < 40; i++) {
      loggers.forCommand({ logFile: join(dir, `n${i}.log`), logLevel: 'info' }, {});
      loggers.forCommand({ logFile: first, logLevel: 'info' }, {});
    }
    expect(openFds().filter((p) => p === first)).toHaveLength(1);
  });

  test('a closable logger releases its descriptor', () => {
    const file = join(tmp(), 'p.log');
    const l = createClosableLogger({ logFile: file, logLevel: 'info' });
    expect(openFds().filter((p) => p === file)).toHaveLength(1);
    l.close();
    expect(openFds().filter((p) => p === file)).toHaveLength(0);
    expect(() => l.logger.info('dropped')).not.toThrow();
  });
});
