import fc from 'fast-check';
import type { PlugRequest } from '../../src/dpu/api';
import {
  addPortTxn, checkQuery, deletePortTxn, deleteSwitchIfEmptyTxn, ensureSwitchTxn, minePortsQuery, newLsp, type OvnSettings, plugCommands, portByNameQuery, portName, switchUuid,
  systemIdOfPort, unplugCommands,
} from '../../src/dpu/ovn/commands';

const s: OvnSettings = { timeoutMs: 10000, hwOffload: 'enable', ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 } };
const L = '0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60';
const req: PlugRequest = { network: 'net-a', vni: 100, containerId: 'c1', ifname: 'eth0', netns: '/run/netns/x', representor: 'pf0vf3', mtu: 1400, mac: '02:AA:00:00:00:01', ips: ['10.0.0.2', '2001:db8::5'], host: 'h1' };
const lsp = newLsp('dpuo-a', req, L);
const nb = (txn: unknown[]) => JSON.stringify(['OVN_Northbound', ...txn]);

describe('OVN northbound transactions (golden JSON: the guard compares them byte for byte)', () => {
  it('names: the switch UUID carries the VNI, the port name the chassis and a hash of the owner', () => {
    expect(switchUuid(100)).toBe('d9c0a7e0-0dfb-4f1e-8a5c-000000000064');
    expect(switchUuid(16777215)).toBe('d9c0a7e0-0dfb-4f1e-8a5c-000000ffffff');
    expect(lsp.name).toBe(portName('dpuo-a', req));
    expect(lsp.name).toMatch(/^dpuo-dpuo-a-[0-9a-f]{16}$/);
    expect(portName('dpuo-a', { ...req, ifname: 'eth1' })).not.toBe(lsp.name);
    expect(systemIdOfPort(lsp.name)).toBe('dpuo-a');
    expect(systemIdOfPort('vm1')).toBeUndefined();
  });

  it('ENSURE', () => {
    expect(nb(ensureSwitchTxn('vni', 100))).toBe(
      '["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["name","==","vni100"],["_uuid","!=",["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000064"]]],"columns":["name"],"until":"==","rows":[],"timeout":0},'
      + '{"op":"insert","table":"Logical_Switch","uuid":"d9c0a7e0-0dfb-4f1e-8a5c-000000000064","row":{"name":"vni100","other_config":["map",[["requested-tnl-key","100"]]],"external_ids":["map",[["dpu-overlay.managed","true"],["dpu-overlay.vni","100"]]]}}]',
    );
  });

  it('ADD_LSP, with and without port security', () => {
    const U = 'd9c0a7e0-0dfb-4f1e-8a5c-000000000064';
    const tail = `"options":["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]],"external_ids":["map",[["dpu-overlay.container","c1"],["dpu-overlay.host","h1"],["dpu-overlay.ifname","eth0"],["dpu-overlay.network","net-a"],["dpu-overlay.vni","100"]]]}},`
      + `{"op":"mutate","table":"Logical_Switch","where":[["_uuid","==",["uuid","${U}"]]],"mutations":[["ports","insert",["set",[["uuid","${L}"]]]]]}]`;
    const head = `["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["_uuid","==",["uuid","${U}"]]],"columns":["name"],"until":"==","rows":[{"name":"vni100"}],"timeout":0},`
      + `{"op":"insert","table":"Logical_Switch_Port","uuid":"${L}","row":{"name":"${lsp.name}","addresses":"02:aa:00:00:00:01 10.0.0.2 2001:db8::5",`;
    expect(nb(addPortTxn(s, req, 'dpuo-a', lsp))).toBe(`${head}"port_security":"02:aa:00:00:00:01 10.0.0.2 2001:db8::5",${tail}`);
    expect(nb(addPortTxn({ ...s, ovn: { ...s.ovn, portSecurity: false } }, req, 'dpuo-a', lsp))).toBe(`${head}${tail}`);
  });

  it('DEL_LSP waits on the port being ours (UUID, name, iface-id-ver and requested-chassis) before the mutate', () => {
    expect(nb(deletePortTxn(lsp, 'dpuo-a'))).toBe(
      `["OVN_Northbound",{"op":"wait","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","${L}"]],["name","==","${lsp.name}"],["options","includes",["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]]]],"columns":["name"],"until":"==","rows":[{"name":"${lsp.name}"}],"timeout":0},`
      + `{"op":"mutate","table":"Logical_Switch","where":[["ports","includes",["uuid","${L}"]]],"mutations":[["ports","delete",["set",[["uuid","${L}"]]]]]}]`,
    );
  });

  it('DEL_LS only while empty, and only our structured switch by UUID and name', () => {
    expect(nb(deleteSwitchIfEmptyTxn('vni', 7))).toBe(
      '["OVN_Northbound",{"op":"wait","table":"Logical_Switch","where":[["_uuid","==",["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000007"]],["name","==","vni7"]],"columns":["ports"],"until":"==","rows":[{"ports":["set",[]]}],"timeout":0},'
      + '{"op":"delete","table":"Logical_Switch","where":[["_uuid","==",["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000007"]]]}]',
    );
  });

  it('queries are pinned to our port name, our switch or our chassis', () => {
    const cols = '["_uuid","name","addresses","port_security","options","up","external_ids"]';
    expect(nb(portByNameQuery(lsp.name))).toBe(`["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[["name","==","${lsp.name}"]],"columns":${cols}}]`);
    expect(nb(minePortsQuery('dpuo-a', 'net-a'))).toBe(
      `["OVN_Northbound",{"op":"select","table":"Logical_Switch_Port","where":[["options","includes",["map",[["requested-chassis","dpuo-a"]]]],["external_ids","includes",["map",[["dpu-overlay.network","net-a"]]]]],"columns":${cols}}]`,
    );
    expect(nb(checkQuery('vni', 100, lsp))).toContain(`{"op":"select","table":"Logical_Switch","where":[["_uuid","==",["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000064"]],["name","==","vni100"]],"columns":["name","ports","other_config"]}]`);
  });

  it('ADD is one line: link up, ENSURE, ADD_LSP, the br-int plug with iface-id, the wait for ovn-installed', () => {
    const cmds = plugCommands(s, req, 'dpuo-a', lsp);
    expect(cmds.map((c) => c.slice(0, 3))).toEqual([
      ['ip', 'link', 'set'], ['ovsdb-client', '--timeout=10', 'transact'], ['ovsdb-client', '--timeout=10', 'transact'], ['ovs-vsctl', '--timeout=10', '-f'], ['ovs-vsctl', '--timeout=10', 'wait-until'],
    ]);
    const vs = cmds[3] as string[];
    expect(vs).toContain(`external_ids:iface-id="${lsp.name}"`);
    expect(vs).toContain(`external_ids:iface-id-ver="${L}"`);
    expect(vs.join(' ')).toContain('-- add Bridge br-int ports @p');
    expect(cmds[4]).toEqual(['ovs-vsctl', '--timeout=10', 'wait-until', 'Interface', 'pf0vf3', 'external_ids:ovn-installed="true"']);
    expect(plugCommands({ ...s, ovn: { ...s.ovn, upTimeoutMs: 2500 } }, req, 'dpuo-a', lsp)[4]?.[1]).toBe('--timeout=3');
  });

  it('DEL: OVS ports first, then each logical port, then each touched switch once', () => {
    const lsp2 = { uuid: 'a1b2c3d4-e5f6-4711-8899-aabbccddeeff', name: 'dpuo-dpuo-a-0000000000000001' };
    const owner = { network: 'ovl', containerId: 'c1', ifname: 'net1' };
    const cmds = unplugCommands(s, 'dpuo-a', [{ vni: 5, port: { uuid: L, name: 'pf0vf3', owner }, lsp }, { vni: 5, lsp: lsp2 }, { vni: 6, port: { uuid: lsp2.uuid, name: 'pf0vf4', owner } }]);
    expect(cmds.map((c) => c.slice(0, 2).join(' '))).toEqual(['ovsdb-client transact', 'ovsdb-client transact', 'ovsdb-client --timeout=10', 'ovsdb-client --timeout=10', 'ovsdb-client --timeout=10']);
    // the OVS ports: owner-checked Open_vSwitch transactions (never any br-int port by bare UUID)
    expect(cmds[0]?.[2]).toContain(`["Open_vSwitch",{"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${L}"]],["name","==","pf0vf3"]`);
    expect(cmds[1]?.[2]).toContain(`["uuid","${lsp2.uuid}"]`);
    expect(cmds[4]?.[3]).toContain('"vni5"');
    expect(unplugCommands(s, 'dpuo-a', [])).toEqual([]);
  });

  it('nothing a pod author controls reaches the DPU as a raw control character or an unescaped quote', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (containerId, ifname) => {
      const txn = plugCommands(s, { ...req, containerId, ifname }, 'dpuo-a', lsp)[2] as string[];
      const json = txn[3] as string;
      expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      expect(JSON.parse(json)[2].row.external_ids[1]).toEqual([['dpu-overlay.container', containerId], ['dpu-overlay.host', 'h1'], ['dpu-overlay.ifname', ifname], ['dpu-overlay.network', 'net-a'], ['dpu-overlay.vni', '100']]);
    }));
  });
});
