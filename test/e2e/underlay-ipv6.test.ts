/**
 * End-to-end on an IPv6-only underlay (testbed.sh up --underlay ipv6: the DPUs' uplinks, VTEPs and the OVN central
 * on 2001:db8::/32), in both control planes: static VXLAN and OVN Geneve. Ping and TCP between containers on two
 * hosts, the VNI on the wire seen on the DPU uplink in IPv6 packets (nft counters on p0 matching the tunnel header),
 * and the MTU boundary the underlay MTU check computes (70 bytes for VXLAN over IPv6, 78 for Geneve).
 */
import { spawnSync } from 'node:child_process';
import {
  cni, container, dpuExec, firstIp, hostLocal, inNetns, netConf, nsName, ping, removeContainers, requireBinary, site, type Site, type Testbed,
  testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(240000);

/** An IPv6 packet to UDP port `port` whose tunnel header (VXLAN or Geneve: the VNI at bytes 4-6 after UDP) carries vni. */
function countVni(dpu: string, port: number, vni: number, comment: string): void {
  dpuExec(dpu, 'nft', 'insert', 'rule', 'netdev', 'dpuo', 'ingress', 'ether', 'type', 'ip6', 'ip6', 'nexthdr', 'udp', 'udp', 'dport', String(port), '@th,96,24', String(vni), 'counter', 'comment', `"${comment}"`);
}
function counted(dpu: string, comment: string): number {
  const out = dpuExec(dpu, 'nft', 'list', 'chain', 'netdev', 'dpuo', 'ingress');
  const m = out.split('\n').find((l) => l.includes(`comment "${comment}"`))?.match(/counter packets (\d+)/);
  if (!m) throw new Error(`no rule ${comment} on ${dpu}: ${out}`);
  return Number(m[1]);
}
/** A DF ping of `size` payload bytes: true if it was answered. */
function dfPing(from: string, to: string, size: number): { ok: boolean; out: string } {
  const r = inNetns(from, 'ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', String(size), to]);
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}
function tcpWorks(server: string, client: string, ip: string): boolean {
  const s = spawnSync('ip', ['netns', 'exec', nsName(server), 'iperf3', '-s', '-1', '-D', '-p', '5201'], { encoding: 'utf8' });
  if (s.status !== 0) return false;
  spawnSync('sleep', ['0.3']);
  const r = inNetns(client, 'iperf3', ['-c', ip, '-t', '1', '-J']);
  if (r.status !== 0) return false;
  return (JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } }).end.sum_received.bytes > 0;
}

function underlaySuite(plane: 'static' | 'ovn'): void {
  const encap = plane === 'static' ? { name: 'VXLAN', port: 4789, overhead: 70 } : { name: 'Geneve', port: 6081, overhead: 78 };
  const mtu = 1500 - encap.overhead; // the uplink's MTU is 1500
  let tb: Testbed;
  let A: Site;
  let B: Site;
  const ns: Record<string, string> = {};
  const ip: Record<string, string> = {};

  function conf(s: Site, over: { mtu?: number; dpu?: Record<string, unknown> } = {}): Record<string, unknown> {
    const start = s.name === 'a' ? '10.124.0.10' : '10.124.0.60';
    const end = s.name === 'a' ? '10.124.0.59' : '10.124.0.109';
    // OVN: the node file names no VTEPs (ovn-encap-ip is the DPU's own)
    const ovn = plane === 'ovn' ? { dpu: { controlPlane: 'ovn', timeoutMs: 15000, ...over.dpu }, drop: ['dpu.localVtep', 'dpu.remoteVteps'] } : { dpu: over.dpu };
    return netConf(tb, s, { ipam: hostLocal(tb, s, '10.124.0.0/24', start, end), ...ovn, extra: { mtu: over.mtu ?? mtu } });
  }

  beforeAll(() => {
    requireBinary();
    tb = testbedUp(3, 'a,b', 1, { underlay: 'ipv6', ...(plane === 'ovn' ? { ovn: true } : {}) });
    A = site(tb, 'a');
    B = site(tb, 'b');
  });

  afterAll(() => {
    removeContainers();
    testbedDown();
  });

  test(`the testbed's underlay is IPv6-only (VTEPs in 2001:db8::/32)`, () => {
    expect(tb.underlay).toBe('ipv6');
    expect(A.localVtep).toMatch(/^2001:db8:/);
    expect(dpuExec('a', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'br-phy')).toBe('');
  });

  test(`an mtu one byte over the uplink minus ${encap.overhead} (${encap.name} over IPv6) is refused: code 7 naming the largest`, () => {
    const c = container(`v6-${plane}-big`);
    const r = cni(A, conf(A, { mtu: mtu + 1 }), { command: 'ADD', containerId: `v6-${plane}-big`, netns: c });
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.msg)).toContain(`${encap.name.toUpperCase()} over IPv6 adds ${encap.overhead} bytes`);
    expect(String(r.json?.msg)).toContain(`lower mtu to ${mtu}`);
  });

  test(`ADD on two hosts at mtu ${mtu}; ping and TCP between the containers`, () => {
    for (const s of [A, B]) {
      ns[s.name] = container(`v6-${plane}-${s.name}`);
      const r = cni(s, conf(s), { command: 'ADD', containerId: `v6-${plane}-${s.name}`, netns: ns[s.name] });
      expect([r.status, r.json?.msg]).toEqual([0, undefined]);
      ip[s.name] = firstIp(r.json);
    }
    expect(ping(ns.a as string, ip.b as string, 3)).toBe(true);
    expect(tcpWorks(ns.b as string, ns.a as string, ip.b as string)).toBe(true);
  });

  test(`the ${encap.name} VNI is on the wire in IPv6 packets on the DPU uplink`, () => {
    // VXLAN carries the VNI; OVN's Geneve carries the switch's tunnel key, which the plugin requests equal to it
    countVni('b', encap.port, 100, 'v6-vni');
    const before = counted('b', 'v6-vni');
    expect(ping(ns.a as string, ip.b as string, 3)).toBe(true);
    expect(counted('b', 'v6-vni') - before).toBeGreaterThanOrEqual(3);
    // nothing of it over IPv4: the uplink has no IPv4 address
    dpuExec('b', 'nft', 'insert', 'rule', 'netdev', 'dpuo', 'ingress', 'ether', 'type', 'ip', 'udp', 'dport', String(encap.port), 'counter', 'comment', '"v4-tunnel"');
    expect(ping(ns.a as string, ip.b as string, 2)).toBe(true);
    expect(counted('b', 'v4-tunnel')).toBe(0);
  });

  test(`the MTU boundary: a ${mtu - 28}-byte DF ping passes in ${1500}-byte underlay packets, ${mtu - 27} is refused by the sender`, () => {
    // the IPv6 payload length of a 1500-byte underlay packet: 1460
    dpuExec('b', 'nft', 'insert', 'rule', 'netdev', 'dpuo', 'ingress', 'ether', 'type', 'ip6', 'ip6', 'length', '1460', 'udp', 'dport', String(encap.port), 'counter', 'comment', '"full-size"');
    const largest = dfPing(ns.a as string, ip.b as string, mtu - 28);
    expect(largest).toMatchObject({ ok: true });
    expect(counted('b', 'full-size')).toBeGreaterThanOrEqual(1);
    const over = dfPing(ns.a as string, ip.b as string, mtu - 27);
    expect(over.ok).toBe(false);
    expect(over.out).toMatch(/message too long|mtu=\d+/i);
  });

  if (plane === 'static') {
    test('a VTEP family mismatch (an IPv4 remote with an IPv6 localVtep) is refused: code 7 naming the remote', () => {
      const c = container('v6-mixed');
      const r = cni(A, conf(A, { dpu: { remoteVteps: [B.localVtep, '198.51.100.2'] } }), { command: 'ADD', containerId: 'v6-mixed', netns: c });
      expect(r.json).toMatchObject({ code: 7 });
      expect(String(r.json?.msg)).toMatch(/remoteVteps\[1\]: 198\.51\.100\.2 is IPv4 but localVtep 2001:db8:100::1 is IPv6/);
    });
  }
}

describe('static VXLAN over IPv6 VTEPs', () => {
  underlaySuite('static');
});

describe('OVN Geneve over an IPv6 ovn-encap-ip', () => {
  underlaySuite('ovn');
});
