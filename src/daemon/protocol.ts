import type { Socket } from 'node:net';
import type { DpuConfig } from '../config/schema';
import type { DpuClient } from '../dpu/api';

/**
 * Plugin <-> daemon wire format: one JSON object per line over the daemon's unix socket.
 * A request names the DPU fully (identity and OVS settings): the daemon serves it on the
 * connection for exactly that identity, never another.
 */
/** The operations the daemon serves: DpuClient methods, with arguments and answers typed by that API. */
export const DAEMON_OPS = ['plug', 'unplug', 'check', 'gc', 'status', 'facts', 'setVfFunction'] as const satisfies ReadonlyArray<keyof DpuClient>;
export type DaemonOp = (typeof DAEMON_OPS)[number];
export type OpArgs<K extends DaemonOp> = Parameters<DpuClient[K]>;
export type OpResult<K extends DaemonOp> = Awaited<ReturnType<DpuClient[K]>>;

export type DaemonRequest = { [K in DaemonOp]: { id: number; op: K; dpu: DpuConfig; args: OpArgs<K> } }[DaemonOp];

export function isDaemonOp(op: unknown): op is DaemonOp {
  return (DAEMON_OPS as readonly unknown[]).includes(op);
}

export interface DaemonError {
  code: number;
  msg: string;
  details?: string;
}

/** internal: the daemon itself failed (not the DPU): the plugin repeats the request directly. */
export type DaemonResponse = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: DaemonError; internal?: boolean };

export const MAX_LINE_BYTES = 1024 * 1024;

/** Calls onLine for every complete line; onOverflow when a line grows past MAX_LINE_BYTES. */
export function readLines(socket: Socket, onLine: (line: string) => void, onOverflow: () => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
    if (buffered.length > MAX_LINE_BYTES) onOverflow();
  });
}
