import { CniError, ErrorCode } from '../cni/errors';
import type { DpuClient, PlugRequest, PlugResult, Reclaim } from '../dpu/api';
import type { Logger } from '../log';
import { InvalidRecordError, type StateStore } from '../store/attachments';

/** The owner of the representor's port, from the code-102 error a DpuPortOwned became (dpu-errors.ts puts it in details). */
export function portOwnerOf(err: unknown): Reclaim | undefined {
  if (!(err instanceof CniError) || err.code !== ErrorCode.VfInUse || !err.details) return undefined;
  try {
    const o = (JSON.parse(err.details) as { portOwner?: Record<string, unknown> }).portOwner;
    if (!o || ![o.network, o.containerId, o.ifname, o.portUuid].every((v) => typeof v === 'string')) return undefined;
    return { network: o.network as string, containerId: o.containerId as string, ifname: o.ifname as string, portUuid: o.portUuid as string };
  } catch {
    return undefined;
  }
}

/** Whether an attachment of that owner has a record here (an unreadable record counts: it is never taken from). */
function hasRecord(state: StateStore, o: Reclaim): boolean {
  try {
    return state.loadAttachment(o.containerId, o.ifname) !== undefined;
  } catch (err) {
    if (err instanceof InvalidRecordError) return true;
    throw err;
  }
}

/**
 * Plugs, never taking the representor's port from another live attachment: a port whose owner has a record on this
 * host is refused (102, naming it and what to fix); one whose owner has none (a crash's leftover) is reclaimed, by
 * a removal the DPU makes only while the port still has that owner.
 */
export async function plugOwned(client: DpuClient, state: StateStore, req: PlugRequest, log: Logger): Promise<PlugResult> {
  try {
    return await client.plug(req);
  } catch (err) {
    const holder = portOwnerOf(err);
    if (!holder) throw err;
    if (hasRecord(state, holder)) {
      throw new CniError(
        ErrorCode.VfInUse,
        `representor ${req.representor} on DPU ${client.target} belongs to the live attachment of container ${holder.containerId} (ifname ${holder.ifname}, network ${holder.network}); it is not moved. This VF maps to another attachment's representor: check the node's dpu.representorTemplate and pfIndex (the template must contain {vf}), or DEL that container first`,
      );
    }
    log.warn({ representor: req.representor, portUuid: holder.portUuid, owner: holder }, 'reclaiming the DPU port of an attachment that has no record on this host (left by a crash)');
    return client.plug({ ...req, reclaim: holder });
  }
}
