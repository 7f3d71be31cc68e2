import type { Socket } from 'node:net';
import type { DpuConfig } from '../config/schema';

/**
 * Plugin <-> daemon wire format: one JSON object per line over the daemon's unix socket.
 * A request names the DPU fully (identity and OVS settings): the daemon serves it on the
 * connection for exactly that identity, never another.
 */
export type DaemonOp = 'plug' | 'unplug' | 'check' | 'gc' | 'status';

export interface DaemonRequest {
  id: number;
  op: DaemonOp;
  dpu: DpuConfig;
  args: unknown[];
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
