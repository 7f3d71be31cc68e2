/**
 * End-to-end check of the testbed's OVN emulation (`testbed.sh up --ovn`) WITHOUT the plugin: a logical switch
 * and two ports made by hand with ovn-nbctl, representors plugged into br-int by hand, VFs moved into containers
 * by hand; then real traffic between two hosts through ovn-controller's Geneve tunnel on the emulated DPUs.
 */
import { spawnSync } from 'node:child_process';
import {
  container, dpuCtl, dpuExec, inNetns, ovnCentral, ovnNbctl, ovnSbctl, p0Packets, PREFIX, removeContainers, sh, site,
  type Site, type Testbed, TESTBED, testbedDown, testbedUp, vfToContainer, vfToHost, type Vf,
} from '../testkit/testbed';

jest.setTimeout(120000);

let tb: Testbed;
let A: Site;
let B: Site;

beforeAll(() => {
  tb = testbedUp(2, 'a,b', 1, { ovn: true });
  A = site(tb, 'a');
  B = site(tb, 'b');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const VNI = 100;
const ip: Record<string, string> = { a: '10.100.0.1', b: '10.100.0.2' };
const lsp = (s: Site): string => `lsp-${s.name}`;
const vf0 = (s: Site): Vf => s.vfs[0] as Vf;

function pingRetry(from: string, to: string): boolean {
  // the first packets after ovn-installed may still race the last flows
  for (let i = 0; i < 10; i++) {
    if (inNetns(from, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', to]).status === 0) return true;
  }
  return false;
}

describe('testbed --ovn', () => {
  test('env, central and one chassis per DPU with its keys, br-int and ovn-controller', () => {
    const ovn = ovnCentral(tb);
    expect(ovn).toMatchObject({ netns: `${PREFIX}-ovn`, nb: `tcp:${ovn.address}:6641`, sb: `tcp:${ovn.address}:6642`, encapType: 'geneve' });
    const chassis = ovnSbctl(tb, '--bare', '--columns=name', 'list', 'Chassis').split('\n').filter(Boolean).sort();
    expect(chassis).toEqual([A.ovnSystemId, B.ovnSystemId].sort());
    for (const s of [A, B]) {
      expect(s.ovnSystemId).toBe(`${PREFIX}-chassis-${s.dpu}`);
      const id = (key: string): string => dpuExec(s.dpu, 'ovs-vsctl', 'get', 'Open_vSwitch', '.', `external_ids:${key}`).trim().replace(/^"(.*)"$/, '$1');
      expect(id('system-id')).toBe(s.ovnSystemId);
      expect(id('ovn-remote')).toBe(ovn.sb);
      expect(id('ovn-nb')).toBe(ovn.nb);
      expect(id('ovn-encap-ip')).toBe(s.localVtep);
      expect(id('ovn-encap-type')).toBe('geneve');
      expect(id('ovn-bridge-datapath-type')).toBe('netdev');
      expect(dpuExec(s.dpu, 'hostname').trim()).not.toBe(s.ovnSystemId);
      expect(dpuExec(s.dpu, 'ovs-vsctl', 'get', 'Bridge', 'br-int', 'datapath_type').trim()).toBe('netdev');
      // as in a DPU SSH session: the default OVN run dir is the DPU's own
      expect(dpuExec(s.dpu, 'ovn-appctl', '-t', 'ovn-controller', 'connection-status').trim()).toBe('connected');
      // the NB as the DPU reaches it (what the plugin's NB transactions will use)
      expect(dpuExec(s.dpu, 'ovsdb-client', '--timeout=10', 'transact', ovn.nb, '["OVN_Northbound",{"op":"comment","comment":"e2e"}]').trim()).toBe('[{}]');
    }
  });

  test('two ports on logical switch vni100, made by hand, ping across hosts over Geneve with VNI 100 on the wire', () => {
    ovnNbctl(tb, 'ls-add', `vni${VNI}`, '--', 'set', 'Logical_Switch', `vni${VNI}`, `other_config:requested-tnl-key=${VNI}`);
    const ctr: Record<string, string> = {};
    for (const s of [A, B]) {
      ovnNbctl(tb, 'lsp-add', `vni${VNI}`, lsp(s),
        '--', 'lsp-set-addresses', lsp(s), `${vf0(s).mac} ${ip[s.name]}`,
        '--', 'lsp-set-options', lsp(s), `requested-chassis=${s.ovnSystemId}`);
      dpuExec(s.dpu, 'ovs-vsctl', '--timeout=10', 'add-port', 'br-int', vf0(s).representor,
        '--', 'set', 'Interface', vf0(s).representor, `external_ids:iface-id=${lsp(s)}`);
      ctr[s.name] = container(`ovn-${s.name}`);
      vfToContainer(s, vf0(s), ctr[s.name] as string, 'eth0', `${ip[s.name]}/24`);
    }
    for (const s of [A, B]) {
      dpuExec(s.dpu, 'ovs-vsctl', '--timeout=20', 'wait-until', 'Interface', vf0(s).representor, 'external_ids:ovn-installed="true"');
      expect(ovnNbctl(tb, 'get', 'Logical_Switch_Port', lsp(s), 'up').trim()).toBe('true');
    }
    expect(ovnSbctl(tb, 'get', 'Datapath_Binding', ovnSbctl(tb, '--bare', '--columns=_uuid', 'find', 'Datapath_Binding', `external_ids:name=vni${VNI}`).trim(), 'tunnel_key').trim()).toBe(String(VNI));

    // count Geneve with VNI 100 arriving on b's p0 (Geneve header: VNI in bytes 4-6, after the 8-byte UDP header)
    dpuExec(B.dpu, 'nft', 'insert', 'rule', 'netdev', 'dpuo', 'ingress', 'udp', 'dport', '6081', '@th,96,24', String(VNI), 'counter', 'drop', 'comment', '"geneve-vni100"');
    const before = p0Packets(B.dpu, 'geneve-vni100');
    const geneveToA = p0Packets(A.dpu);
    expect(pingRetry(ctr.a as string, ip.b as string)).toBe(true);
    expect(pingRetry(ctr.b as string, ip.a as string)).toBe(true);
    expect(p0Packets(B.dpu, 'geneve-vni100')).toBeGreaterThan(before);
    // and the testbed's own Geneve counter on a's p0 counts b's replies
    expect(p0Packets(A.dpu)).toBeGreaterThan(geneveToA);

    // one geneve port per remote chassis, on br-int, towards the other DPU's VTEP
    for (const [s, peer] of [[A, B], [B, A]] as Array<[Site, Site]>) {
      const tunnels = dpuExec(s.dpu, 'ovs-vsctl', '--columns=name,options', 'find', 'Interface', 'type=geneve');
      expect(tunnels).toContain(`remote_ip="${peer.localVtep}"`);
      const tunnelName = dpuExec(s.dpu, 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Interface', 'type=geneve').trim();
      expect(dpuExec(s.dpu, 'ovs-vsctl', 'port-to-br', tunnelName).trim()).toBe('br-int');
    }
    // and the datapath encapsulates with that VNI
    expect(dpuExec(A.dpu, 'ovs-appctl', 'dpctl/dump-flows')).toMatch(/geneve\(crit,vni=0x64\b/);

    // clean up by hand: ports off br-int, VFs home, logical ports and switch gone
    for (const s of [A, B]) {
      vfToHost(s, vf0(s), ctr[s.name] as string, 'eth0');
      dpuExec(s.dpu, 'ovs-vsctl', '--timeout=10', 'del-port', 'br-int', vf0(s).representor);
      ovnNbctl(tb, 'lsp-del', lsp(s));
    }
    ovnNbctl(tb, 'ls-del', `vni${VNI}`);
    expect(ovnNbctl(tb, 'show').trim()).toBe('');
    for (const s of [A, B]) {
      expect(dpuExec(s.dpu, 'ovs-vsctl', 'list-ports', 'br-int')).not.toContain(vf0(s).representor);
      expect(spawnSync('ip', ['-n', s.hostNetns, 'link', 'show', 'dev', vf0(s).netdev]).status).toBe(0);
    }
  });

  test('fault controls: ovn-controller stop/start on a DPU, NB block/unblock and stop/start at the central', () => {
    dpuCtl(A.dpu, 'ovn-controller-stop');
    expect(spawnSync('bash', [TESTBED, 'dpu-exec', A.dpu, 'ovn-appctl', '-t', 'ovn-controller', 'connection-status']).status).not.toBe(0);
    expect(spawnSync('bash', [TESTBED, 'status'], { encoding: 'utf8' }).stdout).toMatch(/ovn-controller=DEAD/);
    dpuCtl(A.dpu, 'ovn-controller-start');
    sh('bash', [TESTBED, 'status']);

    const nbPing = (): number => spawnSync('bash', [TESTBED, 'dpu-exec', A.dpu, 'ovsdb-client', '--timeout=2', 'transact', ovnCentral(tb).nb,
      '["OVN_Northbound",{"op":"comment","comment":"e2e"}]']).status ?? -1;
    sh('bash', [TESTBED, 'ovn-ctl', 'nb-block']);
    expect(nbPing()).not.toBe(0);
    sh('bash', [TESTBED, 'ovn-ctl', 'nb-unblock']);
    expect(nbPing()).toBe(0);
    sh('bash', [TESTBED, 'ovn-ctl', 'nb-stop']);
    expect(nbPing()).not.toBe(0);
    sh('bash', [TESTBED, 'ovn-ctl', 'nb-start']);
    expect(nbPing()).toBe(0);
  });
});
