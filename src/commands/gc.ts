import * as z from 'zod';
import { CniError, ErrorCode } from '../cni/errors';
import { formatIssues } from '../config/load';
import { type Context, ipamCall, withDpu } from './context';
import { releaseAttachment } from './release';

const ValidAttachments = z.array(z.looseObject({ containerID: z.string().max(256), ifname: z.string().max(64) })).max(100000);

function validAttachments(config: Record<string, unknown>): Array<{ containerId: string; ifname: string }> {
  const raw = config['cni.dev/valid-attachments'] ?? config['cni.dev/attachments'] ?? [];
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
  await withDpu(ctx, async (client) => {
    const failures: string[] = [];
    for (const att of state.listAttachments().filter((a) => a.network === conf.name && !isValid(a))) {
      try {
        await releaseAttachment(ctx, att, '', client);
        log.info({ containerId: att.containerId, ifname: att.ifname, vf: att.vf.pci }, 'GC released stale attachment');
      } catch (err) {
        failures.push(`${att.containerId}/${att.ifname}: ${(err as Error).message}`);
      }
    }
    for (const pci of state.listAllocations()) {
      const owner = state.allocationOwner(pci);
      const orphan = !owner || (owner.network === conf.name && !isValid(owner) && !state.loadAttachment(owner.containerId, owner.ifname));
      if (orphan) state.release(pci);
    }
    if (client) {
      const removed = await ctx.timer.step('dpu', () => client.gc(conf.name, conf.vni, keep));
      if (removed) log.info({ removed }, 'GC removed stale DPU ports');
    }
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
