import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { untrustedDirReason } from './util/secure-fs';
import { elapsedMs } from './util/time';

export type { Logger };

export interface LogSettings {
  logFile?: string;
  logLevel: string;
}

/**
 * A log file written synchronously, one line per write, that never throws: a full or broken log file costs log
 * lines, never the command. reopenLogFiles() opens every one again by path (after logrotate moved it: SIGHUP to
 * the daemon); a file that cannot be reopened keeps the old descriptor.
 */
export class SafeFileDestination implements pino.DestinationStream {
  private static readonly live = new Set<SafeFileDestination>();
  private failed?: string;

  constructor(
    private fd: number | undefined,
    private readonly path: string,
    private readonly onFailure: (why: string) => void = (why) => process.stderr.write(why),
  ) {
    if (fd !== undefined) SafeFileDestination.live.add(this);
  }

  static reopenAll(): number {
    for (const f of SafeFileDestination.live) f.reopen();
    return SafeFileDestination.live.size;
  }

  write(line: string): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, line);
      this.failed = undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      // One warning per run of failures: a full filesystem must not turn every log line into a stderr line.
      if (this.failed !== code) {
        this.failed = code;
        try {
          this.onFailure(`dpu-overlay: cannot write to log file ${this.path} (${code}); log lines are dropped until it can be written again\n`);
        } catch {
          // stderr gone too: nothing left to tell
        }
      }
    }
  }

  private reopen(): void {
    if (this.fd === undefined) return;
    const fd = openLogFile(this.path);
    if (typeof fd !== 'number') return;
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }

  close(): void {
    SafeFileDestination.live.delete(this);
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = undefined;
  }
}

/** Opens every log file this process writes again by its path; how many. */
export function reopenLogFiles(): number {
  return SafeFileDestination.reopenAll();
}

/** stderr (or the daemon's per-request stream) as a destination that never throws (EPIPE, a closed stderr). */
function safeStream(stream: pino.DestinationStream): pino.DestinationStream {
  return {
    write(line: string) {
      try {
        stream.write(line);
      } catch {
        // nowhere left to report it
      }
    },
  };
}

const stderrDestination: pino.DestinationStream = { write: (line: string) => void process.stderr.write(line) };

/** A logger and the log file it holds open (closed by close()). */
export interface ClosableLogger {
  logger: Logger;
  close(): void;
}

/**
 * Structured JSON logs to logFile, warnings and errors also to stderr (or warnStream). Never to stdout.
 * Neither a full filesystem nor a closed stderr ever makes a log call throw.
 */
export function createLogger(settings: LogSettings, bindings: Record<string, unknown> = {}, warnStream?: pino.DestinationStream): Logger {
  return createClosableLogger(settings, bindings, warnStream).logger;
}

export function createClosableLogger(settings: LogSettings, bindings: Record<string, unknown> = {}, warnStream?: pino.DestinationStream): ClosableLogger {
  const warn = safeStream(warnStream ?? stderrDestination);
  const streams: pino.StreamEntry[] = [{ level: 'warn', stream: warn }];
  let file: SafeFileDestination | undefined;
  if (settings.logFile && settings.logLevel !== 'silent') {
    const opened = openLogFile(settings.logFile);
    if (typeof opened === 'number') {
      file = new SafeFileDestination(opened, settings.logFile, (why) => warn.write(why));
      streams.push({ level: settings.logLevel as pino.Level, stream: file });
    } else {
      warn.write(`dpu-overlay: not logging to logFile ${settings.logFile}: ${opened}; logging warnings to stderr only\n`);
    }
  }
  const level = settings.logLevel === 'silent' ? 'warn' : lowerOf(settings.logLevel, 'warn');
  const logger = pino({ level, base: { pid: process.pid, ...bindings }, redact: { paths: ['privateKey', '*.privateKey', 'passphrase'], remove: true } }, pino.multistream(streams));
  return { logger, close: () => file?.close() };
}

/** O_NONBLOCK: a FIFO or a device must never block the open; O_NOFOLLOW: a symlink is never followed. */
const OPEN_EXISTING = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const CREATE_NEW = OPEN_EXISTING | constants.O_CREAT | constants.O_EXCL;

function uid(): number {
  return process.getuid?.() ?? 0;
}

/**
 * The descriptor of logFile opened for appending, or why it is not used. Only a regular file is ever opened, in a
 * directory no one but us can write: opening a device (/dev/ptmx, /dev/watchdog) or a FIFO has side effects of its
 * own, so the type is checked with lstat before the open, and again on the descriptor (same file, regular) after.
 */
export function openLogFile(path: string): number | string {
  if (!path.startsWith('/')) return 'it is not an absolute path';
  const dir = dirname(path);
  let fd: number | undefined;
  try {
    try {
      lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    const dirWhy = untrustedDirReason(dir, uid());
    if (dirWhy) return `its directory ${dir} ${dirWhy} (use a directory owned by uid ${uid()}, e.g. chmod go-w ${dir})`;
    let before: ReturnType<typeof lstatSync> | undefined;
    try {
      before = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (before?.isSymbolicLink()) return 'it is a symbolic link (not followed); name the file itself';
    if (before && !before.isFile()) return `it is not a regular file (${kindOf(before)}); name a regular file`;
    try {
      fd = before ? openSync(path, OPEN_EXISTING) : openSync(path, CREATE_NEW, 0o640);
    } catch (err) {
      // Created by someone else between the lstat and the open: look again rather than open what appeared.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return 'it appeared while being created; try again';
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') return 'it is a symbolic link (not followed); name the file itself';
      throw err;
    }
    const after = fstatSync(fd);
    if (!after.isFile()) throw new Error(`it is not a regular file (${kindOf(after)})`);
    if (before && (after.dev !== before.dev || after.ino !== before.ino)) throw new Error('it was replaced while being opened');
    return fd;
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function lowerOf(a: string, b: string): string {
  const order = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  return order.indexOf(a) !== -1 && order.indexOf(a) < order.indexOf(b) ? a : b;
}

/** Per-step wall-clock timings for the log line that closes each command. */
export class StepTimer {
  private readonly started = performance.now();
  readonly steps: Record<string, number> = {};

  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.steps[name] = elapsedMs(t0);
    }
  }

  totalMs(): number {
    return elapsedMs(this.started);
  }
}
