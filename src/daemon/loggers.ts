import type { DestinationStream } from 'pino';
import { type ClosableLogger, createClosableLogger, type LogSettings, type Logger, reopenLogFiles } from '../log';
import { requestScope } from '../util/request-scope';

/** Distinct (logFile, logLevel) pairs kept open; more than any node has networks. */
const MAX_BASE_LOGGERS = 32;
/** An evicted logger's file stays open this long for the commands still using it, then is closed. */
export const EVICTED_CLOSE_MS = 10000;

/** Warnings go to the stderr of the command being run (the reply the runtime sees), else to the daemon's. */
const requestStderr: DestinationStream = {
  write(line: string) {
    const scope = requestScope.getStore();
    if (scope) scope.stderr(line);
    else process.stderr.write(line);
  },
};

/**
 * The loggers of the commands the daemon runs: one pino base logger (one open log file) per (logFile, logLevel),
 * a child per command with its bindings and via "daemon". A command never opens a file stream of its own.
 * The least recently used pair is evicted past MAX_BASE_LOGGERS and its file closed (after a grace period).
 */
export class RequestLoggers {
  private readonly bases = new Map<string, ClosableLogger>();
  private readonly configErrorBases = new Map<string, ClosableLogger>();

  constructor(private readonly closeAfterMs = EVICTED_CLOSE_MS) {}

  forCommand(settings: LogSettings, bindings: Record<string, unknown>): Logger {
    const key = JSON.stringify([settings.logFile ?? '', settings.logLevel]);
    let base = this.bases.get(key);
    if (base) {
      this.bases.delete(key);
    } else {
      base = createClosableLogger(settings, {}, requestStderr);
    }
    this.bases.set(key, base);
    while (this.bases.size > MAX_BASE_LOGGERS) {
      const [oldestKey, oldest] = this.bases.entries().next().value as [string, ClosableLogger];
      this.bases.delete(oldestKey);
      // A command that took this logger may still be running: its lines go to the file until the close.
      if (this.closeAfterMs <= 0) oldest.close();
      else setTimeout(() => oldest.close(), this.closeAfterMs).unref();
    }
    return base.logger.child({ ...bindings, via: 'daemon' });
  }

  /** For config errors (logged before the command has a logger): the file only, not the command's stderr, as standalone. */
  forConfigError(settings: LogSettings): Logger {
    const key = JSON.stringify([settings.logFile ?? '', settings.logLevel]);
    let base = this.configErrorBases.get(key);
    if (!base) {
      if (this.configErrorBases.size >= MAX_BASE_LOGGERS) {
        for (const b of this.configErrorBases.values()) b.close();
        this.configErrorBases.clear();
      }
      base = createClosableLogger(settings, {}, { write: () => undefined });
      this.configErrorBases.set(key, base);
    }
    return base.logger.child({ via: 'daemon' });
  }

  /** Every log file of this process (commands' and the daemon's own) opened again by path. */
  reopen(): number {
    return reopenLogFiles();
  }

  /** Open log files (for tests). */
  get size(): number {
    return this.bases.size;
  }
}
