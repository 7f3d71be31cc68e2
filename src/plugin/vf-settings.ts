import { CniError, ErrorCode } from '../cni/errors';
import type { DpuConfig } from '../config/schema';
import type { DpuClient, DpuFacts } from '../dpu/api';
import { restoreValues, wantsRates } from '../dpu/vf-function';
import type { VfAdminRecord, VfFunctionValues } from '../model/vf';
import type { VfInfo } from '../kernel/sysfs';
import type { Attachment } from '../store/attachments';
import type { UndoStack } from '../util/undo';
import type { Context } from './lifecycle';

/** What ADD needs the DPU side for: the MAC (as hw_addr), link state and rates. */
export function dpuFunctionValues(ctx: Context): VfFunctionValues {
  const { resolvedMac, linkState, minTxRate, maxTxRate } = ctx.conf;
  const v: VfFunctionValues = { mac: resolvedMac, linkState, minTxRate, maxTxRate };
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)) as VfFunctionValues;
}

/** VF settings for the host PF (NIC mode); the MAC is given to the netdev in the container, not here. */
function hostAdminSettings(ctx: Context): VfAdminRecord | undefined {
  const { vlan, vlanQoS, spoofchk, trust, linkState, minTxRate, maxTxRate } = ctx.conf;
  const s: VfAdminRecord = { vlan, vlanQoS, spoofchk, trust, linkState, minTxRate, maxTxRate };
  return Object.values(s).some((v) => v !== undefined) ? s : undefined;
}

/** The facts request: the VF function is looked up only when something may be set through it. */
export function wantsDpuFunction(ctx: Context, dpu: DpuConfig | undefined, client: DpuClient | undefined): { rates: boolean } | undefined {
  const values = dpuFunctionValues(ctx);
  if (!client || !dpu || dpu.vfSettings === 'host') return undefined;
  if (Object.keys(values).length === 0 && !hostAdminSettings(ctx)) return undefined;
  return { rates: wantsRates(values) };
}

/**
 * Applies the VF settings where the hardware takes them: the DPU's VF function when dpu.vfSettings allows it and
 * the DPU offers one, else the host PF. Previous values are recorded before anything changes; undo restores them.
 */
export async function applyVfSettings(ctx: Context, att: Attachment, vf: VfInfo, dpu: DpuConfig | undefined, client: DpuClient | undefined, facts: DpuFacts | undefined, undo: UndoStack): Promise<void> {
  const { conf, links, state, timer } = ctx;
  const mode = dpu?.vfSettings ?? 'host';
  const fn = facts?.vfFunction;
  const values = dpuFunctionValues(ctx);
  if (mode !== 'host' && client && fn) {
    const hostOnly = (['vlan', 'vlanQoS', 'spoofchk', 'trust'] as const).filter((k) => conf[k] !== undefined);
    if (hostOnly.length) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${hostOnly.join(', ')}: DPU ${client.target} takes VF settings on its side (${fn.target.path}), which has no ${hostOnly.join('/')}: remove them (tag VLANs in OVS on the DPU), or set dpu.vfSettings to "host" if this BlueField runs in NIC mode`);
    }
    if (Object.keys(values).length === 0) return;
    const saved = Object.fromEntries(Object.keys(values).map((k) => [k, fn.values[k as keyof VfFunctionValues]]).filter(([, x]) => x !== undefined)) as VfFunctionValues;
    att.vfFunction = { target: fn.target, applied: values, saved };
    state.saveAttachment(att);
    undo.push('restore VF function on the DPU', () => client.setVfFunction(fn.target, restoreValues(values, saved)));
    await timer.step('vfFunction', () => client.setVfFunction(fn.target, values));
    return;
  }
  const admin = hostAdminSettings(ctx);
  if (mode === 'dpu' && (admin || Object.keys(values).length)) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpu.vfSettings: "dpu", but DPU ${client?.target ?? '?'} offers neither a devlink port function for representor ${att.dpu?.representor ?? `of VF ${vf.index}`} nor /sys/class/net/p${vf.pfIndex}/smart_nic/vf${vf.index}/: set dpu.vfSettings to "auto" or "host" (NIC mode), or update the DPU's BSP`);
  }
  if (!admin) return;
  await timer.step('vfAdmin', async () => {
    att.adminSaved = await links.vfAdmin(vf.pfName, vf.index);
    state.saveAttachment(att);
    await links.setVfAdmin(vf.pfName, vf.index, admin);
  });
  undo.push('restore VF admin settings', () => links.setVfAdmin(vf.pfName, vf.index, att.adminSaved ?? {}));
}

/** DEL: the DPU-side VF settings back as they were (idempotent: repeated on a DEL retry). */
export async function restoreVfFunction(ctx: Context, att: Attachment, client: DpuClient): Promise<void> {
  const fn = att.vfFunction;
  if (!fn) return;
  await ctx.timer.step('vfFunction', () => client.setVfFunction(fn.target, restoreValues(fn.applied, fn.saved)));
}
