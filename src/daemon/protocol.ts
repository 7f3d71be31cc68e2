import { statSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { DpuConfig } from '../config/schema';
import type { DpuClient } from '../dpu/api';
import type { NodeStatus } from './node-status';

/**
 * Plugin <-> daemon wire format: one JSON object per line over the daemon's unix socket.
 * A request names the DPU fully (identity and OVS settings): the daemon serves it on the
 * connection for exactly that identity, never another. Design and fallback rules: docs/design/daemon-protocol.md.
 */
/** The operations the daemon serves: DpuClient methods, with arguments and answers typed by that API. */
export const DAEMON_OPS = ['plug', 'unplug', 'check', 'gc', 'status', 'facts', 'setVfFunction'] as const satisfies ReadonlyArray<keyof DpuClient>;
export type DaemonOp = (typeof DAEMON_OPS)[number];
export type OpArgs<K extends DaemonOp> = Parameters<DpuClient[K]>;
export type OpResult<K extends DaemonOp> = Awaited<ReturnType<DpuClient[K]>>;

/** netns: the sender's (see netnsId); a daemon in another namespace answers internal, and the plugin goes direct. */
export type DaemonRequest = { [K in DaemonOp]: { id: number; op: K; dpu: DpuConfig; args: OpArgs<K>; netns?: string } }[DaemonOp];

/**
 * Operations about the daemon itself (no DPU named): their answers, typed. Sent as { id, op } and answered as a
 * DaemonResponse whose result is NodeOpResult[op].
 */
export interface NodeOpResult {
  nodeStatus: NodeStatus;
}
export type NodeOp = keyof NodeOpResult;
export const NODE_OPS = ['nodeStatus'] as const satisfies ReadonlyArray<NodeOp>;
export type NodeRequest = { [K in NodeOp]: { id: number; op: K } }[NodeOp];

export function isNodeOp(op: unknown): op is NodeOp {
  return (NODE_OPS as readonly unknown[]).includes(op);
}

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

/**
 * A whole CNI command forwarded by the plugin (src/daemon/forward.ts): its environment, its stdin, and the
 * network namespace it runs in ("<dev>:<ino>" of /proc/self/ns/net), which must be the daemon's.
 */
export interface CniForwardRequest {
  id: number;
  op: 'cni';
  env: Record<string, string>;
  stdin: string;
  netns: string;
  /**
   * "<dev>:<ino>" of the file CNI_NETNS names, as the plugin sees it: a runtime in a mount namespace of its own
   * (podman's /run/netns/netns-* bind mounts) names files the daemon cannot see, or sees as other files.
   */
  cniNetns?: string;
  /**
   * "<dev>:<ino>" of the node file the plugin resolved ("" when there is none): the daemon runs the command only
   * if its own resolution (the same environment, else its --node-config) finds the same file.
   */
  nodeFile?: string;
}

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

/**
 * The daemon's answers to a cni request: `accepted` once it starts running the command, with boundMs, the longest
 * it can take (the plugin must not run the command itself from then on unless the connection is lost, and past
 * boundMs answers 11 instead), then the outcome; or `refused` (before accepted): the plugin runs it standalone.
 */
export type CniForwardResponse =
  | { id: number; accepted: true; boundMs: number }
  | { id: number; ok: true; exitCode: number; stdout: string; stderr: string }
  | { id: number; refused: string };

export const MAX_LINE_BYTES = 1024 * 1024;
/** A cni request carries the network config (at most 16 MiB, skel's MAX_STDIN_BYTES) JSON-escaped plus the environment. */
export const MAX_CNI_LINE_BYTES = 24 * 1024 * 1024;
/** The command's stderr kept for the reply (delegated IPAM plugins' stderr, warnings); the rest is cut. */
export const MAX_CNI_STDERR_BYTES = 256 * 1024;

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
