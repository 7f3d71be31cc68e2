import * as z from 'zod';
import { CniError, ErrorCode } from '../cni/errors';
import { formatIssues } from '../config/load';
import { type Context, ipamCall, withDpu } from './lifecycle';
import { type AllocationOwner, claimIsLive, InvalidRecordError, isInFlight, type StateStore } from '../store/attachments';
import { releaseAttachment } from './release';
import { configuredDpus } from './dpu-client';

/** True if owner has a record, valid or not: its VF is then released with the record, or not at all. */
function hasRecord(state: StateStore, owner: AllocationOwner): boolean {
  try {
    return state.loadAttachment(owner.containerId, owner.ifname) !== undefined;
  } catch (err) {
    if (err instanceof InvalidRecordError) return true;
    throw err;
  }
}

const ValidAttachments = z.array(z.looseObject({ containerID: z.string().max(256), ifname: z.string().max(64) })).max(100000);

function validAttachments(config: Record<string, unknown>): Array<{ containerId: string; ifname: string }> {
  // A key that is present but null is malformed, not missing: read as "keep nothing" it would release the whole network.
  const key = ['cni.dev/valid-attachments', 'cni.dev/attachments'].find((k) => k in config);
  const raw = key === undefined ? [] : config[key];
  const parsed = ValidAttachments.safeParse(raw);
  if (!parsed.success) throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: cni.dev/valid-attachments: ${formatIssues(parsed.error)}`);
  return parsed.data.map((a) => ({ containerId: a.containerID, ifname: a.ifname }));
}

/** GC (CNI 1.1): release every attachment of this network that the runtime no longer lists, on the host and the DPU. */
export async function cmdGc(ctx: Context): Promise<void> {
  const { conf, req, state, log } = ctx;
  const keep = validAttachments(req.config);
  const valid = new Set(keep.map((k) => `${k.containerId}/${k.ifname}`));
  const isValid = (o: { containerId: string; ifname: string }) => valid.has(`${o.containerId}/${o.ifname}`);
  state.ensure();
  await withDpu(ctx, conf.dpu, async (dpus) => {
    const failures: string[] = [];
    const { records, invalid } = state.scanAttachments();
    // An invalid record is skipped, not released: it may be planted, and what it names is not trusted;
    // keeping its VF claimed loses nothing, releasing on its word could free what a live container holds.
    for (const bad of invalid) log.warn({ file: bad.file, problem: bad.problem }, 'GC skipped an invalid state record');
    for (const att of records.filter((a) => a.network === conf.name && !isValid(a))) {
      if (isInFlight(att)) {
        log.info({ containerId: att.containerId, ifname: att.ifname }, 'GC skipped an ADD still in progress');
        continue;
      }
      try {
        await releaseAttachment(ctx, att, '', dpus);
        log.info({ containerId: att.containerId, ifname: att.ifname, vf: att.vf.pci }, 'GC released stale attachment');
      } catch (err) {
        failures.push(`${att.containerId}/${att.ifname}: ${(err as Error).message}`);
      }
    }
    for (const pci of state.listAllocations()) {
      let owner;
      try {
        owner = state.readAllocation(pci);
      } catch (err) {
        if (!(err instanceof InvalidRecordError)) throw err;
        log.warn({ file: err.file, problem: err.problem }, 'GC skipped an invalid allocation record');
        continue;
      }
      if (owner && (owner.network !== conf.name || isValid(owner) || claimIsLive(owner))) continue;
      if (owner && hasRecord(state, owner)) continue;
      state.release(pci);
    }
    // Every configured DPU: a stale port may be on any of them, whatever records survive.
    // One DPU failing does not spare the others their GC; the first failure is reported.
    let dpuError: unknown;
    for (const { key, dpu } of configuredDpus(conf)) {
      const client = dpus.get(dpu);
      try {
        const removed = await ctx.timer.step(key === undefined ? 'dpu' : `dpu:${key}`, () => client.gc(conf.name, conf.vni, keep));
        if (removed) log.info({ removed, dpu: client.target }, 'GC removed stale DPU ports');
      } catch (err) {
        log.warn({ dpu: client.target, err: (err as Error).message }, 'GC of a DPU failed');
        dpuError ??= err;
      }
    }
    if (dpuError) throw dpuError;
    let ipamError: unknown;
    if (conf.ipam) {
      // SPEC: a plugin MUST pass GC on to its delegates; the runtime's config carries the valid-attachments list.
      const call = ipamCall({ containerId: '', ifname: '', rawConfig: req.rawConfig, cniPath: req.env.path, ipamType: conf.ipam.type }, '', req.env.argsRaw, req.cniVersion);
      try {
        const asked = await ctx.timer.step('ipam', () => ctx.ipam.gc(call));
        if (!asked) log.debug({ ipam: conf.ipam.type }, 'IPAM plugin speaks no CNI version with GC; not asked');
      } catch (err) {
        ipamError = err;
      }
    }
    if (failures.length) {
      if (ipamError) failures.push(`IPAM: ${(ipamError as Error).message}`);
      throw new CniError(ErrorCode.TryAgainLater, `GC could not release ${failures.length} attachment(s): ${failures.join('; ')}`);
    }
    if (ipamError) throw ipamError;
  });
}
