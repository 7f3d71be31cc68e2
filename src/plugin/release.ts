import { CniError, ErrorCode } from '../cni/errors';
import type { DpuClients } from './dpu-client';
import { returnVfToHost, usableNetns } from '../kernel/vf';
import { type Attachment, isInFlight } from '../store/attachments';
import { faultPoint } from '../util/fault';
import { type Context, delegatedDelConfig, ipamCall, loadRecord, recordedDpuClient } from './lifecycle';
import { restoreVfFunction } from './vf-settings';

/** Gives back everything on the host: IPs, the VF (name, MAC, MTU, admin settings), the allocation. */
export async function releaseHost(ctx: Context, att: Attachment, netnsHint: string): Promise<void> {
  const { timer, links, state } = ctx;
  const netns = usableNetns(att, netnsHint);
  if (att.ipamType) {
    const call = ipamCall({ ...att, rawConfig: delegatedDelConfig(ctx, att), ipamType: att.ipamType, cniPath: ctx.req.env.path.length ? ctx.req.env.path : att.cniPath }, netns ?? '', ctx.req.env.argsRaw, ctx.req.cniVersion);
    await timer.step('ipam', () => ctx.ipam.del(call));
    faultPoint('del:ipam-released');
  }
  await timer.step('returnVf', () => returnVfToHost(ctx, att.vf, netns, [att.tmpName]));
  faultPoint('del:vf-returned');
  if (att.adminSaved) await timer.step('vfAdmin', () => links.setVfAdmin(att.vf.pfName, att.vf.index, att.adminSaved ?? {}));
  state.release(att.vf.pci, att);
}

/**
 * Unplugs the representor on the DPU; the attachment record stays until this succeeds.
 * An ADD that died before recording its port (phase "adding") may still have plugged one: found by owner.
 */
export async function releaseDpu(ctx: Context, att: Attachment, dpus: DpuClients | undefined): Promise<void> {
  if (!dpus || !(att.dpu || att.vfFunction || att.phase === 'adding')) return;
  const dpu = recordedDpuClient(ctx, att, dpus);
  if (!dpu) return;
  const req = { network: att.network, vni: att.vni, containerId: att.containerId, ifname: att.ifname, representor: att.dpu?.representor ?? '', portUuid: att.dpu?.portUuid, ...(att.dpu?.lsp ? { lsp: att.dpu.lsp } : {}) };
  try {
    await restoreVfFunction(ctx, att, dpu);
    if (att.dpu || att.phase === 'adding') await ctx.timer.step('dpu', () => dpu.unplug(req));
  } catch (err) {
    // Unreachable or slow DPU: code 11 so the runtime retries. Auth, host key and command errors keep their own code.
    const code = err instanceof CniError ? err.code : ErrorCode.TryAgainLater;
    const msg = err instanceof Error ? err.message : String(err);
    throw new CniError(code, `host side released, but ${att.vfFunction ? 'restoring the VF function or ' : ''}unplugging ${att.dpu?.representor ?? `the ports of ${att.containerId}/${att.ifname}`} on DPU ${att.dpu?.target ?? dpu.target} failed; retry DEL: ${msg}`);
  }
}

const LOCK_POLL_MS = 25;

/**
 * The attachment's lock, waiting while the dpu-overlay daemon re-plugs it (one DPU transaction); code 11 if it
 * is held longer. Without it a DEL could remove the port ADD made while the daemon plugs a new one for a record
 * DEL is deleting, and the new port would outlive the container.
 */
async function lockAttachment(ctx: Context, att: Attachment): Promise<() => void> {
  const limitMs = 2 * (ctx.conf.dpu?.timeoutMs ?? 10000) + 1000;
  const deadline = Date.now() + limitMs;
  for (;;) {
    const unlock = ctx.state.tryLock(att.containerId, att.ifname);
    if (unlock) return unlock;
    if (Date.now() >= deadline) {
      const holder = ctx.state.lockHolder(att.containerId, att.ifname);
      throw new CniError(ErrorCode.TryAgainLater, `${att.containerId}/${att.ifname} is being changed on the DPU by pid ${holder?.pid ?? '?'} (the dpu-overlay daemon re-plugging it, or another DEL/GC) for more than ${limitMs} ms; try again later`);
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

/**
 * DEL/GC of one cached attachment, under its lock. Host first (always completes), then the DPU; a DPU failure
 * keeps the record for a retry. The record is read again under the lock: the daemon may have re-plugged it
 * (new port UUID) or finished its DEL meanwhile.
 */
export async function releaseAttachment(ctx: Context, stale: Attachment, netnsHint: string, dpus?: DpuClients): Promise<void> {
  const unlock = await lockAttachment(ctx, stale);
  try {
    const att = loadRecord(ctx, stale.containerId, stale.ifname);
    // Gone: released meanwhile. In flight: a new ADD of the same name started after that.
    if (att && !isInFlight(att)) await releaseLocked(ctx, att, netnsHint, dpus);
  } finally {
    unlock();
  }
}

async function releaseLocked(ctx: Context, att: Attachment, netnsHint: string, dpus: DpuClients | undefined): Promise<void> {
  const { state } = ctx;
  if (!att.hostReleased) {
    await releaseHost(ctx, att, netnsHint);
    if (att.dpu || att.vfFunction || att.phase === 'adding') {
      att.hostReleased = true;
      if (att.dpu) att.dpu.unplugPending = true;
      state.saveAttachment(att);
      faultPoint('del:host-released');
    }
  }
  await releaseDpu(ctx, att, dpus);
  faultPoint('del:dpu-unplugged');
  state.removeAttachment(att.containerId, att.ifname);
}
