/**
 * Shapes of a VF shared by the rooms that act on it (kernel/, dpu/) and the one that records it (store/).
 * Types only: this room sits below all of them and imports nothing from src/ (docs/design/layout.md).
 */

/** The VF as the host had it before ADD, so DEL can put it back. */
export interface VfRecord {
  pci: string;
  index: number;
  pfName: string;
  pfPci: string;
  pfIndex: number;
  originalName: string;
  originalMac: string;
  originalMtu: number;
  /**
   * Identity of a VF netdev that has no parent device (the emulated testbed's VFs are veths) in the container,
   * as ADD saw it there: its ifindex and its peer (the representor, in a namespace the container cannot reach).
   */
  linkIdentity?: { ifindex: number; peer?: { netnsId: number; ifindex: number } };
}

/** VF admin settings (set through the PF) as they were before ADD. */
export interface VfAdminRecord {
  mac?: string;
  vlan?: number;
  vlanQoS?: number;
  spoofchk?: 'on' | 'off';
  trust?: 'on' | 'off';
  linkState?: 'auto' | 'enable' | 'disable';
  minTxRate?: number;
  maxTxRate?: number;
}

/** The VF settings the DPU side can apply, in the config's vocabulary (rates in Mbit/s, like ip link). */
export interface VfFunctionValues {
  mac?: string;
  linkState?: 'auto' | 'enable' | 'disable';
  minTxRate?: number;
  maxTxRate?: number;
}

/** Where a VF's function is set on the DPU. */
export type VfFunctionTarget = { path: 'devlink'; handle: string } | { path: 'smartnic'; pfIndex: number; vfIndex: number };
