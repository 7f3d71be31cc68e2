import { existsSync, statfsSync } from 'node:fs';
import { NSFS_MAGIC } from '../cni/env';
import { CniError, ErrorCode } from '../cni/errors';
import type { DpuClient } from '../dpu/client';
import { HOST_NETNS, temporaryName } from '../host/netlink';
import type { Attachment } from '../host/state';
import { faultPoint } from '../util/fault';
import { type Context, delegatedDelConfig, hostNetnsIdentity, ipamCall, netnsIdentity } from './context';

/**
 * The namespace DEL may enter: the runtime's CNI_NETNS only if it is the namespace recorded at ADD (same
 * dev:inode), else the recorded path if it still names that namespace (a /proc/PID path may by now be
 * another process). A hint naming anything else (another container, a plain file) is ignored. Never our own.
 */
export function usableNetns(att: Attachment, hint: string): string | undefined {
  const host = hostNetnsIdentity();
  const matches = (path: string | undefined): path is string => {
    if (!path || !existsSync(path)) return false;
    const id = netnsIdentity(path);
    return id !== undefined && id !== host && (att.netnsId ? id === att.netnsId : isNetns(path));
  };
  if (matches(hint)) return hint;
  return matches(att.netns) ? att.netns : undefined;
}

function isNetns(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Moves the VF out of the container to the host under a temporary name, which it returns. The VF is the
 * netdev that is this VF by device identity (see Sysfs.isNetdevOfVf), whatever it is called now: a
 * container may have renamed it and given its name to a decoy. Before ADD has recorded a parentless VF's
 * identity (it does so when it configures the link), a parentless link under one of rollbackNames is taken:
 * the random temporary name, and for an ADD rolling itself back also the ifname its batch may have set.
 */
async function moveOutOfContainer(ctx: Context, att: Attachment, netns: string, rollbackNames: readonly string[] = []): Promise<string | undefined> {
  const { links, sysfs } = ctx;
  const inNetns = await links.listLinkDevices(netns);
  const vfLink =
    inNetns.find((l) => sysfs.isNetdevOfVf(l, att.vf)) ??
    (att.vf.linkIdentity ? undefined : inNetns.find((l) => rollbackNames.includes(l.name) && l.parentBus === undefined && l.parentDev === undefined));
  if (!vfLink) return undefined;
  const hostName = temporaryName();
  await links.moveToNetns(vfLink.name, HOST_NETNS, hostName, netns);
  return hostName;
}

/** Moves the VF back to the host namespace and restores its name, MAC and MTU. True if it was found. */
export async function returnVfToHost(ctx: Context, att: Attachment, netns: string | undefined, rollbackNames: readonly string[] = []): Promise<boolean> {
  const { links, log } = ctx;
  const { vf } = att;
  let hostName: string | undefined;
  if (netns) hostName = await moveOutOfContainer(ctx, att, netns, rollbackNames);
  if (!hostName) {
    // Gone from the container (its namespace died and the kernel gave the VF back): only a name that sysfs
    // attributes to this VF's PCI address is ours to touch in the host namespace.
    const inHost = new Set((await links.listLinks()).map((l) => l.name));
    hostName = [ctx.sysfs.netdevOf(vf.pci), vf.originalName].find((n): n is string => n !== undefined && inHost.has(n));
  }
  if (!hostName) {
    log.warn({ vf: vf.pci, netns }, 'VF not found in the container or the host namespace; nothing to return');
    return false;
  }
  const cmds = [['link', 'set', 'dev', hostName, 'down']];
  if (hostName !== vf.originalName) cmds.push(['link', 'set', 'dev', hostName, 'name', vf.originalName]);
  cmds.push(['link', 'set', 'dev', vf.originalName, 'address', vf.originalMac, 'mtu', String(vf.originalMtu)]);
  await links.batch(undefined, cmds);
  return true;
}

/** Gives back everything on the host: IPs, the VF (name, MAC, MTU, admin settings), the allocation. */
export async function releaseHost(ctx: Context, att: Attachment, netnsHint: string): Promise<void> {
  const { timer, links, state } = ctx;
  const netns = usableNetns(att, netnsHint);
  if (att.ipamType) {
    const call = ipamCall({ ...att, rawConfig: delegatedDelConfig(ctx, att), ipamType: att.ipamType, cniPath: ctx.req.env.path.length ? ctx.req.env.path : att.cniPath }, netns ?? '', ctx.req.env.argsRaw, ctx.req.cniVersion);
    await timer.step('ipam', () => ctx.ipam.del(call));
    faultPoint('del:ipam-released');
  }
  await timer.step('returnVf', () => returnVfToHost(ctx, att, netns, [att.tmpName]));
  faultPoint('del:vf-returned');
  if (att.adminSaved) await timer.step('vfAdmin', () => links.setVfAdmin(att.vf.pfName, att.vf.index, att.adminSaved ?? {}));
  state.release(att.vf.pci, att);
}

/**
 * Unplugs the representor on the DPU; the attachment record stays until this succeeds.
 * An ADD that died before recording its port (phase "adding") may still have plugged one: found by owner.
 */
export async function releaseDpu(ctx: Context, att: Attachment, dpu: DpuClient | undefined): Promise<void> {
  if (!dpu || !(att.dpu || att.phase === 'adding')) return;
  const req = { network: att.network, vni: att.vni, containerId: att.containerId, ifname: att.ifname, representor: att.dpu?.representor ?? '', portUuid: att.dpu?.portUuid };
  try {
    await ctx.timer.step('dpu', () => dpu.unplug(req));
  } catch (err) {
    // Unreachable or slow DPU: code 11 so the runtime retries. Auth, host key and command errors keep their own code.
    const code = err instanceof CniError ? err.code : ErrorCode.TryAgainLater;
    const msg = err instanceof Error ? err.message : String(err);
    throw new CniError(code, `host side released, but unplugging ${att.dpu?.representor ?? `the ports of ${att.containerId}/${att.ifname}`} on DPU ${att.dpu?.target ?? dpu.target} failed; retry DEL: ${msg}`);
  }
}

/** DEL/GC of one cached attachment. Host first (always completes), then the DPU; a DPU failure keeps the record for a retry. */
export async function releaseAttachment(ctx: Context, att: Attachment, netnsHint: string, dpu?: DpuClient): Promise<void> {
  const { state } = ctx;
  if (!att.hostReleased) {
    await releaseHost(ctx, att, netnsHint);
    if (att.dpu || att.phase === 'adding') {
      att.hostReleased = true;
      if (att.dpu) att.dpu.unplugPending = true;
      state.saveAttachment(att);
      faultPoint('del:host-released');
    }
  }
  await releaseDpu(ctx, att, dpu);
  faultPoint('del:dpu-unplugged');
  state.removeAttachment(att.containerId, att.ifname);
}
