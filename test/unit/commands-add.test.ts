import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import { HOST_NETNS } from '../../src/kernel/iproute2';
import { type Attachment, StateStore } from '../../src/store/attachments';
import { DEAD_OWNER } from './helpers/dead-owner';
import { Bed, PF0_VFS, PF1_VFS, vfMac } from './helpers/bed';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';

let nets: TestNetns[] = [];
let NS = '';
let NS2 = '';
beforeAll(async () => {
  nets = await Promise.all([createNetns(), createNetns(), createNetns()]);
  NS = nets[0]!.path;
  NS2 = nets[1]!.path;
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

const TMP_NAME = /^dpuo[0-9a-f]{8}$/;

function bed(): Bed {
  return new Bed(nets.map((n) => n.path));
}

/** The host-side `ip link set dev X netns NS name TMP` of an ADD. */
function moveCall(b: Bed): string[] {
  const move = b.host.ipCalls().find((c) => c.ns === 'host' && c.args[0] === 'link' && c.args.includes('netns'));
  if (!move) throw new Error('no move');
  return move.args;
}

function expectHostRestored(b: Bed, vf = 0): void {
  const l = b.host.link('host', PF0_VFS[vf]!.netdev as string);
  expect(l).toMatchObject({ mac: vfMac(0, vf), mtu: 1500, up: false });
}

describe('ADD', () => {
  it('attaches the first free VF: move under a temporary name, IPAM, one ip batch, DPU plug, result', async () => {
    const b = bed();
    const out = await b.run('ADD');
    expect(out.exitCode).toBe(0);
    expect(out.json).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'net1', mac: vfMac(0, 0), mtu: 1450, sandbox: NS, pciID: PF0_VFS[0]!.pci }],
      ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.53'] },
    });

    // the VF was moved into the container under a temporary name, then configured there in one batch
    const [, , , from, , target, , tmp] = moveCall(b);
    expect(moveCall(b)).toEqual(['link', 'set', 'dev', 'ens1f0v0', 'netns', NS, 'name', tmp]);
    expect([from, target]).toEqual(['ens1f0v0', NS]);
    expect(tmp).toMatch(TMP_NAME);
    expect(b.host.batches(NS)).toEqual([
      [`link set dev ${tmp} name net1`, 'link set dev net1 mtu 1450', 'addr add 10.1.0.5/24 dev net1', 'link set dev net1 up', 'route add 0.0.0.0/0 via 10.1.0.1 dev net1', 'link show dev net1'],
    ]);
    // announcements on link up were enabled before it, under the temporary name (they follow the rename)
    expect(b.host.sysctls.get(NS)).toEqual([`/proc/sys/net/ipv4/conf/${tmp}/arp_notify=1`, `/proc/sys/net/ipv6/conf/${tmp}/ndisc_notify=1`]);
    expect(b.host.link(NS, 'net1')).toMatchObject({ mac: vfMac(0, 0), mtu: 1450, up: true, addrs: ['10.1.0.5/24'] });
    expect(b.host.link('host', 'ens1f0v0')).toBeUndefined();

    // IPAM got the config exactly as the runtime sent it, and the container's identity
    expect(b.ipam.log()).toEqual([['ADD', 'c1', 'net1', NS, '-']]);
    expect(JSON.parse(b.ipam.stdinOf('ADD'))).toEqual(b.sent());

    // the representor of PF 0 / VF 0 went on the DPU
    expect(b.dpu.callsOf('plug')).toEqual([{ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: NS, representor: 'pf0vf0', mtu: 1450 }]);
    expect(b.dpu.closed).toBe(1);

    // state: the VF is ours and the attachment is cached as ready
    const state = new StateStore(b.stateDir);
    expect(state.listAllocations()).toEqual([PF0_VFS[0]!.pci]);
    expect(state.allocationOwner(PF0_VFS[0]!.pci)).toMatchObject({ containerId: 'c1', ifname: 'net1', network: 'ovl' });
    const att = state.loadAttachment('c1', 'net1') as Attachment;
    expect(att).toMatchObject({
      phase: 'ready',
      network: 'ovl',
      netns: NS,
      vni: 5001,
      tmpName: tmp,
      mtu: 1450,
      ipamType: 'fake-ipam',
      cniPath: [b.cniPath],
      vf: { pci: PF0_VFS[0]!.pci, index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: vfMac(0, 0), originalMtu: 1500 },
      dpu: { target: b.dpu.target, bridge: 'br-vni5001', representor: 'pf0vf0', portUuid: [...b.dpu.ports.keys()][0] },
    });
    expect(att.netnsId).toMatch(/^\d+:\d+$/);
    expect(att.result).toEqual(out.json);
  });

  it('refuses the plugin\'s own network namespace as CNI_NETNS (code 4) before touching anything', async () => {
    const b = bed();
    const out = await b.run('ADD', { netns: '/proc/self/ns/net' });
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.writes[0] as string)).toMatchObject({ code: 4, msg: expect.stringMatching(/own \(host\) network namespace/) });
    expect(b.host.calls).toEqual([]);
    expect(b.dpu.calls).toEqual([]);
    expect(b.stateFiles()).toEqual([]);
  });

  it('records the VF as it is once claimed, not as an older listing showed it (a concurrent DEL was restoring it)', async () => {
    const b = bed();
    const stale = b.host.linkNames('host').map((name) => {
      const l = b.host.link('host', name) as { name: string; mac: string; mtu: number };
      return { ifname: l.name, address: l.mac, mtu: name === 'ens1f0v0' ? 1450 : l.mtu, flags: [] };
    });
    b.host.failWhen((c) => c.file === 'ip' && c.args.join(' ') === '-j link show', { exitCode: 0, stdout: JSON.stringify(stale), stderr: '' }, 1);
    expect((await b.run('ADD')).exitCode).toBe(0);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.vf).toMatchObject({ originalName: 'ens1f0v0', originalMtu: 1500 });
  });

  it('the next container gets the next VF (pf0vf1)', async () => {
    const b = bed();
    await b.run('ADD');
    const out = await b.run('ADD', { containerId: 'c2', netns: NS2 });
    expect(out.exitCode).toBe(0);
    expect((out.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID).toBe(PF0_VFS[1]!.pci);
    expect((b.dpu.callsOf('plug')[1] as { representor: string }).representor).toBe('pf0vf1');
  });

  it('skips VFs that are not in the host namespace and VFs allocated by someone else', async () => {
    const b = bed();
    b.host.namespaces.get('host')?.delete('ens1f0v0'); // e.g. still in another container
    new StateStore(b.stateDir).ensure();
    new StateStore(b.stateDir).tryAllocate(PF0_VFS[1]!.pci, { containerId: 'other', ifname: 'eth1', network: 'x' });
    const out = await b.run('ADD');
    expect(out.exitCode).toBe(0);
    expect((out.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID).toBe(PF0_VFS[2]!.pci);
    expect(moveCall(b)[3]).toBe('ens1f0v2');
  });

  it('concurrent ADDs get different VFs', async () => {
    const b = bed();
    const outs = await Promise.all([b.run('ADD', { containerId: 'c1', netns: NS }), b.run('ADD', { containerId: 'c2', netns: NS2 }), b.run('ADD', { containerId: 'c3', netns: nets[2]!.path })]);
    expect(outs.map((o) => o.exitCode)).toEqual([0, 0, 0]);
    const pcis = outs.map((o) => (o.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID);
    expect(new Set(pcis).size).toBe(3);
  });

  it('sets the MAC from CNI_ARGS and reports it', async () => {
    const b = bed();
    const out = await b.run('ADD', { args: 'IgnoreUnknown=1;MAC=02:AA:BB:CC:DD:EE' });
    expect(out.exitCode).toBe(0);
    expect((out.json?.interfaces as Array<{ mac: string }>)[0]?.mac).toBe('02:aa:bb:cc:dd:ee');
    expect(b.host.batches(NS)[0]).toContain('link set dev net1 address 02:aa:bb:cc:dd:ee');
    expect(b.host.link(NS, 'net1')?.mac).toBe('02:aa:bb:cc:dd:ee');
    // IPAM gets CNI_ARGS as received
    expect(b.ipam.log()[0]?.[4]).toBe('IgnoreUnknown=1;MAC=02:AA:BB:CC:DD:EE');
  });

  it('uses the configured mtu', async () => {
    const b = bed();
    b.dpu.uplink = { dev: 'p0', mtu: 9050 };
    const out = await b.run('ADD', { config: b.config({ mtu: 9000 }) });
    expect((out.json?.interfaces as Array<{ mtu: number }>)[0]?.mtu).toBe(9000);
    expect(b.host.batches(NS)[0]).toContain('link set dev net1 mtu 9000');
    expect((b.dpu.callsOf('plug')[0] as { mtu: number }).mtu).toBe(9000);
  });

  it('names the representor from the PF PCI function, pfIndex and representorTemplate', async () => {
    const b = bed();
    await b.run('ADD', { config: b.config({ pf: 'ens1f1' }) });
    await b.run('ADD', { containerId: 'c2', netns: NS2, config: b.config({ pf: 'ens1f1', pfIndex: 3, dpu: { ...(b.config().dpu as object), representorTemplate: 'p{pf}v{vf}r' } }) });
    expect(b.dpu.callsOf('plug').map((p) => (p as { representor: string }).representor)).toEqual(['pf1vf0', 'p3v1r']);
  });

  it('a deviceID picks that VF (runtimeConfig.deviceID wins over deviceID)', async () => {
    const b = bed();
    const out = await b.run('ADD', { config: b.config({ deviceID: PF0_VFS[3]!.pci, runtimeConfig: { deviceID: PF0_VFS[2]!.pci } }) });
    expect(out.exitCode).toBe(0);
    expect((out.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID).toBe(PF0_VFS[2]!.pci);
    expect((b.dpu.callsOf('plug')[0] as { representor: string }).representor).toBe('pf0vf2');
  });

  it('a deviceID without pf works; on a PF other than pf it is code 7', async () => {
    const b = bed();
    expect((await b.run('ADD', { config: b.config({ pf: undefined, deviceID: PF1_VFS[1]!.pci }) })).exitCode).toBe(0);
    expect((b.dpu.callsOf('plug')[0] as { representor: string }).representor).toBe('pf1vf1');
    const bad = await b.run('ADD', { containerId: 'c2', netns: NS2, config: b.config({ pf: 'ens1f0', deviceID: PF1_VFS[0]!.pci }) });
    expect(bad.json).toMatchObject({ code: 7 });
    expect(new StateStore(b.stateDir).listAllocations()).toEqual([PF1_VFS[1]!.pci]);
  });

  it('a deviceID in use by another container is code 102 naming the holder', async () => {
    const b = bed();
    const conf = b.config({ deviceID: PF0_VFS[1]!.pci });
    expect((await b.run('ADD', { config: conf })).exitCode).toBe(0);
    b.ipam.resetLog();
    const out = await b.run('ADD', { containerId: 'c2', netns: NS2, config: conf });
    expect(out.exitCode).toBe(1);
    expect(out.json?.code).toBe(102);
    expect(out.json?.msg).toContain('c1');
    expect(b.ipam.log()).toEqual([]);
    expect(new StateStore(b.stateDir).allocationOwner(PF0_VFS[1]!.pci)?.containerId).toBe('c1');
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.phase).toBe('ready');
  });

  it('a deviceID whose netdev is not in the host namespace is code 101 and frees the claim', async () => {
    const b = bed();
    b.host.namespaces.get('host')?.delete('ens1f0v1');
    const out = await b.run('ADD', { config: b.config({ deviceID: PF0_VFS[1]!.pci }) });
    expect(out.json?.code).toBe(101);
    expect(b.stateFiles()).toEqual([]);
  });

  it('no free VF is code 100, and leaves the other attachments alone', async () => {
    const b = bed();
    for (let i = 0; i < 4; i++) expect((await b.run('ADD', { containerId: `c${i}`, ifname: `net${i}` })).exitCode).toBe(0);
    b.ipam.resetLog();
    const out = await b.run('ADD', { containerId: 'c9', ifname: 'net9' });
    expect(out.exitCode).toBe(1);
    expect(out.json?.code).toBe(100);
    expect(out.json?.msg).toContain('ens1f0');
    expect(b.ipam.log()).toEqual([]);
    expect(new StateStore(b.stateDir).listAllocations()).toHaveLength(4);
    expect(new StateStore(b.stateDir).loadAttachment('c9', 'net9')).toBeUndefined();
  });

  it('neither pf nor deviceID is code 7', async () => {
    const b = bed();
    expect((await b.run('ADD', { config: b.config({ pf: undefined }) })).json?.code).toBe(7);
  });

  it('a second ADD of the same container and ifname is refused (code 102) and changes nothing', async () => {
    const b = bed();
    await b.run('ADD');
    b.host.clearCalls();
    const out = await b.run('ADD');
    expect(out.json?.code).toBe(102);
    expect(b.host.calls).toEqual([]);
    expect(b.host.link(NS, 'net1')).toBeDefined();
  });

  it('converts the result to the config cniVersion (0.4.0: IP version, no mtu/pciID)', async () => {
    const b = bed();
    const out = await b.run('ADD', { config: b.config({ cniVersion: '0.4.0' }) });
    expect(out.json).toEqual({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'net1', mac: vfMac(0, 0), sandbox: NS }],
      ips: [{ version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.53'] },
    });
  });

  it('IPv6 addresses get nodad and routes use the gateway of their family', async () => {
    const b = bed();
    b.ipam.setResult({ cniVersion: '1.0.0', ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1' }], routes: [{ dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.1.0.254' }] });
    expect((await b.run('ADD')).exitCode).toBe(0);
    expect(b.host.batches(NS)[0]?.slice(2)).toEqual(['addr add 10.1.0.5/24 dev net1', 'addr add fd00::5/64 dev net1 nodad', 'link set dev net1 up', 'route add ::/0 via fd00::1 dev net1', 'route add 192.168.0.0/16 via 10.1.0.254 dev net1', 'link show dev net1']);
  });

  it('without ipam: no IPAM run, no addresses', async () => {
    const b = bed();
    const out = await b.run('ADD', { config: b.config({ ipam: undefined }) });
    expect(out.exitCode).toBe(0);
    expect(out.json?.ips).toBeUndefined();
    expect(b.ipam.log()).toEqual([]);
    const [tmp] = b.host.batches(NS)[0] ?? [];
    expect(b.host.batches(NS)[0]).toEqual([tmp, 'link set dev net1 mtu 1450', 'link set dev net1 up', 'link show dev net1']);
  });

  it('without dpu: host side only, no DPU client is made', async () => {
    const b = bed();
    const out = await b.run('ADD', { config: b.config({ dpu: undefined }) });
    expect(out.exitCode).toBe(0);
    expect(b.dpuClientsMade).toBe(0);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.dpu).toBeUndefined();
  });

  it('VF admin settings: saves the old ones in the attachment, then sets the new ones through the PF', async () => {
    const b = bed();
    const out = await b.run('ADD', { config: b.config({ vlan: 100, vlanQoS: 3, spoofchk: 'off', maxTxRate: 1000 }) });
    expect(out.exitCode).toBe(0);
    const vfSets = b.host.ipCalls().filter((c) => c.args.includes('vf'));
    expect(vfSets.map((c) => c.args)).toEqual([['link', 'set', 'dev', 'ens1f0', 'vf', '0', 'vlan', '100', 'qos', '3', 'spoofchk', 'off', 'max_tx_rate', '1000']]);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.adminSaved).toEqual({ mac: '00:00:00:00:00:00', vlan: 0, vlanQoS: 0, spoofchk: 'on', trust: 'off', linkState: 'auto', minTxRate: 0, maxTxRate: 0 });
  });

  describe('prevResult chaining', () => {
    const prev = (ns: string) => ({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: '02:11:11:11:11:11', sandbox: ns }],
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
      routes: [{ dst: '10.0.0.0/8' }],
      dns: { nameservers: ['10.0.0.53'] },
    });

    it('appends our interface, points our IPs at its index and keeps earlier IPs and routes', async () => {
      const b = bed();
      const out = await b.run('ADD', { config: b.config({ prevResult: prev(NS) }) });
      expect(out.exitCode).toBe(0);
      expect(out.json).toEqual({
        cniVersion: '1.1.0',
        interfaces: [
          { name: 'eth0', mac: '02:11:11:11:11:11', sandbox: NS },
          { name: 'net1', mac: vfMac(0, 0), mtu: 1450, sandbox: NS, pciID: PF0_VFS[0]!.pci },
        ],
        ips: [
          { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 },
          { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
        ],
        routes: [{ dst: '10.0.0.0/8' }, { dst: '0.0.0.0/0' }],
        dns: { nameservers: ['10.1.0.53'] },
      });
    });

    it('keeps the earlier DNS when IPAM returns none, and works without IPAM', async () => {
      const b = bed();
      const out = await b.run('ADD', { config: b.config({ prevResult: prev(NS), ipam: undefined }) });
      expect(out.json?.dns).toEqual({ nameservers: ['10.0.0.53'] });
      expect(out.json?.ips).toEqual([{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }]);
      expect((out.json?.interfaces as unknown[]).length).toBe(2);
    });
  });

  describe('rollback', () => {
    /** Nothing of the failed ADD is left: VF back in the host as it was, no state, no DPU port. */
    function expectNothingLeft(b: Bed, ns = NS): void {
      expectHostRestored(b, 0);
      expect(b.host.linkNames(ns)).toEqual([]);
      expect(b.stateFiles()).toEqual([]);
      expect(b.dpu.ports.size).toBe(0);
      expect(b.dpu.closed).toBe(b.dpuClientsMade);
    }

    it('IPAM ADD fails: the VF goes back, allocation and record are gone; a try-again code is kept', async () => {
      const b = bed();
      b.ipam.failNext('ADD', JSON.stringify({ cniVersion: '1.1.0', code: 11, msg: 'pool busy' }));
      const out = await b.run('ADD');
      expect(out.exitCode).toBe(1);
      expect(out.json).toMatchObject({ code: 11 });
      expect(out.json?.msg).toContain('pool busy');
      expectNothingLeft(b);
      // static mode plugs while the VF moves and IPAM runs: the rollback unplugs it
      expect(b.dpu.callsOf('plug')).toHaveLength(1);
      expect(b.dpu.callsOf('unplug')).toHaveLength(1);
      // the VF came back through the container namespace, under a fresh temporary name, and was restored
      const back = b.host.ipCalls().find((c) => c.ns === NS && c.args.includes('netns'));
      expect(back?.args.slice(0, 5)).toEqual(['link', 'set', 'dev', moveCall(b)[7], 'netns']);
      expect(back?.args[5]).toBe(HOST_NETNS);
      const hostName = back?.args[7] as string;
      expect(b.host.batches('host')).toEqual([[`link set dev ${hostName} down`, `link set dev ${hostName} name ens1f0v0`, `link set dev ens1f0v0 address ${vfMac(0, 0)} mtu 1500`]]);
    });

    it('IPAM ADD fails without an error object: code 103 with its stderr', async () => {
      const b = bed();
      b.ipam.failNext('ADD');
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 103 });
      expect(out.json?.msg).toContain('fake ipam: ADD failed');
      expectNothingLeft(b);
    });

    it('IPAM returns an address iproute2 would misread: code 103, rolled back', async () => {
      const b = bed();
      b.ipam.setResult({ cniVersion: '1.1.0', ips: [{ address: '10.1.0.5/24 dev lo' }] });
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 103 });
      expectNothingLeft(b);
      expect(b.ipam.commands()).toEqual(['ADD', 'DEL']);
    });

    it('IPAM exits 0 but prints no JSON: code 103, and the address it may hold is released', async () => {
      const b = bed();
      b.ipam.setResult('allocated 10.1.0.5');
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 103 });
      expect(b.ipam.commands()).toEqual(['ADD', 'DEL']);
      expectNothingLeft(b);
    });

    it('the ip batch fails: IPAM DEL is called, VF returned, DPU port removed, state cleared', async () => {
      const b = bed();
      b.host.failWhen((c) => c.file === 'nsenter' && c.args.includes('-batch'), { exitCode: 1, stdout: '', stderr: 'RTNETLINK answers: Invalid argument\nCommand failed -:4' }, 1);
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 5 });
      expect(out.json?.msg).toContain('Invalid argument');
      expect(b.ipam.commands()).toEqual(['ADD', 'DEL']);
      expect(b.ipam.log()[1]).toEqual(['DEL', 'c1', 'net1', NS, '-']);
      // the representor is plugged before the link comes up (so its announcement crosses the overlay) and unplugged again
      expect(b.dpu.callsOf('plug')).toHaveLength(1);
      expect(b.dpu.callsOf('unplug')).toHaveLength(1);
      expectNothingLeft(b);
    });

    it('static mode: the plug starts before the VF moves, and the link comes up only after it finished', async () => {
      const b = bed();
      const plug = b.dpu.plug.bind(b.dpu);
      let movedAtPlug: boolean | undefined;
      let configuredBeforePlugDone = false;
      b.dpu.plug = async (req) => {
        movedAtPlug = b.host.ipCalls().some((c) => c.ns === 'host' && c.args.includes('netns'));
        await new Promise((resolve) => setTimeout(resolve, 50));
        configuredBeforePlugDone = b.host.batches(NS).length > 0;
        return plug(req);
      };
      const out = await b.run('ADD');
      expect(out.exitCode).toBe(0);
      expect(movedAtPlug).toBe(false);
      expect(configuredBeforePlugDone).toBe(false);
    });

    it('a step failing while the plug is still in flight: rollback waits for it, then unplugs the port it made', async () => {
      const b = bed();
      const plug = b.dpu.plug.bind(b.dpu);
      b.dpu.plug = async (req) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return plug(req);
      };
      b.ipam.failNext('ADD', JSON.stringify({ cniVersion: '1.1.0', code: 11, msg: 'pool busy' }));
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 11 });
      expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ portUuid: expect.any(String), representor: 'pf0vf0' })]);
      expectNothingLeft(b);
    });

    it('the DPU unreachable: facts and the early plug both fail; one error (its code kept), nothing left', async () => {
      const b = bed();
      b.dpu.failures.facts = new CniError(11, 'DPU 192.0.2.10 unreachable');
      b.dpu.failures.plug = new CniError(11, 'DPU 192.0.2.10 unreachable');
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 11 });
      expect(out.json?.msg).toMatch(/192\.0\.2\.10/);
      expect(b.dpu.callsOf('unplug')).toEqual([]);
      expectNothingLeft(b);
    });

    it('the underlay MTU check still refuses before the link comes up, and the early plug is undone', async () => {
      const b = bed();
      b.dpu.uplink = { dev: 'br-phy', mtu: 1400 };
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 7 });
      expect(b.host.batches(NS)).toEqual([]);
      expect(b.dpu.callsOf('unplug')).toHaveLength(b.dpu.callsOf('plug').length);
      expectNothingLeft(b);
    });

    it('the DPU plug fails: its code is kept, IPAM DEL is called, VF returned, state cleared', async () => {
      const b = bed();
      b.dpu.failures.plug = new CniError(112, 'ovs-vsctl: no bridge');
      const out = await b.run('ADD');
      expect(out.json).toMatchObject({ code: 112 });
      expect(out.json?.msg).toMatch(/binding representor pf0vf0 on the DPU failed: .*no bridge/);
      expect(b.ipam.commands()).toEqual(['ADD', 'DEL']);
      expect(b.dpu.callsOf('unplug')).toEqual([]);
      expectNothingLeft(b);
    });

    it('the DPU plug fails after VF admin changes: they are restored', async () => {
      const b = bed();
      b.dpu.failures.plug = new CniError(11, 'DPU unreachable');
      const out = await b.run('ADD', { config: b.config({ vlan: 100 }) });
      expect(out.json).toMatchObject({ code: 11 });
      const vfSets = b.host.ipCalls().filter((c) => c.args.includes('vf')).map((c) => c.args.slice(6));
      expect(vfSets).toEqual([
        ['vlan', '100'],
        ['mac', '00:00:00:00:00:00', 'vlan', '0', 'qos', '0', 'spoofchk', 'on', 'trust', 'off', 'state', 'auto', 'min_tx_rate', '0', 'max_tx_rate', '0'],
      ]);
      expectNothingLeft(b);
    });

    it('after a failed ADD the same VF is free for the next one', async () => {
      const b = bed();
      b.dpu.failures.plug = new CniError(112, 'boom');
      await b.run('ADD');
      delete b.dpu.failures.plug;
      const out = await b.run('ADD', { containerId: 'c2', netns: NS2 });
      expect(out.exitCode).toBe(0);
      expect((out.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID).toBe(PF0_VFS[0]!.pci);
    });
  });

  it('an ADD interrupted before it finished (phase "adding") is cleaned up by the next ADD', async () => {
    const b = bed();
    expect((await b.run('ADD')).exitCode).toBe(0);
    const state = new StateStore(b.stateDir);
    const att = state.loadAttachment('c1', 'net1') as Attachment;
    const file = join(state.attachmentsDir, readdirSync(state.attachmentsDir)[0] as string);
    writeFileSync(file, JSON.stringify({ ...att, phase: 'adding', owner: DEAD_OWNER }));
    b.ipam.resetLog();
    const out = await b.run('ADD');
    expect(out.exitCode).toBe(0);
    expect(b.ipam.commands()).toEqual(['DEL', 'ADD']);
    expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ portUuid: att.dpu?.portUuid })]);
    expect(b.dpu.ports.size).toBe(1);
    expect(state.listAllocations()).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8')).phase).toBe('ready');
    expect(b.host.link(NS, 'net1')?.up).toBe(true);
  });
});
