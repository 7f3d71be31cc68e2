/**
 * The host link operations of ADD and DEL over rtnetlink, in the plugin's or the daemon's own process: no `ip` or
 * `nsenter` child (each fork copies the whole address space; in the daemon on its busy main thread). What is not
 * run on every ADD/DEL (CHECK's interface state, VF admin settings) stays with `ip` in LinkOps.
 * Each operation opens a NETLINK_ROUTE socket inside the namespace it acts in and closes it at the end.
 */
import { closeSync, openSync } from 'node:fs';
import { KernelError, type KernelErrorKind } from './errors';
import { type InterfaceSetup, type LinkDevice, type LinkInfo, LinkOps, setupRoutes } from './iproute2';
import type { RtnetlinkAddon } from './rtnetlink-addon';
import {
  addAddress, addRoute, dumpLinks, getLinkByIndex, getLinkByName, IFF_UP, type LinkChange, type Message, type NetlinkLink,
  NLMSG_DONE, NLMSG_ERROR, parseAck, parseLink, RTM_NEWLINK, setLink, splitMessages,
} from './rtnetlink-message';
import type { CommandRunner } from '../util/command-runner';

/** How long one request may wait for the kernel (RTNL held by someone else). */
const TIMEOUT_MS = 5000;

const ERRNO_KIND: Record<number, KernelErrorKind> = {
  1: 'permission', 13: 'permission', 2: 'not-found', 3: 'not-found', 19: 'not-found', 17: 'exists', 16: 'busy',
  22: 'invalid', 34: 'invalid', 95: 'invalid', 97: 'invalid', 11: 'timeout', 110: 'timeout',
};

export function kindOfErrno(errno: number): KernelErrorKind {
  return ERRNO_KIND[errno] ?? 'io';
}

/** A kernel answer that was an error: errno, what the kernel said, and what was being done. */
export class NetlinkError extends KernelError {
  constructor(readonly errno: number, what: string, text: string) {
    super(kindOfErrno(errno), `${what} failed: ${text}`);
    this.name = 'NetlinkError';
  }
}

let seq = Math.floor(Math.random() * 0x7fffffff);

/** One NETLINK_ROUTE socket in a namespace, for one operation. */
class Session {
  private constructor(private readonly nl: RtnetlinkAddon, private readonly fd: number) {}

  static async open<T>(nl: RtnetlinkAddon, netns: string | undefined, what: string, body: (s: Session) => Promise<T>): Promise<T> {
    const nsFd = netns ? openNetns(netns, what) : -1;
    let fd: number;
    try {
      fd = await call(what, () => nl.open(nsFd));
    } finally {
      if (nsFd >= 0) closeSync(nsFd);
    }
    try {
      return await body(new Session(nl, fd));
    } finally {
      nl.close(fd);
    }
  }

  /** Sends one request (built for the sequence number given) and returns the messages answering it; throws on an error answer. */
  async request(build: (seq: number) => Buffer, what: string): Promise<Message[]> {
    seq = (seq + 1) & 0x7fffffff;
    const mine = seq;
    const request = encode(() => build(mine), what);
    const answer = splitMessages(await call(what, () => this.nl.transact(this.fd, request, TIMEOUT_MS))).filter((m) => m.seq === mine);
    for (const m of answer) {
      if (m.type !== NLMSG_ERROR) continue;
      const ack = parseAck(m);
      if (ack.errno !== 0) throw new NetlinkError(ack.errno, what, `${this.nl.strerror(ack.errno)}${ack.extack ? ` (${ack.extack})` : ''}`);
    }
    return answer.filter((m) => m.type !== NLMSG_ERROR && m.type !== NLMSG_DONE);
  }

  async link(name: string, what = `looking up link ${name}`): Promise<NetlinkLink> {
    const m = (await this.request((s) => getLinkByName(s, name), what)).find((x) => x.type === RTM_NEWLINK);
    if (!m) throw new KernelError('not-found', `${what} failed: the kernel answered without the link`);
    return parseLink(m);
  }

  async linkByIndex(index: number, what: string): Promise<NetlinkLink | undefined> {
    const m = (await this.request((s) => getLinkByIndex(s, index), what)).find((x) => x.type === RTM_NEWLINK);
    return m ? parseLink(m) : undefined;
  }

  async links(what: string): Promise<NetlinkLink[]> {
    return (await this.request(dumpLinks, what)).filter((m) => m.type === RTM_NEWLINK).map(parseLink);
  }

  async set(index: number, change: LinkChange, what: string): Promise<void> {
    await this.request((s) => setLink(s, index, change), what);
  }
}

function openNetns(path: string, what: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KernelError(e.code === 'ENOENT' ? 'not-found' : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission' : 'io', `${what} failed: cannot open network namespace ${path}: ${e.message}`);
  }
}

/** A system call of the addon that failed (it throws, or rejects with, an Error whose code is the errno). */
async function call<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const errno = Number((err as { code?: unknown }).code);
    if (Number.isInteger(errno) && errno > 0) throw new NetlinkError(errno, what, (err as Error).message);
    throw err;
  }
}

function toLinkInfo(l: NetlinkLink): LinkInfo {
  return { name: l.name, ifindex: l.index, mac: l.mac, mtu: l.mtu, up: (l.flags & IFF_UP) !== 0 };
}

/** As `ip -d -j link show` reports it: a peer only when the kernel names the peer's namespace (a veth's). */
export function toLinkDevice(l: NetlinkLink): LinkDevice {
  return {
    name: l.name, ifindex: l.index, parentBus: l.parentBus, parentDev: l.parentDev,
    peer: l.link && l.linkNetnsId !== undefined && l.linkNetnsId >= 0 ? { netnsId: l.linkNetnsId, ifindex: l.link } : undefined,
  };
}

/** Only names of this form are written into a /proc/sys/net path: no "/", no "." or "..". */
const SYSCTL_SAFE_NAME = /^(?!\.\.?$)[^/\0]{1,15}$/;

/** LinkOps whose ADD and DEL steps speak rtnetlink through the addon; the rest is LinkOps' `ip`. */
export class NetlinkLinkOps extends LinkOps {
  constructor(runner: CommandRunner, private readonly nl: RtnetlinkAddon) {
    super(runner);
  }

  override async linkOf(name: string, netns?: string): Promise<LinkInfo | undefined> {
    return Session.open(this.nl, netns, `looking up link ${name}`, async (s) => {
      try {
        return toLinkInfo(await s.link(name));
      } catch (err) {
        if (err instanceof KernelError && err.kind === 'not-found') return undefined;
        throw err;
      }
    });
  }

  override async listLinkDevices(netns?: string): Promise<LinkDevice[]> {
    return Session.open(this.nl, netns, 'listing links', async (s) => (await s.links(`listing links${netns ? ` in ${netns}` : ''}`)).map(toLinkDevice));
  }

  override async moveToNetns(name: string, netns: string, newName: string, fromNetns?: string): Promise<void> {
    const what = `moving ${name} into network namespace ${netns} as ${newName}`;
    const target = openNetns(netns, what);
    try {
      await Session.open(this.nl, fromNetns, what, async (s) => s.set((await s.link(name, what)).index, { netnsFd: target, name: newName }, what));
    } finally {
      closeSync(target);
    }
  }

  override async announceOnUp(netns: string, ifname: string): Promise<string | undefined> {
    if (!SYSCTL_SAFE_NAME.test(ifname)) return `interface name ${JSON.stringify(ifname)} cannot be a /proc/sys path component`;
    const files = [`/proc/sys/net/ipv4/conf/${ifname}/arp_notify`, `/proc/sys/net/ipv6/conf/${ifname}/ndisc_notify`];
    const nsFd = openNetns(netns, 'enabling arp_notify/ndisc_notify');
    try {
      const failed = files.map((f) => [f, this.nl.writeInNetns(nsFd, f, Buffer.from('1\n'))] as const).filter(([, errno]) => errno !== 0);
      // IPv6 may be disabled in the container: then only its file fails.
      return failed.length === 0 ? undefined : failed.map(([f, errno]) => `${f}: ${this.nl.strerror(errno)}`).join('; ');
    } finally {
      closeSync(nsFd);
    }
  }

  override async configureInterface(netns: string, p: InterfaceSetup): Promise<LinkDevice | undefined> {
    return Session.open(this.nl, netns, 'configuring the interface', async (s) => {
      const fail = (what: string) => `configuring the interface: ${what}`;
      const index = (await s.link(p.from, fail(`looking up ${p.from}`))).index;
      if (p.from !== p.ifname) await s.set(index, { name: p.ifname }, fail(`renaming ${p.from} to ${p.ifname}`));
      if (p.mac) await s.set(index, { mac: p.mac }, fail(`setting the MAC address of ${p.ifname} to ${p.mac}`));
      await s.set(index, { mtu: p.mtu }, fail(`setting the MTU of ${p.ifname} to ${p.mtu}`));
      for (const ip of p.ips) await s.request((q) => addAddress(q, index, ip.address), fail(`adding address ${ip.address} to ${p.ifname}`));
      await s.set(index, { up: true }, fail(`setting ${p.ifname} up`));
      for (const r of setupRoutes(p)) {
        const what = fail(`adding route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} on ${p.ifname}`);
        await s.request((q) => addRoute(q, index, r.dst, r.gw), what);
      }
      const shown = await s.linkByIndex(index, fail(`reading ${p.ifname} back`));
      return shown ? toLinkDevice(shown) : undefined;
    });
  }

  override async restoreInHost(hostName: string, original: { name: string; mac: string; mtu: number }): Promise<void> {
    const what = `restoring ${hostName} as ${original.name}`;
    await Session.open(this.nl, undefined, what, async (s) => {
      const index = (await s.link(hostName, what)).index;
      await s.set(index, { up: false }, `${what}: setting it down`);
      if (hostName !== original.name) await s.set(index, { name: original.name }, `${what}: renaming it`);
      await s.set(index, { mac: original.mac, mtu: original.mtu }, `${what}: setting MAC ${original.mac} and MTU ${original.mtu}`);
    });
  }
}

/** A request that cannot be encoded (an address, route or MAC that is not one): an 'invalid' KernelError naming it. */
function encode(build: () => Buffer, what: string): Buffer {
  try {
    return build();
  } catch (err) {
    throw new KernelError('invalid', `${what} failed: ${(err as Error).message}`);
  }
}
