import type { PortOwner } from './api';
import { LayerError } from '../util/layer-error';

/** What went wrong on or on the way to the DPU; plugin/dpu-errors.ts gives each its CNI code. */
export type DpuErrorKind =
  /** No TCP connection or SSH session, or the remote command could not be started. */
  | 'unreachable'
  /** The SSH handshake or a remote command took longer than dpu.timeoutMs. */
  | 'timeout'
  /** The SSH channel closed before the command reported an exit status: safe to repeat. */
  | 'channel-lost'
  /** The DPU refused our key. */
  | 'auth'
  /** The host key does not match the pin, or known_hosts has no (readable) entry for it. */
  | 'host-key'
  /** A remote command exited non-zero (including a refusal by the guard, exit 126). */
  | 'command-failed'
  /** A remote command's output was not what it prints. */
  | 'bad-output'
  /** A remote command wrote more than MAX_OUTPUT_BYTES. */
  | 'output-too-large'
  /** The DPU is not set up for this mode (no br-int, no OVN system-id or encap IP). */
  | 'not-set-up'
  /** A name dpu-overlay would use belongs to something it did not create. */
  | 'name-conflict'
  /** The representor's OVS port belongs to another attachment (see DpuPortOwned). */
  | 'port-owned'
  /** hwOffload is "require" and the DPU's OVS does not offload. */
  | 'offload-required-missing'
  /** OVN: the DPU cannot reach the northbound database. */
  | 'ovn-nb-unreachable'
  /** OVN: ovn-controller did not report the port installed in time. */
  | 'port-not-up'
  /** CHECK: the DPU side differs from what ADD made. */
  | 'check-mismatch'
  /** STATUS: the DPU is reachable but cannot take ADDs (OVN controller down or disconnected). */
  | 'unavailable'
  /** A dpu.* setting in the network config is wrong (the message names it). */
  | 'bad-config'
  /** No DPU interface has the tunnel endpoint address (dpu.localVtep, or OVN's ovn-encap-ip). */
  | 'vtep-not-found'
  /** The requested mtu plus the encapsulation does not fit the DPU's uplink. */
  | 'mtu-too-small';

export class DpuError extends LayerError<DpuErrorKind> {
  constructor(kind: DpuErrorKind, msg: string, details = '') {
    super(kind, msg, details);
    this.name = 'DpuError';
  }
}

/**
 * The representor's OVS port carries another attachment's owner external_ids. The DPU cannot tell a live attachment
 * from a crash's leftover: the plugin decides from its records (plugin/port-owner.ts) and may ask again with
 * PlugRequest.reclaim naming this owner.
 */
export class DpuPortOwned extends DpuError {
  constructor(
    target: string,
    readonly representor: string,
    readonly holder: PortOwner & { portUuid: string },
  ) {
    super('port-owned', `DPU ${target}: representor ${representor} is plugged for another attachment (container ${holder.containerId}, ifname ${holder.ifname}, network ${holder.network}); it is not moved`, JSON.stringify({ portOwner: holder }));
    this.name = 'DpuPortOwned';
  }
}
