import { CniError, ErrorCode } from '../cni/errors';
import type { CniInterface, CniIpConfig, CniRoute } from '../cni/types';
import { type Context, ipamCall, loadRecord, withDpu } from './context';

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
  if (!att || att.phase !== 'ready') throw new CniError(ErrorCode.UnknownContainer, `no attachment of ${ifname} in container ${containerId} on network ${conf.name} (was ADD run, or was ${conf.stateDir} lost?)`);

  const interfaces = (prev.interfaces ?? []) as CniInterface[];
  const index = interfaces.findIndex((i) => i.name === ifname && (i.sandbox === undefined || i.sandbox === netns));
  if (index < 0) throw fail(`prevResult has no interface ${ifname} in sandbox ${netns}`);
  const expected = interfaces[index] as CniInterface;

  await withDpu(ctx, async (client) => {
    const link = await timer.step('link', () => links.findLink(ifname, netns));
    if (!link) throw fail(`interface ${ifname} is missing from ${netns}`);
    if (expected.mac && link.mac !== expected.mac.toLowerCase()) throw fail(`interface ${ifname} has MAC ${link.mac}, expected ${expected.mac}`);
    if (link.mtu !== att.mtu) throw fail(`interface ${ifname} has MTU ${link.mtu}, expected ${att.mtu}`);
    if (!link.up) throw fail(`interface ${ifname} is down`);

    const ours = ((prev.ips ?? []) as CniIpConfig[]).filter((ip) => ip.interface === index);
    const present = new Set(await links.addresses(ifname, netns));
    for (const ip of ours) if (!present.has(ip.address)) throw fail(`address ${ip.address} is missing from ${ifname}`);
    for (const family of ['-4', '-6'] as const) {
      const wanted = ((att.result?.routes ?? []) as CniRoute[]).filter((r) => (family === '-6') === r.dst.includes(':'));
      if (wanted.length === 0) continue;
      const table = new Set((await links.routes(ifname, netns, family)).map((r) => r.dst));
      for (const r of wanted) {
        const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
        if (!table.has(dst) && !table.has(r.dst.replace(/\/(32|128)$/, ''))) throw fail(`route to ${r.dst} is missing in ${netns}`);
      }
    }
    if (att.ipamType) {
      await timer.step('ipam', () => ctx.ipam.check(ipamCall({ ...att, ipamType: att.ipamType as string }, netns, req.env.argsRaw, req.cniVersion)));
    }
    if (client && att.dpu && conf.dpu) {
      const plug = { network: att.network, vni: att.vni, containerId, ifname, netns, representor: att.dpu.representor, mtu: att.mtu };
      await timer.step('dpu', () => client.check(plug));
    }
  });
}
