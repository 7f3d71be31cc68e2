import { existsSync } from 'node:fs';
import type { Context } from './lifecycle';
import { ipamCall, loadRecord, refuseInFlight, withDpu } from './lifecycle';
import { configuredDpus, dpuOfRecord } from './dpu-client';
import { claimIsLive } from '../store/attachments';
import { releaseAttachment } from './release';

/**
 * DEL is idempotent: no cache, a second DEL, an empty or vanished CNI_NETNS all succeed.
 * Without a cache entry (interrupted ADD, lost stateDir) it frees what it can find by owner.
 */
export async function cmdDel(ctx: Context): Promise<void> {
  const { req, state, log, conf } = ctx;
  const { containerId, ifname, netns } = req.env;
  state.ensure();
  const att = loadRecord(ctx, containerId, ifname);
  if (att) refuseInFlight(att, 'DEL');
  await withDpu(ctx, att ? dpuOfRecord(conf, att)?.dpu : conf.dpu, async (dpus) => {
    // Claims of this attachment by an ADD that died between claiming and recording: with a record too when that ADD
    // was repeated (a daemon killed mid-ADD, then the plugin's own ADD claimed another VF).
    const releaseDeadClaims = () => {
      for (const pci of state.listAllocations()) {
        const owner = state.allocationOwner(pci);
        if (owner?.containerId === containerId && owner.ifname === ifname && !claimIsLive(owner) && pci !== att?.vf.pci) state.release(pci, owner);
      }
    };
    if (att) {
      await releaseAttachment(ctx, att, netns, dpus);
      releaseDeadClaims();
      return;
    }
    releaseDeadClaims();
    if (conf.ipam) {
      // stateDir lost (host rebooted, disk wiped): the runtime's DEL carries the network config, so the address is still released.
      const call = ipamCall({ rawConfig: req.rawConfig, containerId, ifname, cniPath: req.env.path, ipamType: conf.ipam.type }, netns && existsSync(netns) ? netns : '', req.env.argsRaw, req.cniVersion);
      try {
        await ctx.timer.step('ipam', () => ctx.ipam.del(call));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'DEL without cached state: IPAM DEL failed');
      }
    }
    // Which DPU it was plugged on is not known: each configured one is asked.
    for (const { dpu } of configuredDpus(conf)) {
      const client = dpus.get(dpu);
      try {
        await ctx.timer.step('dpu', () => client.unplug({ network: conf.name, vni: conf.vni, containerId, ifname, representor: '' }));
      } catch (err) {
        log.warn({ dpu: client.target, err: (err as Error).message }, 'DEL without cached state: could not check the DPU for ports of this container; GC will');
      }
    }
  });
}
