import { closeSync, constants, fstatSync, mkdirSync, openSync } from 'node:fs';
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
    const fd = openLogFile(settings.logFile);
    if (fd !== undefined) streams.push({ level: settings.logLevel as pino.Level, stream: pino.destination({ dest: fd, sync: true }) });
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
