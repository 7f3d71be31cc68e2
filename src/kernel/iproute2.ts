import { randomBytes } from 'node:crypto';
import type { CniIpConfig, CniRoute } from '../cni/types';
import { encodeBatchLine } from './iproute2-batch';
import { CommandError, runChecked } from './exec';
import type { CommandRunner } from '../util/command-runner';
import { KernelError } from './errors';
import type { VfAdminRecord } from '../model/vf';

export interface LinkInfo {
  name: string;
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
}

export interface AddressInfo {
  address: string;
}

/** A link and the device it belongs to, as the kernel reports it (`ip -d`): a VF's parent is its PCI function. */
export interface LinkDevice {
  name: string;
  ifindex: number;
  parentBus?: string;
  parentDev?: string;
  /** A veth's peer, when it is in another namespace: that namespace's id as seen from this one, and its ifindex. */
  peer?: { netnsId: number; ifindex: number };
}

interface IpJsonLink {
  ifindex: number;
  ifname: string;
  parentbus?: string;
  parentdev?: string;
  link_index?: number;
  link_netnsid?: number;
  address?: string;
  mtu: number;
  flags?: string[];
  vfinfo_list?: IpJsonVf[];
}

interface IpJsonVf {
  vf: number;
  address?: string;
  mac?: string;
  vlan_list?: Array<{ vlan?: number; qos?: number }>;
  spoofchk?: boolean;
  trust?: boolean;
  link_state?: string;
  rate?: { max_tx?: number; min_tx?: number };
}

interface IpJsonAddr {
  local: string;
  prefixlen: number;
  scope?: string;
}

/** A link in a container as CHECK compares it: its state, its addresses (CIDR) and its main-table routes. */
export interface InterfaceState {
  link: LinkInfo;
  addresses: string[];
  routes: Array<{ dst: string; gateway?: string }>;
}

function toLinkInfo(l: IpJsonLink): LinkInfo {
  return { name: l.ifname, ifindex: l.ifindex, mac: (l.address ?? '').toLowerCase(), mtu: l.mtu, up: (l.flags ?? []).includes('UP') };
}

/** This process's own network namespace: where VFs come back to. */
export const HOST_NETNS = `/proc/${process.pid}/ns/net`;

export function temporaryName(): string {
  return `dpuo${randomBytes(4).toString('hex')}`;
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text || '[]') as T;
  } catch {
    throw new KernelError('io', `cannot parse "ip -j" output for ${what}`);
  }
}

/** `ip -d -j link show` output (of the one show command in a batch). */
export function parseLinkDevices(text: string): LinkDevice[] {
  return parseJson<IpJsonLink[]>(text.trim(), 'links').map((l) => ({
    name: l.ifname, ifindex: l.ifindex, parentBus: l.parentbus, parentDev: l.parentdev,
    peer: l.link_netnsid !== undefined && l.link_index !== undefined ? { netnsId: l.link_netnsid, ifindex: l.link_index } : undefined,
  }));
}

function ipFamilyFlag(address: string): string {
  return address.includes(':') ? '-6' : '-4';
}

/** Link, address and route operations through iproute2, in this or another network namespace. */
export class LinkOps {
  constructor(private readonly runner: CommandRunner) {}

  /** `ip ARGS`, entered into netns when given (a path such as /run/netns/x or /proc/PID/ns/net). */
  private ip(netns: string | undefined, args: string[], input?: string) {
    return netns ? runChecked(this.runner, 'nsenter', [`--net=${netns}`, 'ip', ...args], { input }) : runChecked(this.runner, 'ip', args, { input });
  }

  /** Names of the links in this process's namespace: read from /proc, no process started. */
  hostNames(): Set<string> {
    return this.runner.hostNetdevs();
  }

  /** One link by name, or undefined if there is none by that name. */
  async linkOf(name: string, netns?: string): Promise<LinkInfo | undefined> {
    try {
      const r = await this.ip(netns, ['-j', 'link', 'show', 'dev', name]);
      const l = parseJson<IpJsonLink[]>(r.stdout, name)[0];
      return l ? toLinkInfo(l) : undefined;
    } catch (err) {
      if (err instanceof KernelError && err.kind === 'not-found') return undefined;
      throw err;
    }
  }

  /**
   * A link with its addresses and its main-table routes of both families, in one process: `addr show` prints
   * the link's flags, MAC and MTU with its addresses; `route show table all` covers IPv4 and IPv6 at once.
   * Undefined if there is no link by that name.
   */
  async interfaceState(ifname: string, netns: string): Promise<InterfaceState | undefined> {
    let out: string;
    try {
      out = await this.batch(netns, [['addr', 'show', 'dev', ifname], ['route', 'show', 'table', 'all', 'dev', ifname]], ['-j']);
    } catch (err) {
      if (err instanceof KernelError && err.kind === 'not-found') return undefined;
      throw err;
    }
    const [addrLine = '[]', routeLine = '[]'] = out.split('\n').filter((l) => l.trim() !== '');
    const link = parseJson<Array<IpJsonLink & { addr_info?: IpJsonAddr[] }>>(addrLine, `${ifname} addresses`)[0];
    if (!link) return undefined;
    const routes = parseJson<Array<{ dst: string; gateway?: string; table?: string; type?: string }>>(routeLine, `${ifname} routes`);
    return {
      link: toLinkInfo(link),
      addresses: (link.addr_info ?? []).filter((a) => a.scope !== 'link' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`),
      // Main-table routes print no table; local, broadcast and multicast entries are the kernel's own.
      routes: routes.filter((r) => r.table === undefined && (r.type === undefined || r.type === 'unicast')).map((r) => ({ dst: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}) })),
    };
  }

  async listLinkDevices(netns?: string): Promise<LinkDevice[]> {
    const r = await this.ip(netns, ['-d', '-j', 'link', 'show']);
    return parseLinkDevices(r.stdout);
  }

  /** Moves a link into netns under a new name. */
  async moveToNetns(name: string, netns: string, newName: string, fromNetns?: string): Promise<void> {
    await this.ip(fromNetns, ['link', 'set', 'dev', name, 'netns', netns, 'name', newName]);
  }

  /**
   * Runs several ip commands (argv each) with global options, in one `ip -batch` process when every word can
   * be encoded for iproute2's batch reader, else one process per command. Stops at the first failure.
   * Returns what the commands printed.
   */
  async batch(netns: string | undefined, cmds: readonly string[][], globalOpts: readonly string[] = []): Promise<string> {
    if (cmds.length === 0) return '';
    const lines = cmds.map(encodeBatchLine);
    try {
      if (lines.every((l): l is string => l !== undefined)) {
        return (await this.ip(netns, [...globalOpts, '-batch', '-'], lines.join('\n') + '\n')).stdout;
      }
      let out = '';
      for (const argv of cmds) out += (await this.ip(netns, [...globalOpts, ...argv])).stdout;
      return out;
    } catch (err) {
      if (err instanceof CommandError) throw new KernelError(err.kind, `configuring the interface failed: ${err.result.stderr.trim()}`);
      throw err;
    }
  }

  /**
   * Makes the kernel announce the interface's addresses when it comes up or changes MAC (gratuitous ARP,
   * unsolicited NA), so peers drop neighbour entries of an earlier holder of the address. One process
   * writes both sysctls; the ifname is a path component here, never shell text. Survives a rename.
   */
  async announceOnUp(netns: string, ifname: string): Promise<string | undefined> {
    const files = [`/proc/sys/net/ipv4/conf/${ifname}/arp_notify`, `/proc/sys/net/ipv6/conf/${ifname}/ndisc_notify`];
    const r = await this.runner.run('nsenter', [`--net=${netns}`, 'tee', ...files], { input: '1\n' });
    // IPv6 may be disabled in the container: then only its file fails.
    return r.exitCode === 0 ? undefined : r.stderr.trim() || `tee exited ${r.exitCode}`;
  }

  /**
   * Configures the VF in the container (see InterfaceSetup) and returns the link as the kernel then shows it.
   * Stops at the first failure; a rename onto a name in use is an 'exists' KernelError.
   */
  async configureInterface(netns: string, setup: InterfaceSetup): Promise<LinkDevice | undefined> {
    const shown = await this.batch(netns, [...interfaceSetupLines(setup), ['link', 'show', 'dev', setup.ifname]], ['-d', '-j']);
    return parseLinkDevices(shown).find((l) => l.name === setup.ifname);
  }

  /** Takes a VF that came back to the host down and gives it its original name, MAC and MTU. */
  async restoreInHost(hostName: string, original: { name: string; mac: string; mtu: number }): Promise<void> {
    const cmds = [['link', 'set', 'dev', hostName, 'down']];
    if (hostName !== original.name) cmds.push(['link', 'set', 'dev', hostName, 'name', original.name]);
    cmds.push(['link', 'set', 'dev', original.name, 'address', original.mac, 'mtu', String(original.mtu)]);
    await this.batch(undefined, cmds);
  }

  async vfAdmin(pf: string, vfIndex: number): Promise<VfAdminRecord> {
    const r = await this.ip(undefined, ['-j', 'link', 'show', 'dev', pf]);
    const vf = parseJson<IpJsonLink[]>(r.stdout, pf)[0]?.vfinfo_list?.find((v) => v.vf === vfIndex);
    if (!vf) return {};
    const vlan = vf.vlan_list?.[0];
    const onOff = (b: boolean | undefined) => (b === undefined ? undefined : b ? 'on' : 'off');
    return {
      mac: vf.address ?? vf.mac,
      vlan: vlan?.vlan ?? 0,
      vlanQoS: vlan?.qos ?? 0,
      spoofchk: onOff(vf.spoofchk),
      trust: onOff(vf.trust),
      linkState: vf.link_state as VfAdminRecord['linkState'],
      minTxRate: vf.rate?.min_tx,
      maxTxRate: vf.rate?.max_tx,
    };
  }

  async setVfAdmin(pf: string, vfIndex: number, s: VfAdminRecord): Promise<void> {
    const args: string[] = [];
    if (s.mac !== undefined) args.push('mac', s.mac);
    if (s.vlan !== undefined) args.push('vlan', String(s.vlan), ...(s.vlanQoS !== undefined ? ['qos', String(s.vlanQoS)] : []));
    if (s.spoofchk !== undefined) args.push('spoofchk', s.spoofchk);
    if (s.trust !== undefined) args.push('trust', s.trust);
    if (s.linkState !== undefined) args.push('state', s.linkState);
    if (s.minTxRate !== undefined) args.push('min_tx_rate', String(s.minTxRate));
    if (s.maxTxRate !== undefined) args.push('max_tx_rate', String(s.maxTxRate));
    if (args.length === 0) return;
    try {
      await this.ip(undefined, ['link', 'set', 'dev', pf, 'vf', String(vfIndex), ...args]);
    } catch (err) {
      throw new KernelError(err instanceof CommandError ? err.kind : 'io', `setting VF ${vfIndex} admin attributes on PF ${pf} failed: ${err instanceof CommandError ? err.result.stderr.trim() : String(err)}`);
    }
  }
}

/** What ADD gives the VF in the container: its name, MAC, MTU, addresses and routes (like ipam.ConfigureIface). */
export interface InterfaceSetup {
  from: string;
  ifname: string;
  mac?: string;
  mtu: number;
  ips: CniIpConfig[];
  routes: CniRoute[];
}

/** The routes of a setup with their gateways: a route without one takes the first gateway of its family from ips. */
export function setupRoutes(p: Pick<InterfaceSetup, 'ips' | 'routes'>): Array<{ dst: string; gw?: string }> {
  const gateways = new Map<string, string>();
  for (const ip of p.ips) if (ip.gateway && !gateways.has(ipFamilyFlag(ip.address))) gateways.set(ipFamilyFlag(ip.address), ip.gateway);
  return p.routes.map((r) => {
    const gw = r.gw ?? gateways.get(ipFamilyFlag(r.dst));
    return { dst: r.dst, ...(gw ? { gw } : {}) };
  });
}

/**
 * ip commands for a setup. Addresses go on before the link comes up so that the announcement on link up
 * (arp_notify, ndisc_notify) carries them; routes need the link up.
 */
export function interfaceSetupLines(p: InterfaceSetup): string[][] {
  const dev = p.ifname;
  const cmds: string[][] = [];
  if (p.from !== dev) cmds.push(['link', 'set', 'dev', p.from, 'name', dev]);
  if (p.mac) cmds.push(['link', 'set', 'dev', dev, 'address', p.mac]);
  cmds.push(['link', 'set', 'dev', dev, 'mtu', String(p.mtu)]);
  for (const ip of p.ips) cmds.push(['addr', 'add', ip.address, 'dev', dev, ...(ip.address.includes(':') ? ['nodad'] : [])]);
  cmds.push(['link', 'set', 'dev', dev, 'up']);
  for (const r of setupRoutes(p)) cmds.push(['route', 'add', r.dst, ...(r.gw ? ['via', r.gw] : []), 'dev', dev]);
  return cmds;
}
