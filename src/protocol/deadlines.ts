import type { DpuConfig } from '../config/schema';
import { ovnExecTimeoutMs } from '../dpu/ovn/client';

/** Attempts of one DPU request whose connection died under it (connection.ts repeats it on a new one). */
export const LOST_CHANNEL_ATTEMPTS = 3;
/** A delegated IPAM plugin's own limit (cni/invoke.ts): an ADD may call it twice (ADD, then DEL on rollback). */
const IPAM_BOUND_MS = 2 * 60000;
/** Host steps (netlink, sysfs, the state store) and the reply: small next to the DPU's and IPAM's. */
const HOST_STEPS_MS = 30000;
/** DPU requests one command makes of each DPU it names, rollback included (facts, VF settings, plug, check, unplug, restore). */
const DPU_REQUESTS_PER_COMMAND = 8;

/** One remote command's limit for this DPU's settings: OVN mode's plug also waits for the port to come up. */
export function execTimeoutMs(dpu: Pick<DpuConfig, 'controlPlane' | 'timeoutMs' | 'ovn'>): number {
  return dpu.controlPlane === 'ovn' ? ovnExecTimeoutMs(dpu) : dpu.timeoutMs;
}

/**
 * The longest the daemon can take to answer one DPU request: a wait for a channel (at most one exec limit) and up
 * to LOST_CHANNEL_ATTEMPTS runs. A plugin waiting for the daemon must wait this long before it may presume the
 * daemon is no longer acting on the request.
 */
export function dpuRequestBoundMs(dpu: Pick<DpuConfig, 'controlPlane' | 'timeoutMs' | 'ovn'>): number {
  return (1 + LOST_CHANNEL_ATTEMPTS) * execTimeoutMs(dpu);
}

/** The longest one whole CNI command can take in the daemon, from its DPUs' settings: announced with "accepted". */
export function commandBoundMs(dpus: ReadonlyArray<Pick<DpuConfig, 'controlPlane' | 'timeoutMs' | 'ovn'>>): number {
  const dpuMs = dpus.reduce((sum, d) => sum + DPU_REQUESTS_PER_COMMAND * dpuRequestBoundMs(d), 0);
  return IPAM_BOUND_MS + HOST_STEPS_MS + dpuMs;
}
