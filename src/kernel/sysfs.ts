import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { VfLookupError } from './errors';
import type { LinkDevice } from './iproute2';
import type { VfRecord } from '../model/vf';

/** One SR-IOV virtual function as sysfs describes it. */
export interface VfInfo {
  pci: string;
  /** N in the PF's virtfn<N> link. */
  index: number;
  pfPci: string;
  pfName: string;
  /** PF number as the DPU names representors (pf<PF>vf<VF>): see Sysfs.pfIndexOf. */
  pfIndex: number;
  /** The VF netdev's name as sysfs lists it, if it has one in this network namespace. */
  netdev?: string;
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function pciFunction(pci: string): number {
  return Number(pci.slice(pci.lastIndexOf('.') + 1));
}

/** Reads SR-IOV topology below a sysfs root (/sys in production, a fake tree in tests). */
export class Sysfs {
  constructor(readonly root: string) {}

  private devicePath(pci: string): string {
    return join(this.root, 'bus/pci/devices', pci);
  }

  /**
   * Whether a netdev in the container is the VF with this PCI address: never by name, which a container can
   * change. The kernel reports a VF netdev's parent device (its PCI function). A netdev without one is the VF
   * only if ADD saw the VF without one too (the emulated testbed's veths; kernels before 5.17 report no parent)
   * and recorded its link identity: its ifindex, which no other link in that namespace can hold while the VF is
   * there, and a veth's peer (the representor, in a namespace the container cannot reach).
   */
  isNetdevOfVf(link: LinkDevice, vf: Pick<VfRecord, 'pci' | 'linkIdentity'>): boolean {
    if (link.parentBus !== undefined || link.parentDev !== undefined) return link.parentBus === 'pci' && link.parentDev === vf.pci;
    const seen = vf.linkIdentity;
    if (seen === undefined || link.ifindex !== seen.ifindex) return false;
    return seen.peer === undefined ? link.peer === undefined : link.peer?.netnsId === seen.peer.netnsId && link.peer.ifindex === seen.peer.ifindex;
  }

  netdevOf(pci: string): string | undefined {
    return listDir(join(this.devicePath(pci), 'net')).sort()[0];
  }

  /**
   * The PF's number on its card, as the DPU names its VFs' representors (pf<N>vf<M>): the port of the PF's
   * phys_port_name "p<N>" (what makes udev call it ...np<N>), else its PCI function (0000:03:00.1 is pf1).
   */
  pfIndexOf(pfName: string, pfPci: string): number {
    let portName = '';
    try {
      portName = readFileSync(join(this.root, 'class/net', pfName, 'phys_port_name'), 'utf8').trim();
    } catch {
      // absent, or EOPNOTSUPP from a driver without port names
    }
    const port = /^p(\d{1,3})$/.exec(portName);
    return port && Number(port[1]) <= 255 ? Number(port[1]) : pciFunction(pfPci);
  }

  pfPciOf(pfName: string): string {
    try {
      return basename(readlinkSync(join(this.root, 'class/net', pfName, 'device')));
    } catch {
      throw new VfLookupError(`PF ${pfName} not found: ${join(this.root, 'class/net', pfName, 'device')} does not exist (check "pf" and "sysfsRoot")`);
    }
  }

  private virtfns(pfPci: string): Array<{ index: number; pci: string }> {
    const dir = this.devicePath(pfPci);
    return listDir(dir)
      .filter((e) => /^virtfn\d+$/.test(e))
      .map((e) => ({ index: Number(e.slice(6)), pci: basename(readlinkSync(join(dir, e))) }))
      .sort((a, b) => a.index - b.index);
  }

  /** All VFs of a PF, ordered by VF index. */
  listVfs(pfName: string, pfIndexOverride?: number): VfInfo[] {
    const pfPci = this.pfPciOf(pfName);
    const vfs = this.virtfns(pfPci);
    if (vfs.length === 0) {
      throw new VfLookupError(`PF ${pfName} (${pfPci}) has no VFs: enable SR-IOV with "echo N > ${join(this.devicePath(pfPci), 'sriov_numvfs')}"`);
    }
    const pfIndex = pfIndexOverride ?? this.pfIndexOf(pfName, pfPci);
    return vfs.map(({ index, pci }) => ({ pci, index, pfPci, pfName, pfIndex, netdev: this.netdevOf(pci) }));
  }

  /** The VF with this PCI address, found through its physfn link. */
  vfByPci(pci: string, pfIndexOverride?: number): VfInfo {
    let pfPci: string;
    try {
      pfPci = basename(readlinkSync(join(this.devicePath(pci), 'physfn')));
    } catch {
      throw new VfLookupError(`device ${pci} is not an SR-IOV VF: ${join(this.devicePath(pci), 'physfn')} does not exist (check deviceID and sysfsRoot)`);
    }
    const entry = this.virtfns(pfPci).find((v) => v.pci === pci);
    const pfName = this.netdevOf(pfPci);
    if (!entry || !pfName) {
      throw new VfLookupError(`VF ${pci}: PF ${pfPci} does not list it or has no netdev under ${this.devicePath(pfPci)}`);
    }
    return { pci, index: entry.index, pfPci, pfName, pfIndex: pfIndexOverride ?? this.pfIndexOf(pfName, pfPci), netdev: this.netdevOf(pci) };
  }
}
