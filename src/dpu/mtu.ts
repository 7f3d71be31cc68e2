import { isIPv6 } from 'node:net';
import { DpuError } from './errors';
import type { Uplink } from './vf-function';

/**
 * Bytes an encapsulation adds to the container's MTU on the underlay: the inner Ethernet header (14) plus
 * the tunnel headers and the outer IP header (20 for IPv4, 40 for IPv6; no IPv6 extension headers).
 */
export const ENCAP_OVERHEAD = {
  // 14 inner Ethernet + 8 VXLAN + 8 UDP + outer IP (RFC 7348)
  vxlan: { ipv4: 50, ipv6: 70 },
  // 14 inner Ethernet + 8 Geneve base + 8 UDP + 8 of options (OVN's one 8-byte option; neutron's
  // [ml2_type_geneve] max_header_size, at least 38 for OVN) + outer IP (RFC 8926)
  geneve: { ipv4: 58, ipv6: 78 },
} as const;

export type Encapsulation = keyof typeof ENCAP_OVERHEAD;

export function encapOverhead(encap: Encapsulation, localVtep: string): number {
  return ENCAP_OVERHEAD[encap][isIPv6(localVtep) ? 'ipv6' : 'ipv4'];
}

/** Refuses (mtu-too-small) an MTU whose encapsulated packets would not fit the DPU's uplink: they would be dropped silently. */
export function checkUnderlayMtu(p: { mtu: number; localVtep: string; encap: Encapsulation; uplink: Uplink | undefined; target: string; ovn?: boolean }): void {
  if (!p.uplink) {
    if (p.ovn) throw new DpuError('vtep-not-found', `DPU ${p.target}: no interface has the address ${p.localVtep} of its external_ids:ovn-encap-ip; fix that OVN setting on the DPU (ovs-vsctl set Open_vSwitch . external_ids:ovn-encap-ip=<underlay address>)`);
    throw new DpuError('vtep-not-found', `invalid network config: dpu.localVtep: no interface on DPU ${p.target} has address ${p.localVtep}; set dpu.localVtep to the DPU's underlay address`);
  }
  const overhead = encapOverhead(p.encap, p.localVtep);
  const needed = p.mtu + overhead;
  if (needed > p.uplink.mtu) {
    throw new DpuError(
      'mtu-too-small',
      `invalid network config: mtu: mtu ${p.mtu} needs an underlay MTU of at least ${needed} (${p.encap.toUpperCase()} over ${isIPv6(p.localVtep) ? 'IPv6' : 'IPv4'} adds ${overhead} bytes); the DPU's uplink ${p.uplink.dev} carrying localVtep ${p.localVtep} has MTU ${p.uplink.mtu}: lower mtu to ${p.uplink.mtu - overhead} or raise the uplink MTU`,
    );
  }
}
