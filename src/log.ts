import { closeSync, constants, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { elapsedMs } from './util/time';

export type { Logger };

export interface LogSettings {
  logFile?: string;
  logLevel: string;
}

/** Structured JSON logs to logFile (0600), warnings and errors also to stderr (or warnStream). Never to stdout. */
export function createLogger(settings: LogSettings, bindings: Record<string, unknown> = {}, warnStream?: pino.DestinationStream): Logger {
  const streams: pino.StreamEntry[] = [{ level: 'warn', stream: warnStream ?? pino.destination({ dest: 2, sync: true }) }];
  if (settings.logFile && settings.logLevel !== 'silent') {
    const file = ReopenableLogFile.open(settings.logFile);
    if (file) streams.push({ level: settings.logLevel as pino.Level, stream: file });
  }
  const level = settings.logLevel === 'silent' ? 'warn' : lowerOf(settings.logLevel, 'warn');
  return pino({ level, base: { pid: process.pid, ...bindings }, redact: { paths: ['privateKey', '*.privateKey', 'passphrase'], remove: true } }, pino.multistream(streams));
}

const LOG_OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Opens logFile for appending without following a symlink (root would append to whatever it points at)
 * and only if it is a regular file (a FIFO would block). Logging must never break the command: on any
 * problem the reason goes to stderr and the plugin logs there only.
 */
function openLogFile(path: string): number | undefined {
  let fd: number | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    fd = openSync(path, LOG_OPEN_FLAGS, 0o600);
    if (!fstatSync(fd).isFile()) throw new Error('not a regular file');
    return fd;
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    const why = (err as NodeJS.ErrnoException).code === 'ELOOP' ? 'it is a symbolic link (not followed)' : (err as Error).message;
    process.stderr.write(`dpu-overlay: not logging to logFile ${path}: ${why}; logging warnings to stderr only\n`);
    return undefined;
  }
}

/**
 * A log file written synchronously, one line per write, that reopenLogFiles() opens again by path (after
 * logrotate moved it: SIGHUP to the daemon). A file that cannot be reopened keeps the old descriptor.
 */
class ReopenableLogFile implements pino.DestinationStream {
  private static readonly open_ = new Set<ReopenableLogFile>();

  private constructor(
    private readonly path: string,
    private fd: number,
  ) {}

  static open(path: string): ReopenableLogFile | undefined {
    const fd = openLogFile(path);
    if (fd === undefined) return undefined;
    const file = new ReopenableLogFile(path, fd);
    ReopenableLogFile.open_.add(file);
    return file;
  }

  static reopenAll(): number {
    for (const f of ReopenableLogFile.open_) f.reopen();
    return ReopenableLogFile.open_.size;
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line);
    } catch {
      // A full disk or a revoked file must not break the command; the line is lost.
    }
  }

  private reopen(): void {
    const fd = openLogFile(this.path);
    if (fd === undefined) return;
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }
}

/** Opens every log file this process writes again by its path; how many. */
export function reopenLogFiles(): number {
  return ReopenableLogFile.reopenAll();
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
