/** The answer of the daemon's nodeStatus operation (operations.ts), as `dpu-overlay status` prints it. */

/** One DPU as the daemon sees it. */
export interface DpuStatusView {
  dpu: string;
  connected: boolean;
  controlPlane: 'static' | 'ovn';
  /** The last DPU operation the daemon timed on this connection. */
  lastRoundTrip?: { op: string; ms: number; at: string };
  /** From recovery's last probe (only DPUs with attachments are probed). */
  bootId?: string;
  down?: { since: string; error: string };
  recovering?: { reason: string; count: number };
}

/** One attachment as its record says. */
export interface AttachmentStatusView {
  containerId: string;
  ifname: string;
  network: string;
  vni: number;
  vf: string;
  representor?: string;
  dpu?: string;
  /** ready, adding, or del-pending (the host side is released, the DPU port is not removed yet). */
  state: 'ready' | 'adding' | 'del-pending';
  netns: string;
  stateDir: string;
}

/** The answer of the daemon's nodeStatus operation, and of `dpu-overlay status` without a daemon (dpus then empty). */
export interface NodeStatus {
  source: 'daemon' | 'records';
  version: string;
  pid?: number;
  socket?: string;
  dpus: DpuStatusView[];
  attachments: AttachmentStatusView[];
  /** Records that failed validation: never acted on, listed so an operator can remove them. */
  invalidRecords: Array<{ file: string; problem: string }>;
}
