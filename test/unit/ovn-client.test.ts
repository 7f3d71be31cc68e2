import { dpuRejectionOf } from './helpers/errors';
import type { PlugRequest } from '../../src/dpu/api';
import { type ChassisCache, OvnDpuClient, type OvnClientSettings, ovnExecTimeoutMs } from '../../src/dpu/ovn/client';
import { DpuConfigSchema } from '../../src/config/schema';
import { DpuConnection } from '../../src/daemon/connection';
import { OvsDpuClient } from '../../src/dpu/ovs/client';
import { sshDpuClient } from '../../src/plugin/dpu-client';
import { portName } from '../../src/dpu/ovn/commands';
import type { DpuTransport, ExecResult } from '../../src/dpu/ssh';
import { memoryLogger, silentLogger } from './helpers/logger';

const IFACE = '11111111-1111-4111-8111-111111111111';
const PORT = '22222222-2222-4222-8222-222222222222';
const BR = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const L = '0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60';

const s: OvnClientSettings = {
  timeoutMs: 10000, hwOffload: 'enable', ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 }, bridgePrefix: 'br-vni', datapathType: 'system', remoteVteps: [],
};
const req: PlugRequest = { network: 'ovl', vni: 100, containerId: 'c1', ifname: 'net1', netns: '/run/netns/a', representor: 'pf0vf0', mtu: 1400, mac: '02:aa:00:00:00:01', ips: ['10.0.0.2'], host: 'h1' };
const P = portName('dpuo-a', req);

const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
const fail = (exitCode: number, stderr: string, stdout = ''): ExecResult => ({ exitCode, stdout, stderr });
const table = (headings: string[], data: unknown[][]) => JSON.stringify({ data, headings });
const ovsConfig = (hw: string) => table(['other_config'], [[['map', [['hw-offload', hw]]]]]);
const CHASSIS = ok('dpuo-a\n"198.51.100.2"\ngeneve\n');
const ENSURED = '[{},{"uuid":["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000064"]}]';
const ADDED = (l: string) => `[{},{"uuid":["uuid","${l}"]},{"count":1}]`;
/** Whether an ADD line ensures the switch (the first plug on a VNI through a connection) or only adds the port. */
const ensures = (cmd: string) => cmd.includes('"op":"insert","table":"Logical_Switch","uuid"');
const plugged = (cmd: string) => ok(`${ensures(cmd) ? `${ENSURED}\n` : ''}${ADDED(lspUuidOf(cmd))}\n${IFACE}\n${PORT}\n${ovsConfig('true')}\n`);
/** The logical port UUID the plugin chose for this ADD line (random per ADD). */
const lspUuidOf = (cmd: string) => /"op":"insert","table":"Logical_Switch_Port","uuid":"([0-9a-f-]{36})"/.exec(cmd)?.[1] ?? 'none';

class FakeTransport implements DpuTransport {
  readonly target = 'root@192.0.2.10:22';
  readonly commands: string[] = [];
  constructor(private readonly answers: Array<ExecResult | ((cmd: string) => ExecResult)> = []) {}
  async exec(command: string): Promise<ExecResult> {
    this.commands.push(command);
    const a = this.answers.shift();
    if (a === undefined) throw new Error(`FakeTransport: unexpected command ${command}`);
    return typeof a === 'function' ? a(command) : a;
  }
  close(): void {}
}

const client = (t: FakeTransport, cache: ChassisCache = {}, settings: Partial<OvnClientSettings> = {}, log = silentLogger()) => new OvnDpuClient(t, { ...s, ...settings }, log, cache);
const codeOf = dpuRejectionOf;

describe('plug', () => {
  it('reads the chassis once, then one round trip per ADD; returns br-int, the OVS port and the logical port', async () => {
    const t = new FakeTransport([CHASSIS, plugged, plugged]);
    const c = client(t);
    const r = await c.plug(req);
    expect(r).toEqual({ bridge: 'br-int', portUuid: PORT, lsp: { uuid: lspUuidOf(t.commands[1] as string), name: P } });
    expect(t.commands[0]).toBe('ovs-vsctl --timeout=10 --if-exists get Open_vSwitch . external_ids:system-id external_ids:ovn-encap-ip external_ids:ovn-encap-type');
    const line = t.commands[1] as string;
    expect(line.split(' && ').map((c) => c.split(' ')[0])).toEqual(['ip', 'ovsdb-client', 'ovsdb-client', 'ovs-vsctl', 'ovs-vsctl']);
    expect(line).toContain('"addresses":"02:aa:00:00:00:01 10.0.0.2","port_security":"02:aa:00:00:00:01 10.0.0.2"');
    const second = await c.plug({ ...req, containerId: 'c2' });
    expect(second.lsp?.uuid).not.toBe(r.lsp?.uuid);
    expect(t.commands).toHaveLength(3);
  });

  it('a later ADD on a VNI whose switch this connection has seen skips the ensure: one NB transaction', async () => {
    const t = new FakeTransport([CHASSIS, plugged, plugged, plugged, ok(), plugged]);
    const c = client(t);
    const programs = (line: string | undefined) => (line as string).split(' && ').map((w) => w.split(' ')[0]);
    await c.plug(req);
    await c.plug({ ...req, containerId: 'c2' });
    await c.plug({ ...req, containerId: 'c3', vni: 200 });
    expect(programs(t.commands[1])).toEqual(['ip', 'ovsdb-client', 'ovsdb-client', 'ovs-vsctl', 'ovs-vsctl']);
    expect(programs(t.commands[2])).toEqual(['ip', 'ovsdb-client', 'ovs-vsctl', 'ovs-vsctl']);
    expect(ensures(t.commands[3] as string)).toBe(true);
    // a DEL may delete the VNI's switch (when it empties it): the next ADD there ensures it again
    await c.unplug({ ...req, portUuid: PORT, lsp: { uuid: L, name: P } });
    const r = await c.plug({ ...req, containerId: 'c4' });
    expect(ensures(t.commands[5] as string)).toBe(true);
    expect(r.portUuid).toBe(PORT);
  });

  it('the switch gone since this connection saw it (the last port\'s DEL elsewhere): the same ADD again with the ensure', async () => {
    const cache: ChassisCache = { switches: new Set(['vni100']) };
    const log = memoryLogger();
    const t = new FakeTransport([CHASSIS, fail(65, 'dpu-guard: OVN_Northbound add-port: timed out: "where" clause test failed'), plugged]);
    const r = await client(t, cache, {}, log.log).plug(req);
    expect(ensures(t.commands[1] as string)).toBe(false);
    expect(ensures(t.commands[2] as string)).toBe(true);
    expect(r.lsp?.uuid).toBe(lspUuidOf(t.commands[2] as string));
    expect(log.records.some((x) => x.retry === 'switch-gone')).toBe(true);
    expect(cache.switches?.has('vni100')).toBe(true);
  });

  it('the chassis cache is shared (the daemon reads it once per connection)', async () => {
    const cache: ChassisCache = {};
    await client(new FakeTransport([CHASSIS, plugged]), cache).plug(req);
    const t = new FakeTransport([plugged]);
    await client(t, cache).plug(req);
    expect(t.commands).toHaveLength(1);
  });

  it('NB unreachable (guard exit 69): code 11, and nothing to roll back', async () => {
    const t = new FakeTransport([CHASSIS, fail(69, 'dpu-guard: OVN_Northbound ensure-switch: ovsdb-client exit 1: cannot reach the northbound server tcp:198.51.100.254:6641 (external_ids:ovn-nb)')]);
    const err = await codeOf(client(t).plug(req));
    expect(err.code).toBe(11);
    expect(err.message).toMatch(/northbound database cannot be reached from the DPU/);
    expect(t.commands).toHaveLength(2);
  });

  it('port not up in time (ovn-controller down): code 11, and the logical and OVS ports are rolled back', async () => {
    const timedOut = (cmd: string) => fail(142, 'dpu-guard: ovs-vsctl --timeout=10 wait-until Interface pf0vf0 external_ids:ovn-installed="true": terminated by signal 14 (SIGALRM: timeout)', plugged(cmd).stdout);
    const t = new FakeTransport([CHASSIS, timedOut, ok('[{},{"count":1}]\n[{},{"count":1}]\n')]);
    const err = await codeOf(client(t).plug(req));
    expect(err.code).toBe(11);
    expect(err.message).toMatch(/did not come up within dpu.ovn.upTimeoutMs \(10000 ms\).*connection-status/);
    const rollback = t.commands[2] as string;
    const l = lspUuidOf(t.commands[1] as string);
    expect(rollback).toContain(`"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${PORT}"]]`);
    expect(rollback).toContain(`"op":"wait","table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","${l}"]],["name","==","${P}"]`);
    expect(rollback).toContain('"name","==","vni100"');
  });

  it('br-int missing: code 112 saying ovn-controller creates it; the logical port goes again', async () => {
    const noBrInt = (cmd: string) => fail(1, 'ovs-vsctl: no row "br-int" in table Bridge', `${ENSURED}\n${ADDED(lspUuidOf(cmd))}\n`);
    const t = new FakeTransport([CHASSIS, noBrInt, ok()]);
    const err = await codeOf(client(t).plug(req));
    expect(err.code).toBe(112);
    expect(err.message).toMatch(/no br-int: ovn-controller creates it/);
    expect(t.commands[2]).not.toContain('remove Bridge');
    expect(t.commands[2]).toContain('"table":"Logical_Switch_Port"');
  });

  it('the switch removed by another DPU between ENSURE and the port insert: the line is sent once more', async () => {
    const t = new FakeTransport([CHASSIS, fail(65, 'dpu-guard: OVN_Northbound add-port: timed out: "where" clause test failed'), plugged]);
    const log = memoryLogger();
    expect((await client(t, {}, {}, log.log).plug(req)).portUuid).toBe(PORT);
    expect(t.commands).toHaveLength(3);
    expect(log.records.some((r) => r.retry === 'switch-gone')).toBe(true);
  });

  it('a stale logical port with our name (a killed ADD): found by name, removed, then added again', async () => {
    const stale = `[{"rows":[{"_uuid":["uuid","${L}"],"addresses":"x","external_ids":["map",[["dpu-overlay.vni","100"]]],"name":"${P}","options":["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]],"port_security":["set",[]],"up":false}]}]`;
    const t = new FakeTransport([CHASSIS, fail(65, 'dpu-guard: OVN_Northbound add-port: constraint violation: Transaction causes multiple rows'), ok(`${stale}\n${table(['_uuid', 'name', 'external_ids'], [])}\n`), ok(), plugged]);
    expect((await client(t).plug(req)).portUuid).toBe(PORT);
    expect(t.commands[2]).toContain(`"where":[["name","==","${P}"]]`);
    expect(t.commands[3]).toContain(`["uuid","${L}"]`);
    expect(t.commands[3]).toContain('"delete","table":"Logical_Switch"');
  });

  it('the guard says the system-id changed (DPU reinstalled): the chassis is read again and the line resent once', async () => {
    const t = new FakeTransport([CHASSIS, fail(126, "dpu-guard: refused: ovsdb-client transact OVN_Northbound: add-port: requested-chassis is not this DPU's system-id"), ok('dpuo-b\n"198.51.100.2"\ngeneve\n'), plugged]);
    const r = await client(t).plug(req);
    expect(r.lsp?.name).toBe(portName('dpuo-b', req));
    expect(t.commands[3]).toContain('["requested-chassis","dpuo-b"]');
  });

  it('a foreign switch with our name, or our VNI under another prefix: code 112 saying which', async () => {
    const foreign = new FakeTransport([CHASSIS, fail(65, 'dpu-guard: OVN_Northbound ensure-switch: timed out: "where" clause test failed')]);
    expect((await codeOf(client(foreign).plug(req))).message).toMatch(/exists that dpu-overlay did not create/);
    const renamed = fail(65, 'dpu-guard: OVN_Northbound add-port: timed out: "where" clause test failed');
    const t = new FakeTransport([CHASSIS, renamed, renamed]);
    const err = await codeOf(client(t).plug(req));
    expect(err.code).toBe(112);
    expect(err.message).toMatch(/another dpu.ovn.switchPrefix/);
  });

  describe('the representor has a port already (the plug never deletes one by name)', () => {
    const taken = (cmd: string) => fail(1, 'ovs-vsctl: transaction error: {"details":"Transaction causes multiple rows in \\"Interface\\" table to have identical values (\\"pf0vf0\\") for index on column \\"name\\".","error":"constraint violation"}', `${ENSURED}\n${ADDED(lspUuidOf(cmd))}\n`);
    const holder = (c: string) => ok(table(['_uuid', 'name', 'external_ids'], [[['uuid', IFACE], 'pf0vf0', ['map', [['dpu-overlay.container', c], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container']]]]]));

    it('the same line repeated after a lost channel: "duplicate uuid" is its own logical port, its own OVS port is replaced, and it succeeds', async () => {
      // what the DPU answers to the line run a second time: the switch and the logical port exist (both tolerated)
      const repeated = (cmd: string) => fail(1, taken(cmd).stderr, `${ENSURED}\n[{},{"details":"insert operation not allowed when UUID is already in use","error":"duplicate uuid"}]\n`);
      const again = () => ok(`[{},{"count":1}]\n${ENSURED}\n[{},{"details":"x","error":"duplicate uuid"}]\n${IFACE}\n${PORT}\n${ovsConfig('true')}\n`);
      const t = new FakeTransport([CHASSIS, repeated, holder('c1'), again]);
      const r = await client(t).plug(req);
      const l = lspUuidOf(t.commands[1] as string);
      expect(r).toEqual({ bridge: 'br-int', portUuid: PORT, lsp: { uuid: l, name: P } });
      // the same logical port (same UUID) again, after the owner-checked removal of our own OVS port
      expect(lspUuidOf(t.commands[3] as string)).toBe(l);
      expect((t.commands[3] as string).split(' && ')[0]).toContain(`"where":[["_uuid","==",["uuid","${IFACE}"]]`);
      expect(t.commands).toHaveLength(4);
    });

    it('another live attachment\'s port: not moved (102), and this ADD\'s logical port is rolled back', async () => {
      const t = new FakeTransport([CHASSIS, taken, holder('c9'), ok('[{},{"count":1}]\n[{},{"count":1}]\n')]);
      const err = await codeOf(client(t).plug(req));
      expect(err.code).toBe(102);
      expect(err.message).toMatch(/container c9/);
      expect(t.commands[3]).toContain(`"table":"Logical_Switch_Port","where":[["_uuid","==",["uuid","${lspUuidOf(t.commands[1] as string)}"]]`);
      expect(t.commands[3]).not.toContain('"table":"Port"');
    });
  });

  it('an op error the guard did not catch (no guard?) is still an error', async () => {
    const t = new FakeTransport([CHASSIS, ok(`[{"details":"x","error":"timed out"},null]\n${ADDED(L)}\n${IFACE}\n${PORT}\n`)]);
    expect((await codeOf(client(t).plug(req))).message).toMatch(/OVN_Northbound: timed out/);
  });
});

describe('unplug', () => {
  const lsp = { uuid: L, name: P };
  it('with the record: one round trip, OVS port first, then the owner-checked logical port, then the switch if empty', async () => {
    const t = new FakeTransport([ok()]);
    await client(t).unplug({ ...req, portUuid: PORT, lsp });
    expect(t.commands).toHaveLength(1);
    const cmds = (t.commands[0] as string).split(' && ');
    expect(cmds[0]).toMatch(/^ovsdb-client transact /);
    expect(cmds[0]).toContain(`"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${PORT}"]]`);
    expect(cmds[0]).toContain('["dpu-overlay.container","c1"],["dpu-overlay.ifname","net1"],["dpu-overlay.network","ovl"],["dpu-overlay.role","container"]');
    expect(cmds[1]).toContain(`["options","includes",["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]]]`);
    expect(cmds[2]).toContain('"columns":["ports"],"until":"==","rows":[{"ports":["set",[]]}]');
  });

  it('NB unreachable: code 11 (DEL keeps the record and is retried)', async () => {
    const t = new FakeTransport([fail(69, 'dpu-guard: OVN_Northbound delete-port: ovsdb-client exit 1: cannot reach the northbound server')]);
    expect((await codeOf(client(t).unplug({ ...req, portUuid: PORT, lsp }))).code).toBe(11);
  });

  it('a DPU reinstalled with a new system-id: the OVS port goes, the old chassis\'s logical port is left with a warning (DEL does not wedge)', async () => {
    const t = new FakeTransport([fail(126, "dpu-guard: refused: ovsdb-client transact OVN_Northbound: delete-port: requested-chassis is not this DPU's system-id"), ok()]);
    const log = memoryLogger();
    await client(t, {}, {}, log.log).unplug({ ...req, portUuid: PORT, lsp });
    expect(t.commands[1]).toMatch(/^ovsdb-client transact /);
    expect(t.commands[1]).toContain(`"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${PORT}"]]`);
    expect(t.commands[1]).not.toContain('OVN_Northbound');
    expect(log.records.some((r) => /ovn-nbctl lsp-del/.test(String(r.msg)))).toBe(true);
  });

  it('without a record: the chassis, then the port by name and the OVS ports by owner, then removal; only rows that are really ours', async () => {
    const rowsLine = `[{"rows":[{"_uuid":["uuid","${L}"],"addresses":"x","external_ids":["map",[]],"name":"${P}","options":["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]],"port_security":["set",[]],"up":true},`
      + `{"_uuid":["uuid","${IFACE}"],"addresses":"x","external_ids":["map",[]],"name":"${P}","options":["map",[["iface-id-ver","${L}"],["requested-chassis","dpuo-a"]]],"port_security":["set",[]],"up":true}]}]`;
    const t = new FakeTransport([CHASSIS, ok(`${rowsLine}\n${table(['_uuid', 'name', 'external_ids'], [[['uuid', PORT], 'pf0vf0', ['map', []]]])}\n`), ok()]);
    await client(t).unplug(req);
    expect(t.commands[1]).toContain(`ovs-vsctl --timeout=10 -f json -- --columns=_uuid,name,external_ids find Port 'external_ids:dpu-overlay.role="container"'`);
    expect(t.commands[2]).toContain(`"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${PORT}"]]`);
    expect(t.commands[2]).toContain(`["uuid","${L}"]`);
    expect(t.commands[2]).not.toContain(`["uuid","${IFACE}"]`);
  });

  it('without a record and nothing found: no removal', async () => {
    const t = new FakeTransport([CHASSIS, ok(`[{"rows":[]}]\n${table(['_uuid', 'name', 'external_ids'], [])}\n`)]);
    await client(t).unplug(req);
    expect(t.commands).toHaveLength(2);
  });
});

describe('check, gc, status, facts', () => {
  const lsp = { uuid: L, name: P };
  const lspLine = (over: Record<string, unknown> = {}) => JSON.stringify([
    { rows: [{ _uuid: ['uuid', L], addresses: '02:aa:00:00:00:01 10.0.0.2', external_ids: ['map', []], name: P, options: ['map', [['iface-id-ver', L], ['requested-chassis', 'dpuo-a']]], port_security: '02:aa:00:00:00:01 10.0.0.2', up: true, ...over }] },
    { rows: [{ name: 'vni100', other_config: ['map', [['requested-tnl-key', '100']]], ports: ['uuid', L] }] },
  ]);
  const ovsSide = (installed = 'true') => [
    table(['_uuid', 'name', 'external_ids'], [[['uuid', IFACE], 'pf0vf0', ['map', [['iface-id', P], ['iface-id-ver', L], ['ovn-installed', installed]]]]]),
    table(['_uuid', 'ports'], [[['uuid', BR], ['set', [['uuid', PORT]]]]]),
    table(['_uuid', 'name', 'external_ids'], [[['uuid', PORT], 'pf0vf0', ['map', [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl']]]]]),
    ovsConfig('true'),
  ].join('\n');

  it('check passes for a bound, up, installed port with the right addresses', async () => {
    const t = new FakeTransport([ok(`${lspLine()}\n${ovsSide()}\n`), ok('')]);
    await client(t).check({ ...req, lsp });
  });

  it.each<[string, string, RegExp]>([
    ['not up', lspLine({ up: false }), /is not up/],
    ['another chassis', lspLine({ options: ['map', [['iface-id-ver', L], ['requested-chassis', 'dpuo-b']]] }), /not bound to chassis dpuo-a/],
    ['other addresses', lspLine({ addresses: '02:aa:00:00:00:01 10.0.0.9' }), /has addresses/],
    ['no port security', lspLine({ port_security: ['set', []] }), /port_security/],
  ])('check fails (120) when the logical port is %s', async (_n, line, msg) => {
    const err = await codeOf(client(new FakeTransport([ok(`${line}\n${ovsSide()}\n`)])).check({ ...req, lsp }));
    expect(err.code).toBe(120);
    expect(err.message).toMatch(msg);
  });

  it('check fails when ovn-controller has not installed the representor', async () => {
    expect((await codeOf(client(new FakeTransport([ok(`${lspLine()}\n${ovsSide('false')}\n`)])).check({ ...req, lsp }))).message).toMatch(/ovn-installed/);
  });

  it('gc removes this chassis\'s stale logical ports and OVS ports of the network, keeping the valid ones', async () => {
    const row = (uuid: string, c: string) => ({ _uuid: ['uuid', uuid], addresses: 'x', external_ids: ['map', [['dpu-overlay.container', c], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.vni', '100']]], name: `dpuo-dpuo-a-${c.padStart(16, '0')}`, options: ['map', [['iface-id-ver', uuid], ['requested-chassis', 'dpuo-a']]], port_security: ['set', []], up: true });
    const mine = JSON.stringify([{ rows: [row(L, 'c1'), row(IFACE, 'c2')] }]);
    const ports = table(['_uuid', 'name', 'external_ids'], [[['uuid', PORT], 'pf0vf0', ['map', [['dpu-overlay.container', 'c2'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.vni', '100']]]]]);
    const t = new FakeTransport([CHASSIS, ok(`${mine}\n${ports}\n`), ok()]);
    expect(await client(t).gc('ovl', 100, [{ containerId: 'c1', ifname: 'net1' }])).toBe(1);
    expect(t.commands[1]).toContain('["requested-chassis","dpuo-a"]');
    expect(t.commands[2]).toContain(`["uuid","${IFACE}"]`);
    expect(t.commands[2]).not.toContain(`["uuid","${L}"]`);
    expect(t.commands[2]).toContain(`"op":"wait","table":"Port","where":[["_uuid","==",["uuid","${PORT}"]]`);
    expect(t.commands[2]).toContain('["dpu-overlay.container","c2"]');
  });

  it('status: connected, NB reachable and br-int present is fine; anything else is 50', async () => {
    const good = `connected\n[{}]\n${table(['_uuid', 'datapath_type'], [[['uuid', BR], 'netdev']])}\n${ovsConfig('true')}\n`;
    await client(new FakeTransport([ok(good)])).status();
    expect((await codeOf(client(new FakeTransport([ok(good.replace('connected', 'not connected'))])).status())).code).toBe(50);
    expect((await codeOf(client(new FakeTransport([fail(1, '2026-12-01T00:00:00Z|00001|unixctl|WARN|ovn-appctl: cannot read pidfile "/var/run/ovn/ovn-controller.pid"')])).status())).message).toMatch(/ovn-controller is not running/);
    expect((await codeOf(client(new FakeTransport([fail(69, 'dpu-guard: OVN_Northbound status: ovsdb-client exit 1', 'connected\n')])).status())).message).toMatch(/northbound/);
    expect((await codeOf(client(new FakeTransport([ok(`connected\n[{}]\n${table(['_uuid', 'datapath_type'], [])}\n${ovsConfig('true')}\n`)])).status())).message).toMatch(/no br-int/);
  });

  it('facts: the uplink of the DPU\'s ovn-encap-ip and the encapsulation, for the MTU check', async () => {
    const t = new FakeTransport([CHASSIS, ok('[{"ifindex":3,"ifname":"p0","mtu":1500,"addr_info":[]}]\n')]);
    expect(await client(t).facts({ representor: 'pf0vf0', pfIndex: 0, vfIndex: 0 })).toEqual({ uplink: { dev: 'p0', mtu: 1500 }, encap: { ip: '198.51.100.2', type: 'geneve' } });
    expect(t.commands[1]).toBe('ip -j addr show to 198.51.100.2');
    const noEncap = new FakeTransport([ok('dpuo-a\n\n\n')]);
    expect((await codeOf(client(noEncap).facts({ representor: 'pf0vf0', pfIndex: 0, vfIndex: 0 }))).message).toMatch(/ovn-encap-ip is not set/);
  });
});

describe('who gets the OVN client', () => {
  it('the plugin and the daemon choose it by dpu.controlPlane; the SSH limit covers the wait for the port', () => {
    const conf = DpuConfigSchema.parse({ host: '192.0.2.1', privateKeyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}`, controlPlane: 'ovn' });
    const direct = sshDpuClient(conf, silentLogger());
    expect(direct).toBeInstanceOf(OvnDpuClient);
    direct.close();
    const conn = new DpuConnection(conf, silentLogger());
    expect(conn.clientFor(conf)).toBeInstanceOf(OvnDpuClient);
    expect(conn.clientFor({ ...conf, controlPlane: 'static', localVtep: '192.0.2.5' })).toBeInstanceOf(OvsDpuClient);
    conn.close();
    expect(ovnExecTimeoutMs(conf)).toBeGreaterThan(conf.timeoutMs + conf.ovn.upTimeoutMs);
  });
});
