import { statSync } from 'node:fs';
import type { Socket } from 'node:net';

/**
 * How the plugin <-> daemon protocol travels: one JSON object per line over the daemon's unix socket, after the
 * daemon's hello. What the lines say: operations.ts.
 */
/** What the daemon writes first on every connection, before reading anything: who it is and which protocol it speaks. */
export const DAEMON_MAGIC = 'dpu-overlay-daemon';
export const PROTOCOL_VERSION = 1;
export interface DaemonHello {
  hello: typeof DAEMON_MAGIC;
  protocol: number;
}
export const HELLO: DaemonHello = { hello: DAEMON_MAGIC, protocol: PROTOCOL_VERSION };

/** Why line is not this daemon's hello (another server on the socket, another protocol version), or undefined. */
export function helloProblem(line: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'the socket did not identify itself as a dpu-overlay daemon';
  }
  if (typeof v !== 'object' || v === null || (v as { hello?: unknown }).hello !== DAEMON_MAGIC) return 'the socket did not identify itself as a dpu-overlay daemon';
  const protocol = (v as { protocol?: unknown }).protocol;
  return protocol === PROTOCOL_VERSION ? undefined : `the daemon speaks protocol ${String(protocol)}, this plugin ${PROTOCOL_VERSION} (upgrade both together)`;
}

export const MAX_LINE_BYTES = 1024 * 1024;
/** A cni request carries the network config (at most 16 MiB, skel's MAX_STDIN_BYTES) JSON-escaped plus the environment. */
export const MAX_CNI_LINE_BYTES = 24 * 1024 * 1024;

/** "<dev>:<ino>" of this process's network namespace (or of the file at path): equal exactly when they are the same. */
export function netnsId(path = '/proc/self/ns/net'): string {
  const st = statSync(path);
  return `${st.dev}:${st.ino}`;
}

/** Calls onLine for every complete line; onOverflow when a line grows past limit bytes. */
export function readLines(socket: Socket, onLine: (line: string) => void, onOverflow: () => void, limit = MAX_LINE_BYTES): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    // Only the new chunk can hold the end of the buffered line: a long line is not searched again and again.
    let nl = chunk.indexOf('\n');
    if (nl === -1) {
      buffered += chunk;
    } else {
      buffered += chunk;
      nl = buffered.length - chunk.length + nl;
      let from = 0;
      while (nl !== -1) {
        const line = buffered.slice(from, nl);
        if (line.trim()) onLine(line);
        from = nl + 1;
        nl = buffered.indexOf('\n', from);
      }
      buffered = buffered.slice(from);
    }
    if (buffered.length > limit) onOverflow();
  });
}

/**
 * Every client's side of the daemon's greeting: the first line on the socket must be the daemon's hello
 * (helloProblem), then each further line goes to onLine. onHello runs once the hello passed (the client sends its
 * request only then: nothing is sent before it); onProblem runs instead when the first line is not the hello.
 */
export function readLinesAfterHello(
  socket: Socket,
  handlers: { onHello: () => void; onProblem: (problem: string) => void; onLine: (line: string) => void },
  onOverflow: () => void,
  limit = MAX_LINE_BYTES,
): void {
  let greeted = false;
  let failed = false;
  readLines(
    socket,
    (line) => {
      if (failed) return;
      if (greeted) return handlers.onLine(line);
      const problem = helloProblem(line);
      if (problem) {
        failed = true;
        return handlers.onProblem(problem);
      }
      greeted = true;
      handlers.onHello();
    },
    onOverflow,
    limit,
  );
}

/** fileId of path, or undefined when it cannot be read. */
export function fileIdOf(path: string): string | undefined {
  try {
    return netnsId(path);
  } catch {
    return undefined;
  }
}
