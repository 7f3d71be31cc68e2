import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { elapsedMs } from './util/time';

export type { Logger };

export interface LogSettings {
  logFile?: string;
  logLevel: string;
}

/** Structured JSON logs to logFile (0600), warnings and errors also to stderr. Never to stdout. */
export function createLogger(settings: LogSettings, bindings: Record<string, unknown> = {}): Logger {
  const streams: pino.StreamEntry[] = [{ level: 'warn', stream: pino.destination({ dest: 2, sync: true }) }];
  if (settings.logFile && settings.logLevel !== 'silent') {
    try {
      mkdirSync(dirname(settings.logFile), { recursive: true, mode: 0o700 });
      closeSync(openSync(settings.logFile, 'a', 0o600));
      streams.push({ level: settings.logLevel as pino.Level, stream: pino.destination({ dest: settings.logFile, sync: true, mkdir: false }) });
    } catch (err) {
      process.stderr.write(`dpu-overlay: cannot open logFile ${settings.logFile}: ${(err as Error).message}\n`);
    }
  }
  const level = settings.logLevel === 'silent' ? 'warn' : lowerOf(settings.logLevel, 'warn');
  return pino({ level, base: { pid: process.pid, ...bindings }, redact: { paths: ['privateKey', '*.privateKey', 'passphrase'], remove: true } }, pino.multistream(streams));
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
