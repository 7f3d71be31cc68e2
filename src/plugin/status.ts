import { accessSync, constants } from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors';
import { type Context, ipamCall, withDpu } from './lifecycle';
import { configuredDpus } from './dpu-client';

const unavailable = (why: string) => new CniError(ErrorCode.PluginNotAvailable, why);

/** A pool with no VF that ADD could take: each VF of every PF in pf is allocated or has no netdev in the host namespace. */
async function requireFreeVf(ctx: Context, pfs: string[]): Promise<void> {
  const { conf, state } = ctx;
  const vfs = pfs.flatMap((pf) => ctx.sysfs.listVfs(pf, pfs.length === 1 ? conf.pfIndex : undefined));
  const pf = pfs.join(', ');
  const taken = new Set(state.listAllocations());
  const inHost = ctx.links.hostNames();
  const free = vfs.filter((vf) => !taken.has(vf.pci) && vf.netdev !== undefined && inHost.has(vf.netdev));
  if (free.length > 0) return;
  const allocated = vfs.filter((vf) => taken.has(vf.pci)).length;
  throw unavailable(`no free VF on PF ${pf}: of its ${vfs.length} VFs ${allocated} are allocated (${state.allocationsDir}) and ${vfs.length - allocated} have no netdev in the host namespace; ADD would fail until DEL or GC frees one, or raise sriov_numvfs`);
}

/** STATUS (CNI 1.1): can this node serve ADD? Code 50 with the reason if not. */
export async function cmdStatus(ctx: Context): Promise<void> {
  const { conf, state, req } = ctx;
  try {
    state.ensure();
    accessSync(conf.stateDir, constants.W_OK);
  } catch (err) {
    throw unavailable(`stateDir ${conf.stateDir} is not writable: ${(err as Error).message}`);
  }
  // A network-wide deviceID names one VF for every ADD; a pool is only checked when ADD picks from the PF.
  if (conf.pfs.length && !conf.resolvedDeviceId) {
    try {
      await requireFreeVf(ctx, conf.pfs);
    } catch (err) {
      throw err instanceof CniError && err.code === ErrorCode.PluginNotAvailable ? err : unavailable((err as Error).message);
    }
  }
  await withDpu(ctx, conf.dpu, async (dpus) => {
    if (conf.ipam) {
      // SPEC: a plugin that delegates ADD work must ask the delegate's STATUS and report its error as its own.
      const call = ipamCall({ containerId: '', ifname: '', rawConfig: req.rawConfig, cniPath: req.env.path, ipamType: conf.ipam.type }, '', req.env.argsRaw, req.cniVersion);
      try {
        await ctx.timer.step('ipam', () => ctx.ipam.status(call));
      } catch (err) {
        const code = (err as { code?: number }).code;
        throw code === ErrorCode.PluginNotAvailable || code === ErrorCode.PluginNotAvailableLimitedConnectivity ? err : unavailable((err as Error).message);
      }
    }
    // Every configured DPU is asked; the report names each one that is not usable.
    const problems: string[] = [];
    for (const { key, dpu } of configuredDpus(conf)) {
      const client = dpus.get(dpu);
      try {
        await ctx.timer.step(key === undefined ? 'dpu' : `dpu:${key}`, () => client.status());
      } catch (err) {
        // The daemon's own code 50 already names the DPU and what failed.
        const own = err instanceof CniError && err.code === ErrorCode.PluginNotAvailable;
        problems.push(own ? (err as Error).message : `DPU ${client.target}${key === undefined ? '' : ` (dpus.${key})`} is not usable: ${(err as Error).message}`);
      }
    }
    if (problems.length) throw unavailable(problems.join('; '));
  });
}
