import { existsSync } from 'node:fs';
import type { Logger } from '../log';
import type { VfRecord } from '../model/vf';
import { HOST_NETNS, type LinkOps, temporaryName } from './iproute2';
import { hostNetnsIdentity, isNetnsFile, netnsIdentity, sameBoot } from './netns';
import type { Sysfs } from './sysfs';

/**
 * The namespace DEL may enter: the runtime's CNI_NETNS only if it is the namespace recorded at ADD (same
 * dev:inode), else the recorded path if it still names that namespace (a /proc/PID path may by now be
 * another process). A hint naming anything else (another container, a plain file) is ignored. Never our own.
 */
export function usableNetns(recorded: { netns: string; netnsId?: string; netnsBoot?: string }, hint: string): string | undefined {
  if (!sameBoot(recorded)) return undefined;
  const host = hostNetnsIdentity();
  const matches = (path: string | undefined): path is string => {
    if (!path || !existsSync(path)) return false;
    const id = netnsIdentity(path);
    return id !== undefined && id !== host && (recorded.netnsId ? id === recorded.netnsId : isNetnsFile(path));
  };
  if (matches(hint)) return hint;
  return matches(recorded.netns) ? recorded.netns : undefined;
}

/** What moving a VF in and out of a container needs of the host. */
export interface VfHost {
  links: LinkOps;
  sysfs: Sysfs;
  log: Logger;
}

/**
 * Moves the VF out of the container to the host under a temporary name, which it returns. The VF is the
 * netdev that is this VF by device identity (see Sysfs.isNetdevOfVf), whatever it is called now: a
 * container may have renamed it and given its name to a decoy. Before ADD has recorded a parentless VF's
 * identity (it does so when it configures the link), a parentless link under one of rollbackNames is taken:
 * the random temporary name first, and for an ADD rolling itself back then the ifname its batch may have set.
 */
async function moveOutOfContainer(h: VfHost, vf: VfRecord, netns: string, rollbackNames: readonly string[]): Promise<string | undefined> {
  const inNetns = await h.links.listLinkDevices(netns);
  // In rollbackNames' order: while the temporary name exists the rename to ifname failed, and a link called
  // ifname is someone else's (the name was taken), not the VF.
  const byName = (name: string) => inNetns.find((l) => l.name === name && l.parentBus === undefined && l.parentDev === undefined);
  const vfLink =
    inNetns.find((l) => h.sysfs.isNetdevOfVf(l, vf)) ??
    (vf.linkIdentity ? undefined : rollbackNames.map(byName).find((l) => l !== undefined));
  if (!vfLink) return undefined;
  const hostName = temporaryName();
  await h.links.moveToNetns(vfLink.name, HOST_NETNS, hostName, netns);
  return hostName;
}

/** Moves the VF back to the host namespace and restores its name, MAC and MTU. True if it was found. */
export async function returnVfToHost(h: VfHost, vf: VfRecord, netns: string | undefined, rollbackNames: readonly string[] = []): Promise<boolean> {
  let hostName: string | undefined;
  if (netns) hostName = await moveOutOfContainer(h, vf, netns, rollbackNames);
  if (!hostName) {
    // Gone from the container (its namespace died and the kernel gave the VF back): only a name that sysfs
    // attributes to this VF's PCI address is ours to touch in the host namespace.
    const inHost = h.links.hostNames();
    const name = h.sysfs.netdevOf(vf.pci);
    hostName = name !== undefined && inHost.has(name) ? name : undefined;
  }
  if (!hostName) {
    h.log.warn({ vf: vf.pci, netns }, 'VF not found in the container or the host namespace; nothing to return');
    return false;
  }
  await h.links.restoreInHost(hostName, { name: vf.originalName, mac: vf.originalMac, mtu: vf.originalMtu });
  return true;
}
