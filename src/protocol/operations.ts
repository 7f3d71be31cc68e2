import type { DpuConfig } from '../config/schema';
import type { DpuClient } from '../dpu/api';
import type { NodeStatus } from './node-status';

/**
 * The operations of the plugin <-> daemon protocol, one table for both sides: what each request carries and what
 * each answer holds. Framing (lines, the hello) is in framing.ts. A request names the DPU fully (identity and OVS
 * settings): the daemon serves it on the connection for exactly that identity, never another. Design and fallback
 * rules: docs/design/daemon-protocol.md.
 */
/** The DPU operations the daemon serves: DpuClient methods, with arguments and answers typed by that API. */
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

/**
 * The daemon's answers to a cni request: `accepted` once it starts running the command, with boundMs, the longest
 * it can take (the plugin must not run the command itself from then on unless the connection is lost, and past
 * boundMs answers 11 instead), then the outcome; or `refused` (before accepted): the plugin runs it standalone.
 */
export type CniForwardResponse =
  | { id: number; accepted: true; boundMs: number }
  | { id: number; ok: true; exitCode: number; stdout: string; stderr: string }
  | { id: number; refused: string };

/** The command's stderr kept for the reply (delegated IPAM plugins' stderr, warnings); the rest is cut. */
export const MAX_CNI_STDERR_BYTES = 256 * 1024;
