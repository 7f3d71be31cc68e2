import { hostname } from 'node:os';
import { CniError, ErrorCode } from '../cni/errors';
import type { CniInterface, CniResult } from '../cni/types';
import { requireVfSource } from '../config/load';
import type { DpuConfig } from '../config/schema';
import { representorName } from '../dpu/api';
import { temporaryName } from '../kernel/iproute2';
import { KernelError } from '../kernel/errors';
import { type AllocationOwner, type Attachment, claimIsLive, InvalidRecordError, isInFlight } from '../store/attachments';
import { selfIdentity } from '../kernel/process';
import { recordedConfig } from '../store/records';
import type { DpuFacts } from '../dpu/api';
import { checkUnderlayMtu } from '../dpu/mtu';
import { type DpuClients, dpuForPf } from './dpu-client';
import type { VfInfo } from '../kernel/sysfs';
import { faultPoint } from '../util/fault';
import { UndoStack } from '../util/undo';
import { hostBootId, hostNetnsIdentity, netnsIdentity } from '../kernel/netns';
import { returnVfToHost, usableNetns } from '../kernel/vf';
import { type Context, ipamCall, loadRecord, refuseInFlight, withDpu } from './lifecycle';
import { releaseAttachment } from './release';
import { applyVfSettings, wantsDpuFunction } from './vf-settings';
import { plugOwned } from './port-owner';

/**
 * A claim a new ADD may take over when the pool is exhausted: its container's namespace is gone and the
 * VF is back in the host namespace (the kernel returns physical devices when a namespace dies), and no
 * live process is still adding it. The stale attachment is released first, like GC would.
 */
async function reclaimStale(ctx: Context, pci: string, dpus: DpuClients): Promise<boolean> {
  const { state, log } = ctx;
  let owner: AllocationOwner | undefined;
  let att: Attachment | undefined;
  try {
    owner = state.readAllocation(pci);
    if (!owner) return false;
    att = state.loadAttachment(owner.containerId, owner.ifname);
  } catch (err) {
    if (err instanceof InvalidRecordError) return false;
    throw err;
  }
  if (!att) {
    if (claimIsLive(owner)) return false; // an ADD between its claim and its record
    state.release(pci, owner); // a claim whose ADD died before recording anything
  } else {
    if (att.network !== ctx.conf.name || att.vf.pci !== pci || isInFlight(att) || usableNetns(att, '') !== undefined) return false;
    try {
      await releaseAttachment(ctx, att, '', dpus);
    } catch (err) {
      // The host side (IPs, VF, claim) is released before the DPU; a failed unplug stays for DEL/GC to retry.
      log.warn({ vf: pci, containerId: att.containerId, err: (err as Error).message }, 'reclaiming a stale claim: DPU port left for GC');
    }
  }
  log.info({ vf: pci, containerId: owner.containerId, ifname: owner.ifname }, 'reclaimed the VF of a container whose namespace is gone');
  return true;
}

/**
 * The requested VF, or the first VF that is free and present in the host namespace on the first PF of pf that
 * has one, claimed atomically.
 */
async function allocateVf(ctx: Context, present: Set<string>, dpus: DpuClients): Promise<{ vf: VfInfo; link: string }> {
  const { conf, state, req } = ctx;
  const owner = { containerId: req.env.containerId, ifname: req.env.ifname, network: conf.name };
  if (conf.resolvedDeviceId) {
    const vf = ctx.sysfs.vfByPci(conf.resolvedDeviceId, conf.pfIndex);
    if (conf.pfs.length && !conf.pfs.includes(vf.pfName)) {
      throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: deviceID: VF ${vf.pci} belongs to PF ${vf.pfName}, not to pf ${conf.pfs.join(', ')}`);
    }
    const link = vf.netdev !== undefined && present.has(vf.netdev) ? vf.netdev : undefined;
    if (!state.tryAllocate(vf.pci, owner) && !(link && (await reclaimStale(ctx, vf.pci, dpus)) && state.tryAllocate(vf.pci, owner))) {
      const holder = state.allocationOwner(vf.pci);
      throw new CniError(ErrorCode.VfInUse, `VF ${vf.pci} is already in use by container ${holder?.containerId ?? '?'} (${holder?.ifname ?? '?'})`);
    }
    if (!link) {
      state.release(vf.pci, owner);
      throw new CniError(ErrorCode.VfNotFound, `VF ${vf.pci} has no netdev${vf.netdev ? ` (${vf.netdev})` : ''} in the host network namespace: is it bound to its network driver and not in another container?`);
    }
    return { vf, link };
  }
  const vfs = conf.pfs.flatMap((pf) => ctx.sysfs.listVfs(pf, conf.pfs.length === 1 ? conf.pfIndex : undefined));
  const taken = new Set(state.listAllocations());
  const inHost = vfs.flatMap((vf) => {
    const link = vf.netdev !== undefined && present.has(vf.netdev) ? vf.netdev : undefined;
    return link ? [{ vf, link }] : [];
  });
  for (const c of inHost) if (!taken.has(c.vf.pci) && state.tryAllocate(c.vf.pci, owner)) return c;
  // Exhausted: a claim of a container that died without DEL holds a VF that is back in the host namespace.
  for (const c of inHost) if (taken.has(c.vf.pci) && (await reclaimStale(ctx, c.vf.pci, dpus)) && state.tryAllocate(c.vf.pci, owner)) return c;
  throw new CniError(ErrorCode.NoFreeVf, `no free VF on ${conf.pfs.length > 1 ? 'PFs' : 'PF'} ${conf.pfs.join(', ')}: all ${vfs.length} VFs are allocated or not in the host namespace (see ${state.allocationsDir})`);
}

function buildResult(ctx: Context, iface: CniInterface, ipam: CniResult | undefined): CniResult {
  const prev = ctx.conf.prevResult;
  const interfaces = [...((prev?.interfaces as CniInterface[] | undefined) ?? [])];
  const index = interfaces.push(iface) - 1;
  const result: CniResult = { cniVersion: ctx.req.cniVersion, interfaces };
  const ips = [...((prev?.ips as CniResult['ips']) ?? []), ...(ipam?.ips ?? []).map((ip) => ({ ...ip, interface: index }))];
  const routes = [...((prev?.routes as CniResult['routes']) ?? []), ...(ipam?.routes ?? [])];
  if (ips.length) result.ips = ips;
  if (routes.length) result.routes = routes;
  const dns = ipam?.dns && Object.keys(ipam.dns).length ? ipam.dns : (prev?.dns as CniResult['dns']);
  if (dns) result.dns = dns;
  return result;
}

/** The DPU this ADD will most likely plug on (its deviceID's PF, else the first PF's), to connect to early. */
function likelyDpu(ctx: Context): DpuConfig | undefined {
  const { conf } = ctx;
  let pf = conf.pfs[0];
  if (conf.resolvedDeviceId && conf.dpus) {
    try {
      pf = ctx.sysfs.vfByPci(conf.resolvedDeviceId).pfName;
    } catch {
      // allocateVf reports it
    }
  }
  return (pf === undefined ? undefined : dpuForPf(conf, pf)?.dpu) ?? conf.dpu;
}

/** OVN mode: what the logical port's addresses and port_security are made of (the VF's MAC and IPAM's addresses). */
function ovnAddresses(dpu: DpuConfig, mac: string, ipam: CniResult | undefined): { mac?: string; ips?: string[]; host?: string } {
  if (dpu.controlPlane !== 'ovn') return {};
  return { mac: mac.toLowerCase(), ips: (ipam?.ips ?? []).map((ip) => ip.address.replace(/\/\d+$/, '')), host: hostname() };
}

export async function cmdAdd(ctx: Context): Promise<CniResult> {
  const { conf, req, state, links, timer, log } = ctx;
  const { env } = req;
  requireVfSource(conf);
  // Refused before anything is taken: the record could not be written later.
  const recorded = recordedConfig(req.rawConfig);
  if (netnsIdentity(env.netns) === hostNetnsIdentity()) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS ${env.netns} is the plugin's own (host) network namespace, not a container's`);
  }
  state.ensure();
  const existing = loadRecord(ctx, env.containerId, env.ifname);
  if (existing?.phase === 'ready') {
    throw new CniError(ErrorCode.VfInUse, `container ${env.containerId} already has ${env.ifname} attached (VF ${existing.vf.pci}); DEL it first`);
  }
  if (existing) refuseInFlight(existing, 'ADD');
  return withDpu(ctx, likelyDpu(ctx), async (dpus) => {
    if (existing) await timer.step('cleanupInterruptedAdd', () => releaseAttachment(ctx, existing, env.netns, dpus));
    const undo = new UndoStack(log);
    try {
      const { vf, link: listed } = await timer.step('allocate', () => allocateVf(ctx, links.hostNames(), dpus));
      undo.push('free VF allocation', () => state.release(vf.pci, { containerId: env.containerId, ifname: env.ifname }));
      // Read after the claim: a concurrent DEL may have been restoring this VF's MAC and MTU until it was taken.
      // (A reclaimed VF was also renamed back to its original name.)
      const link = await timer.step('hostLink', () => links.linkOf(ctx.sysfs.netdevOf(vf.pci) ?? listed));
      if (!link) throw new CniError(ErrorCode.TryAgainLater, `VF ${vf.pci} (${listed}) left the host network namespace while it was being claimed; try again later`);
      const dpu = dpuForPf(conf, vf.pfName);
      if (!dpu && conf.dpus) {
        throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpus: VF ${vf.pci} is on PF ${vf.pfName}, which has no entry in dpus, and there is no dpu: add "${vf.pfName}" to dpus or set dpu`);
      }
      faultPoint('add:allocated');
      const tmpName = temporaryName();
      const att: Attachment = {
        version: 1, phase: 'adding', network: conf.name, containerId: env.containerId, ifname: env.ifname,
        netns: env.netns, netnsId: netnsIdentity(env.netns), netnsBoot: hostBootId(), nodeConfig: conf.nodeConfig, owner: selfIdentity(), vni: conf.vni,
        vf: { pci: vf.pci, index: vf.index, pfName: vf.pfName, pfPci: vf.pfPci, pfIndex: vf.pfIndex, originalName: link.name, originalMac: link.mac, originalMtu: link.mtu },
        ...(dpu?.key !== undefined ? { dpuKey: dpu.key } : {}),
        tmpName, mac: conf.resolvedMac, mtu: conf.mtu, rawConfig: recorded, ipamType: conf.ipam?.type, cniPath: env.path.filter((p) => p.startsWith('/')),
      };
      if (!state.createAttachment(att)) {
        throw new CniError(ErrorCode.TryAgainLater, `another ADD of ${env.ifname} in container ${env.containerId} started meanwhile; try again later`);
      }
      undo.push('remove attachment record', () => state.removeAttachment(env.containerId, env.ifname));
      faultPoint('add:recorded');
      log.debug({ vf: vf.pci, netdev: link.name }, 'allocated VF');

      const dpuConf = dpu?.dpu;
      const client = dpuConf ? dpus.get(dpuConf) : undefined;
      const representor = dpuConf ? representorName(dpuConf.representorTemplate, vf.pfIndex, vf.index) : '';
      // Asked now, awaited where first needed: unless VF settings go to the DPU (they must precede the move), the
      // question overlaps the SSH handshake, the move and IPAM instead of adding a round trip in front of them.
      const vfFunction = wantsDpuFunction(ctx, dpuConf, client);
      const factsAsked = client && dpuConf ? timer.step('dpuFacts', () => client.facts({ representor, pfIndex: vf.pfIndex, vfIndex: vf.index, ...(vfFunction ? { vfFunction } : {}) })) : undefined;
      factsAsked?.catch(() => undefined); // a failure is reported where it is awaited
      const dpuFacts = async (): Promise<DpuFacts | undefined> => {
        if (!factsAsked || !client || !dpuConf) return undefined;
        const facts = await factsAsked;
        const vtep = facts.encap?.ip ?? dpuConf.localVtep ?? '';
        checkUnderlayMtu({ mtu: conf.mtu, localVtep: vtep, encap: facts.encap?.type ?? 'vxlan', uplink: facts.uplink, target: client.target, ovn: facts.encap !== undefined });
        return facts;
      };
      await applyVfSettings(ctx, att, vf, dpuConf, client, vfFunction ? await dpuFacts() : undefined, undo);

      // The representor joins the overlay while the VF moves and IPAM runs (static mode needs nothing they produce);
      // OVN mode needs IPAM's addresses for port_security and plugs after it. Awaited before the link comes up.
      const plugOf = (ipam: CniResult | undefined) => ({ network: conf.name, vni: conf.vni, containerId: env.containerId, ifname: env.ifname, netns: env.netns, representor, mtu: conf.mtu, ...(dpuConf ? ovnAddresses(dpuConf, conf.resolvedMac ?? link.mac, ipam) : {}) });
      const startPlug = (ipam: CniResult | undefined) => {
        if (!client || !dpuConf) return undefined;
        const plug = plugOf(ipam);
        const plugged = timer.step('dpu', () => plugOwned(client, state, plug, log).catch((err: unknown) => {
          throw err instanceof CniError ? new CniError(err.code, `binding representor ${representor} on the DPU failed: ${err.message}`, err.details) : err;
        }));
        // Rollback waits for a plug still in flight, then unplugs what it made.
        undo.push('unplug representor', async () => {
          const made = await plugged.catch(() => undefined);
          if (made) await client.unplug({ ...plug, portUuid: made.portUuid, ...(made.lsp ? { lsp: made.lsp } : {}) });
        });
        const recorded = plugged.then((made) => {
          att.dpu = { target: client.target, bridge: made.bridge, representor, portUuid: made.portUuid, ...(made.lsp ? { lsp: made.lsp } : {}), config: dpuConf };
        });
        recorded.catch(() => undefined); // reported where it is awaited (or not at all if an earlier step fails first)
        return recorded;
      };
      let plugging = dpuConf?.controlPlane === 'ovn' ? undefined : startPlug(undefined);

      await timer.step('moveVf', () => links.moveToNetns(link.name, env.netns, tmpName));
      undo.push('return VF to host', async () => {
        await returnVfToHost(ctx, att.vf, env.netns, [tmpName, env.ifname]);
      });
      faultPoint('add:vf-moved');

      // Alongside IPAM, which does not touch the link: announcements need no extra wait.
      const announce = timer.step('announce', () => links.announceOnUp(env.netns, tmpName));
      let ipamResult: CniResult | undefined;
      if (conf.ipam) {
        const call = ipamCall({ ...att, rawConfig: req.rawConfig, ipamType: conf.ipam.type }, env.netns, env.argsRaw, req.cniVersion);
        // Before ADD: a plugin that exited 0 with a result we reject still holds the address.
        undo.push('release IPAM', () => ctx.ipam.del(call));
        ipamResult = await timer.step('ipam', () => ctx.ipam.add(call)).finally(() => announce.catch(() => undefined));
        faultPoint('add:ipam-done');
      }
      const announceProblem = await announce;
      if (announceProblem) log.warn({ problem: announceProblem }, 'could not enable arp_notify/ndisc_notify: neighbours may keep a stale MAC for this address');

      // The representor joins the overlay before the link comes up, so the link-up announcement reaches peers;
      // the underlay MTU check refuses before that too.
      if (client && dpuConf) {
        await dpuFacts();
        plugging ??= startPlug(ipamResult);
        await plugging;
        faultPoint('add:dpu-plugged');
      }

      const setup = { from: tmpName, ifname: env.ifname, mac: conf.resolvedMac, mtu: conf.mtu, ips: ipamResult?.ips ?? [], routes: ipamResult?.routes ?? [] };
      const configured = await timer.step('configure', () => links.configureInterface(env.netns, setup).catch(async (err: unknown) => {
        // Only on failure: a rename onto a name the container already uses says "File exists" and nothing more.
        if (err instanceof KernelError && err.kind === 'exists' && (await links.linkOf(env.ifname, env.netns).catch(() => undefined))) {
          throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(env.ifname)}: network namespace ${env.netns} already has an interface with that name; DEL the attachment that made it, or use another ifname`);
        }
        throw err;
      }));
      // Without a parent device (the emulated testbed's veths, or a kernel that does not report one) DEL can only
      // recognise the VF by what ADD saw here.
      if (configured && configured.parentBus === undefined && configured.parentDev === undefined) {
        att.vf.linkIdentity = { ifindex: configured.ifindex, ...(configured.peer ? { peer: configured.peer } : {}) };
        state.saveAttachment(att);
      }
      faultPoint('add:configured');

      const iface: CniInterface = { name: env.ifname, mac: conf.resolvedMac ?? link.mac, mtu: conf.mtu, sandbox: env.netns, pciID: vf.pci };
      const result = buildResult(ctx, iface, ipamResult);
      att.phase = 'ready';
      att.result = result;
      state.saveAttachment(att);
      faultPoint('add:ready');
      log.info({ vf: vf.pci, dpu: att.dpu }, 'attached');
      return result;
    } catch (err) {
      await undo.run();
      throw err;
    }
  });
}
