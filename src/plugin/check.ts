import { CniError, ErrorCode } from '../cni/errors';
import type { CniInterface, CniIpConfig, CniRoute } from '../cni/types';
import { type Context, ipamCall, loadRecord, recordedDpuClient, withDpu } from './lifecycle';
import { vfFunctionMismatch, wantsRates } from '../dpu/vf-function';
import { dpuOfRecord } from './dpu-client';

function fail(msg: string): CniError {
  return new CniError(ErrorCode.CheckFailed, msg);
}

/** CHECK: the interface in the container matches prevResult, IPAM agrees, and the DPU still has the port. */
export async function cmdCheck(ctx: Context): Promise<void> {
  const { conf, req, state, links, timer } = ctx;
  const { containerId, ifname, netns } = req.env;
  const prev = conf.prevResult;
  if (!prev) throw new CniError(ErrorCode.InvalidNetworkConfig, 'invalid network config: prevResult: CHECK needs the result of ADD in prevResult');
  state.ensure();
  const att = loadRecord(ctx, containerId, ifname);
  // Not code 3: that tells the runtime nothing needs cleaning up, while a VF and an address may still be held.
  if (!att || att.phase !== 'ready') throw fail(`no ${att ? 'completed ' : ''}attachment of ${ifname} in container ${containerId} on network ${conf.name} in ${conf.stateDir} (interrupted ADD, or stateDir lost?); DEL and ADD it again`);

  const twin = att.dpu && state.scanAttachments().records.find((o) => o !== att && !(o.containerId === containerId && o.ifname === ifname) && o.phase === 'ready' && !o.hostReleased && o.dpu?.target === att.dpu?.target && o.dpu?.representor === att.dpu?.representor);
  if (twin) throw fail(`representor ${att.dpu?.representor} on DPU ${att.dpu?.target} is also named by the record of container ${twin.containerId} (ifname ${twin.ifname}, network ${twin.network}): two attachments share it and neither is re-plugged; DEL the one that should not have it`);

  const interfaces = (prev.interfaces ?? []) as CniInterface[];
  const index = interfaces.findIndex((i) => i.name === ifname && (i.sandbox === undefined || i.sandbox === netns));
  if (index < 0) throw fail(`prevResult has no interface ${ifname} in sandbox ${netns}`);
  const expected = interfaces[index] as CniInterface;

  await withDpu(ctx, dpuOfRecord(conf, att)?.dpu, async (dpus) => {
    // One process: the link, its addresses and its routes of both families.
    const seen = await timer.step('link', () => links.interfaceState(ifname, netns));
    if (!seen) throw fail(`interface ${ifname} is missing from ${netns}`);
    const { link } = seen;
    if (expected.mac && link.mac !== expected.mac.toLowerCase()) throw fail(`interface ${ifname} has MAC ${link.mac}, expected ${expected.mac}`);
    // prevResult is the chain's final result: a later plugin (tuning) may have changed the MTU; without an mtu there, nothing to hold it to.
    if (expected.mtu !== undefined && link.mtu !== expected.mtu) throw fail(`interface ${ifname} has MTU ${link.mtu}, expected ${expected.mtu}`);
    if (!link.up) throw fail(`interface ${ifname} is down`);

    const ours = ((prev.ips ?? []) as CniIpConfig[]).filter((ip) => ip.interface === index);
    const present = new Set(seen.addresses);
    for (const ip of ours) if (!present.has(ip.address)) throw fail(`address ${ip.address} is missing from ${ifname}`);
    // Ours (from ADD) that the final result still lists: a later plugin may have dropped one on purpose.
    const listed = new Set(((prev.routes ?? []) as CniRoute[]).map((r) => `${r.dst} ${r.gw ?? ''}`));
    const ourRoutes = ((att.result?.routes ?? []) as CniRoute[]).filter((r) => listed.has(`${r.dst} ${r.gw ?? ''}`));
    // Both families in one listing: "default" is told apart by its gateway's family where it has one.
    const isV6 = (r: { dst: string; gateway?: string }) => r.dst.includes(':') || (r.gateway ?? '').includes(':');
    const table = new Set(seen.routes.map((r) => `${isV6(r) ? 6 : 4} ${r.dst}`));
    const has = (family: 4 | 6, dst: string) => table.has(`${family} ${dst}`) || (dst === 'default' && seen.routes.some((r) => r.dst === 'default' && r.gateway === undefined));
    for (const r of ourRoutes) {
      const family = r.dst.includes(':') ? 6 : 4;
      const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
      if (!has(family, dst) && !has(family, r.dst.replace(/\/(32|128)$/, ''))) throw fail(`route to ${r.dst} is missing in ${netns}`);
    }
    if (conf.ipam) {
      // The runtime's CHECK config: IPAM plugins such as static verify the prevResult in it.
      const call = ipamCall({ containerId, ifname, rawConfig: req.rawConfig, cniPath: req.env.path, ipamType: conf.ipam.type }, netns, req.env.argsRaw, req.cniVersion);
      await timer.step('ipam', () => ctx.ipam.check(call));
    }
    const client = att.dpu ? recordedDpuClient(ctx, att, dpus) : undefined;
    if (client && att.dpu) {
      const ovn = att.dpu.lsp ? { lsp: att.dpu.lsp, ...(expected.mac ? { mac: expected.mac.toLowerCase(), ips: ours.map((ip) => ip.address.replace(/\/\d+$/, '')) } : {}) } : {};
      const plug = { network: att.network, vni: att.vni, containerId, ifname, netns, representor: att.dpu.representor, mtu: att.mtu, ...ovn };
      await timer.step('dpu', () => client.check(plug));
    }
    if (client && att.vfFunction) {
      const fn = att.vfFunction;
      const facts = await timer.step('vfFunction', () => client.facts({ representor: att.dpu?.representor ?? '', pfIndex: att.vf.pfIndex, vfIndex: att.vf.index, vfFunction: { rates: wantsRates(fn.applied) } }));
      const now = facts.vfFunction;
      if (!now || now.target.path !== fn.target.path) throw fail(`DPU ${client.target}: the VF function of ${att.dpu?.representor ?? `VF ${att.vf.index}`} (${fn.target.path}) is gone`);
      const mismatch = vfFunctionMismatch(fn.target, fn.applied, now.values);
      if (mismatch) throw fail(`DPU ${client.target}: VF function of ${att.dpu?.representor ?? `VF ${att.vf.index}`}: ${mismatch}`);
    }
  });
}
