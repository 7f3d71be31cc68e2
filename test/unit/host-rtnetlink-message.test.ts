import {
  addAddress, addRoute, dumpLinks, encodeMessage, getLinkByName, ipBytes, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
  parseAck, parseAttrs, parseCidr, parseLink, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, setLink, splitMessages,
} from '../../src/kernel/rtnetlink-message';

const hex = (b: Buffer) => b.toString('hex');
const header = (b: Buffer) => ({ len: b.readUInt32LE(0), type: b.readUInt16LE(4), flags: b.readUInt16LE(6), seq: b.readUInt32LE(8), pid: b.readUInt32LE(12) });

describe('rtnetlink message encoding', () => {
  it('RTM_GETLINK by name: ifinfomsg with index 0, IFLA_IFNAME NUL-terminated and padded to 4', () => {
    const m = getLinkByName(7, 'eth0');
    expect(header(m)).toEqual({ len: 16 + 16 + 12, type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 7, pid: 0 });
    expect(hex(m.subarray(16, 32))).toBe('00'.repeat(16));
    // rta_len 9 (4 + "eth0\0"), type 3, then 3 bytes of padding
    expect(hex(m.subarray(32))).toBe('09000300' + Buffer.from('eth0\0').toString('hex') + '000000');
  });

  it('a link dump is NLM_F_REQUEST|NLM_F_DUMP with no attributes', () => {
    expect(header(dumpLinks(1))).toMatchObject({ len: 32, type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP });
  });

  it('RTM_NEWLINK: move with IFLA_NET_NS_FD and the new name; MAC as 6 bytes; MTU as u32; up as flags and change', () => {
    const move = setLink(1, 42, { netnsFd: 23, name: 'dpuo0011' });
    expect(header(move)).toMatchObject({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK });
    expect(move.readInt32LE(16 + 4)).toBe(42);
    const attrs = parseAttrs(move.subarray(32));
    expect(attrs.get(28)?.readUInt32LE(0)).toBe(23);
    expect(attrs.get(3)?.toString()).toBe('dpuo0011\0');
    const mac = parseAttrs(setLink(2, 42, { mac: '02:AB:cd:00:00:01', mtu: 9000 }).subarray(32));
    expect(hex(mac.get(1) as Buffer)).toBe('02abcd000001');
    expect(mac.get(4)?.readUInt32LE(0)).toBe(9000);
    const up = setLink(3, 42, { up: true });
    expect([up.readUInt32LE(16 + 8), up.readUInt32LE(16 + 12)]).toEqual([1, 1]);
    const down = setLink(3, 42, { up: false });
    expect([down.readUInt32LE(16 + 8), down.readUInt32LE(16 + 12)]).toEqual([0, 1]);
    expect(() => setLink(4, 42, { mac: '02:ab:cd:00:00' })).toThrow(/not a MAC address/);
  });

  it('RTM_NEWADDR: IPv4 with IFA_LOCAL and IFA_ADDRESS, IPv6 with IFA_F_NODAD; create, exclusive', () => {
    const v4 = addAddress(5, 9, '10.1.2.3/24');
    expect(header(v4)).toMatchObject({ type: RTM_NEWADDR, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL });
    expect(hex(v4.subarray(16, 24))).toBe('0218000009000000'); // AF_INET, /24, no flags, scope universe, index 9
    const a = parseAttrs(v4.subarray(24));
    expect(hex(a.get(2) as Buffer)).toBe('0a010203');
    expect(hex(a.get(1) as Buffer)).toBe('0a010203');
    const v6 = addAddress(6, 9, 'fd00::2/64');
    expect(hex(v6.subarray(16, 20))).toBe('0a400200');
    expect(hex(parseAttrs(v6.subarray(24)).get(2) as Buffer)).toBe('fd000000000000000000000000000002');
    expect(() => addAddress(7, 9, '10.1.2.300/24')).toThrow(/not an address/);
    expect(() => addAddress(7, 9, '10.1.2.3/33')).toThrow(/not an address/);
  });

  it('RTM_NEWROUTE: main table, proto boot; scope link without a gateway, universe with one; default has no RTA_DST', () => {
    const link = addRoute(1, 9, '10.9.0.0/16');
    expect(header(link).type).toBe(RTM_NEWROUTE);
    expect(hex(link.subarray(16, 28))).toBe('021000' + '00' + 'fe03fd01' + '00000000');
    const la = parseAttrs(link.subarray(28));
    expect(hex(la.get(1) as Buffer)).toBe('0a090000');
    expect(la.get(4)?.readUInt32LE(0)).toBe(9);
    expect(la.has(5)).toBe(false);
    const dflt = addRoute(2, 9, '0.0.0.0/0', '10.1.2.1');
    expect(hex(dflt.subarray(16, 28))).toBe('02000000' + 'fe030001' + '00000000');
    const da = parseAttrs(dflt.subarray(28));
    expect(da.has(1)).toBe(false);
    expect(hex(da.get(5) as Buffer)).toBe('0a010201');
    expect(hex(addRoute(3, 9, '::/0', 'fd00::1').subarray(16, 18))).toBe('0a00');
    expect(() => addRoute(4, 9, '::/0', '10.1.2.1')).toThrow(/family/);
  });
});

describe('addresses', () => {
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00::', 'fd000000000000000000000000000000'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
    ['2001:db8::1:0:0:1', '20010db8000000000001000000000001'],
    ['::ffff:10.1.2.3', '00000000000000000000ffff0a010203'],
    ['1.2.3.4', '01020304'],
  ])('%s', (ip, bytes) => expect(hex(ipBytes(ip) as Buffer)).toBe(bytes));

  it('rejects what is not an address; a bare address is a host prefix', () => {
    expect(ipBytes('eth0')).toBeUndefined();
    expect(ipBytes('1.2.3')).toBeUndefined();
    expect(parseCidr('10.0.0.1')).toMatchObject({ family: 2, prefixLen: 32 });
    expect(parseCidr('fd00::1/129')).toBeUndefined();
    expect(parseCidr('10.0.0.1/24/1')).toBeUndefined();
    expect(parseCidr('10.0.0.1/x')).toBeUndefined();
  });
});

describe('rtnetlink message parsing', () => {
  const newlink = (attrs: Array<{ type: number; data: Buffer }>, index = 12, flags = 0x1003) => {
    const ifi = Buffer.alloc(16);
    ifi.writeInt32LE(index, 4);
    ifi.writeUInt32LE(flags, 8);
    return encodeMessage(RTM_NEWLINK, 0, 9, ifi, attrs);
  };
  const u32 = (type: number, v: number) => {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(v);
    return { type, data };
  };

  it('a link: name, MAC, MTU, UP, parent device, and a veth peer in another namespace', () => {
    const buf = Buffer.concat([
      newlink([{ type: 3, data: Buffer.from('eth0\0') }, { type: 1, data: Buffer.from('02abcd000001', 'hex') }, u32(4, 1450), u32(5, 77), u32(37, 2)]),
      newlink([{ type: 3, data: Buffer.from('ens1f0v0\0') }, { type: 57, data: Buffer.from('pci\0') }, { type: 56, data: Buffer.from('0000:03:00.2\0') }], 13, 0),
    ]);
    const [a, b] = splitMessages(buf).map(parseLink);
    expect(a).toEqual({ index: 12, flags: 0x1003, name: 'eth0', mac: '02:ab:cd:00:00:01', mtu: 1450, link: 77, linkNetnsId: 2 });
    expect(b).toMatchObject({ index: 13, name: 'ens1f0v0', parentBus: 'pci', parentDev: '0000:03:00.2' });
  });

  it('an error answer: errno and the extended ACK message after the capped request header', () => {
    const err = Buffer.alloc(4 + 16);
    err.writeInt32LE(-17, 0);
    const withExtack = encodeMessage(2, 0x100 | 0x200, 4, err, [{ type: 1, data: Buffer.from('Name already in use\0') }]);
    expect(parseAck(splitMessages(withExtack)[0])).toEqual({ errno: 17, extack: 'Name already in use' });
    // Not capped (a kernel without NETLINK_CAP_ACK): the whole request comes back before the TLVs.
    const request = getLinkByName(4, 'eth0');
    const uncapped = Buffer.alloc(4 + request.length);
    uncapped.writeInt32LE(-19, 0);
    request.copy(uncapped, 4);
    expect(parseAck(splitMessages(encodeMessage(2, 0x200, 4, uncapped, [{ type: 1, data: Buffer.from('no device\0') }]))[0])).toEqual({ errno: 19, extack: 'no device' });
    const ack = Buffer.alloc(4 + 16);
    expect(parseAck(splitMessages(encodeMessage(2, 0x100, 4, ack))[0])).toEqual({ errno: 0 });
  });

  it('splitMessages stops at a truncated message', () => {
    const m = getLinkByName(1, 'x');
    expect(splitMessages(Buffer.concat([m, m.subarray(0, 20)]))).toHaveLength(1);
  });
});
