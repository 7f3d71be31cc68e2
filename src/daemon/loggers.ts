import type { DestinationStream } from 'pino';
import { createLogger, type LogSettings, type Logger, reopenLogFiles } from '../log';
import { requestScope } from '../util/request-scope';

/** Distinct (logFile, logLevel) pairs kept open; more than any node has networks. */
const MAX_BASE_LOGGERS = 32;

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
 */
export class RequestLoggers {
  private readonly bases = new Map<string, Logger>();
  private readonly configErrorBases = new Map<string, Logger>();

  forCommand(settings: LogSettings, bindings: Record<string, unknown>): Logger {
    const key = JSON.stringify([settings.logFile ?? '', settings.logLevel]);
    let base = this.bases.get(key);
    if (!base) {
      if (this.bases.size >= MAX_BASE_LOGGERS) {
        // The oldest pair is dropped (its file descriptor stays open: pino's sync destinations have no close).
        const oldest = this.bases.keys().next().value;
        if (oldest !== undefined) this.bases.delete(oldest);
      }
      base = createLogger(settings, {}, requestStderr);
      this.bases.set(key, base);
    }
    return base.child({ ...bindings, via: 'daemon' });
  }

  /** For config errors (logged before the command has a logger): the file only, not the command's stderr, as standalone. */
  forConfigError(settings: LogSettings): Logger {
    const key = JSON.stringify([settings.logFile ?? '', settings.logLevel]);
    let base = this.configErrorBases.get(key);
    if (!base) {
      if (this.configErrorBases.size >= MAX_BASE_LOGGERS) this.configErrorBases.clear();
      base = createLogger(settings, {}, { write: () => undefined });
      this.configErrorBases.set(key, base);
    }
    return base.child({ via: 'daemon' });
  }

  /** Every log file of this process (commands' and the daemon's own) opened again by path. */
  reopen(): number {
    return reopenLogFiles();
  }
}
