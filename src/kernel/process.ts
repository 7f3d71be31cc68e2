import { readFileSync } from 'node:fs';

/** A process identified beyond its pid: the kernel reuses pids, never a (pid, start time) pair. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  startTime: number;
}

/** Start time of pid, or undefined when no such process exists or it has exited (a zombie not yet reaped). */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A SIGKILLed daemon stays a zombie until its parent reaps it; its plugins fall back at once and must see it gone.
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const start = Number(fields[22 - 3]);
  return Number.isFinite(start) ? start : undefined;
}

export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? 0 };
}

/** True while the recorded process still runs; a record without one is from an older plugin and counts as gone. */
export function isAlive(owner: ProcessIdentity | undefined): boolean {
  if (!owner) return false;
  return processStartTime(owner.pid) === owner.startTime;
}
