/**
 * rtnetlink messages, built and parsed here (the native part only sends and receives bytes). Host byte order
 * is little-endian on every platform the daemon ships for (linux-x64). Numbers from linux/netlink.h,
 * linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_NEWROUTE = 24;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_NET_NS_FD = 28;
const IFLA_LINK_NETNSID = 37;
const IFLA_PARENT_DEV_NAME = 56;
const IFLA_PARENT_DEV_BUS_NAME = 57;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;

export const IFF_UP = 0x1;
export const IFA_F_NODAD = 0x2;
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

const NLMSG_HDRLEN = 16;
const align4 = (n: number) => (n + 3) & ~3;

/** An rtattr: its type and payload. */
export interface Attr {
  type: number;
  data: Buffer;
}

export const u32Attr = (type: number, v: number): Attr => {
  const data = Buffer.alloc(4);
  data.writeUInt32LE(v >>> 0);
  return { type, data };
};
export const stringAttr = (type: number, s: string): Attr => ({ type, data: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]) });

function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + a.data.length, 0);
    head.writeUInt16LE(a.type, 2);
    parts.push(head, a.data, Buffer.alloc(align4(a.data.length) - a.data.length));
  }
  return Buffer.concat(parts);
}

/** A netlink message: header, the family header (ifinfomsg, ifaddrmsg, rtmsg) and attributes. */
export function encodeMessage(type: number, flags: number, seq: number, family: Buffer, attrs: readonly Attr[] = []): Buffer {
  const body = Buffer.concat([family, Buffer.alloc(align4(family.length) - family.length), encodeAttrs(attrs)]);
  const head = Buffer.alloc(NLMSG_HDRLEN);
  head.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  head.writeUInt16LE(type, 4);
  head.writeUInt16LE(flags, 6);
  head.writeUInt32LE(seq >>> 0, 8);
  head.writeUInt32LE(0, 12);
  return Buffer.concat([head, body]);
}

/** struct ifinfomsg (16 bytes). */
export function ifinfomsg(p: { index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(p.index ?? 0, 4);
  b.writeUInt32LE(p.flags ?? 0, 8);
  b.writeUInt32LE(p.change ?? 0, 12);
  return b;
}

/** A MAC address ("02:ab:...") as bytes, or undefined if it is not one. */
export function macBytes(mac: string): Buffer | undefined {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) return undefined;
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** An IPv4 or IPv6 address as its 4 or 16 bytes, or undefined if it is neither. */
export function ipBytes(ip: string): Buffer | undefined {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) return undefined;
  let text = ip.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1].split('.').map(Number);
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** A CIDR ("10.0.0.2/24", "fd00::2/64"; a bare address is a host prefix) as family, bytes and prefix length. */
export function parseCidr(cidr: string): { family: number; bytes: Buffer; prefixLen: number } | undefined {
  const [addr, len, ...rest] = cidr.split('/');
  const bytes = ipBytes(addr);
  if (!bytes || rest.length > 0) return undefined;
  const max = bytes.length * 8;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const prefixLen = len === undefined ? max : Number(len);
  if (prefixLen > max) return undefined;
  return { family: bytes.length === 4 ? AF_INET : AF_INET6, bytes, prefixLen };
}

/** RTM_GETLINK of one link by name (index 0 and IFLA_IFNAME: the kernel looks the name up). */
export function getLinkByName(seq: number, name: string): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg(), [stringAttr(IFLA_IFNAME, name)]);
}

export function getLinkByIndex(seq: number, index: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg({ index }));
}

export function dumpLinks(seq: number): Buffer {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, ifinfomsg());
}

/** What RTM_NEWLINK changes on an existing link (as `ip link set dev`): each field optional. */
export interface LinkChange {
  name?: string;
  mac?: string;
  mtu?: number;
  up?: boolean;
  /** An open fd of the namespace to move the link into. */
  netnsFd?: number;
}

export function setLink(seq: number, index: number, c: LinkChange): Buffer {
  const attrs: Attr[] = [];
  if (c.netnsFd !== undefined) attrs.push(u32Attr(IFLA_NET_NS_FD, c.netnsFd));
  if (c.name !== undefined) attrs.push(stringAttr(IFLA_IFNAME, c.name));
  if (c.mac !== undefined) {
    const mac = macBytes(c.mac);
    if (!mac) throw new RangeError(`not a MAC address: ${JSON.stringify(c.mac)}`);
    attrs.push({ type: IFLA_ADDRESS, data: mac });
  }
  if (c.mtu !== undefined) attrs.push(u32Attr(IFLA_MTU, c.mtu));
  const up = c.up === undefined ? {} : { flags: c.up ? IFF_UP : 0, change: IFF_UP };
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, ifinfomsg({ index, ...up }), attrs);
}

/** RTM_NEWADDR as `ip addr add CIDR dev X` (IPv6 with nodad: the container's address is usable at once). */
export function addAddress(seq: number, index: number, cidr: string): Buffer {
  const p = parseCidr(cidr);
  if (!p) throw new RangeError(`not an address/prefix: ${JSON.stringify(cidr)}`);
  const b = Buffer.alloc(8);
  b.writeUInt8(p.family, 0);
  b.writeUInt8(p.prefixLen, 1);
  b.writeUInt8(p.family === AF_INET6 ? IFA_F_NODAD : 0, 2);
  b.writeUInt8(RT_SCOPE_UNIVERSE, 3);
  b.writeUInt32LE(index, 4);
  return encodeMessage(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, b, [
    { type: IFA_LOCAL, data: p.bytes },
    { type: IFA_ADDRESS, data: p.bytes },
  ]);
}

/** RTM_NEWROUTE as `ip route add DST [via GW] dev X`: main table, proto boot, scope link without a gateway. */
export function addRoute(seq: number, index: number, dst: string, gateway?: string): Buffer {
  const d = parseCidr(dst);
  if (!d) throw new RangeError(`not a route destination: ${JSON.stringify(dst)}`);
  const gw = gateway === undefined ? undefined : ipBytes(gateway);
  if (gateway !== undefined && (!gw || gw.length !== d.bytes.length)) throw new RangeError(`gateway ${JSON.stringify(gateway)} is not an address of ${dst}'s family`);
  const b = Buffer.alloc(12);
  b.writeUInt8(d.family, 0);
  b.writeUInt8(d.prefixLen, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(RTPROT_BOOT, 5);
  b.writeUInt8(gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  const attrs: Attr[] = [];
  if (d.prefixLen > 0) attrs.push({ type: RTA_DST, data: d.bytes });
  if (gw) attrs.push({ type: RTA_GATEWAY, data: gw });
  attrs.push(u32Attr(RTA_OIF, index));
  return encodeMessage(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, b, attrs);
}

/** One parsed netlink message. */
export interface Message {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

export function splitMessages(buf: Buffer): Message[] {
  const out: Message[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + NLMSG_HDRLEN, off + len) });
    off += align4(len);
  }
  return out;
}

export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    // NLA_F_NESTED and NLA_F_NET_BYTEORDER are flags in the top bits of the type.
    attrs.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return attrs;
}

const cString = (b: Buffer | undefined) => (b === undefined ? undefined : b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString('utf8'));

/** What the kernel answered: an errno (0 for an ACK) with its extended-ACK text, when an NLMSG_ERROR came. */
export interface Ack {
  errno: number;
  extack?: string;
}

export function parseAck(m: Message): Ack {
  const errno = 0 - m.payload.readInt32LE(0);
  if (!(m.flags & NLM_F_ACK_TLVS)) return { errno };
  // The original request follows the errno, cut down to its header when the kernel says so (NETLINK_CAP_ACK):
  // the TLVs follow it.
  const requestLen = m.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(m.payload.readUInt32LE(4));
  const extack = cString(parseAttrs(m.payload.subarray(4 + requestLen)).get(NLMSGERR_ATTR_MSG));
  return { errno, ...(extack ? { extack } : {}) };
}

/** A link as RTM_NEWLINK describes it. */
export interface NetlinkLink {
  index: number;
  name: string;
  flags: number;
  mac: string;
  mtu: number;
  parentBus?: string;
  parentDev?: string;
  /** IFLA_LINK: the peer's ifindex (a veth's), and IFLA_LINK_NETNSID: the peer's namespace as seen from here. */
  link?: number;
  linkNetnsId?: number;
}

export function parseLink(m: Message): NetlinkLink {
  const p = m.payload;
  const attrs = parseAttrs(p.subarray(16));
  const mac = attrs.get(IFLA_ADDRESS);
  const u32 = (t: number) => attrs.get(t)?.readUInt32LE(0);
  const netnsId = attrs.get(IFLA_LINK_NETNSID)?.readInt32LE(0);
  const parentBus = cString(attrs.get(IFLA_PARENT_DEV_BUS_NAME));
  const parentDev = cString(attrs.get(IFLA_PARENT_DEV_NAME));
  const link = u32(IFLA_LINK);
  return {
    index: p.readInt32LE(4),
    flags: p.readUInt32LE(8),
    name: cString(attrs.get(IFLA_IFNAME)) ?? '',
    mac: mac ? [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : '',
    mtu: u32(IFLA_MTU) ?? 0,
    ...(parentBus !== undefined ? { parentBus } : {}),
    ...(parentDev !== undefined ? { parentDev } : {}),
    ...(link !== undefined ? { link } : {}),
    ...(netnsId !== undefined ? { linkNetnsId: netnsId } : {}),
  };
}
