import pino from 'pino';
import type { Logger } from '../../../src/log';

/** A logger that writes nothing anywhere (no log file, no stderr). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A logger that keeps every record in memory, for asserting on warnings. */
export function memoryLogger(): { log: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, records };
}
