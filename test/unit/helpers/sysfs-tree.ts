import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeVf {
  pci: string;
  /** The VF's netdev name under net/, or none (unbound driver). */
  netdev?: string;
}

export interface FakePf {
  name: string;
  pci: string;
  vfs: FakeVf[];
  /** virtfn index of each VF; defaults to its position. */
  indexes?: number[];
}

/**
 * Builds the part of sysfs the plugin reads:
 *   <root>/bus/pci/devices/<pf-pci>/{virtfnN -> ../<vf-pci>, net/<pf>/}
 *   <root>/bus/pci/devices/<vf-pci>/{physfn -> ../<pf-pci>, net/<vfname>/}
 *   <root>/class/net/<pf>/device -> ../../../bus/pci/devices/<pf-pci>
 */
export function buildSysfs(root: string, pfs: FakePf[]): string {
  const devices = join(root, 'bus/pci/devices');
  mkdirSync(devices, { recursive: true });
  for (const pf of pfs) {
    const pfDir = join(devices, pf.pci);
    mkdirSync(join(pfDir, 'net', pf.name), { recursive: true });
    mkdirSync(join(root, 'class/net', pf.name), { recursive: true });
    symlinkSync(`../../../bus/pci/devices/${pf.pci}`, join(root, 'class/net', pf.name, 'device'));
    pf.vfs.forEach((vf, i) => {
      const index = pf.indexes?.[i] ?? i;
      const vfDir = join(devices, vf.pci);
      mkdirSync(vfDir, { recursive: true });
      if (vf.netdev) mkdirSync(join(vfDir, 'net', vf.netdev), { recursive: true });
      symlinkSync(`../${vf.pci}`, join(pfDir, `virtfn${index}`));
      symlinkSync(`../${pf.pci}`, join(vfDir, 'physfn'));
    });
  }
  return root;
}

/** n VFs of PF pfPci (0000:03:00.0 -> 0000:03:00.2, .3, ...; then the next device number). */
export function vfsOf(pfName: string, bus: string, n: number): FakeVf[] {
  return Array.from({ length: n }, (_, i) => {
    const devfn = 2 + i;
    return { pci: `0000:${bus}:${String(Math.floor(devfn / 8)).padStart(2, '0')}.${devfn % 8}`, netdev: `${pfName}v${i}` };
  });
}
