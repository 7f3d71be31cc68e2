import type { PlugRequest } from '../../src/dpu/api';
import { type OvsSettings, tunnelPortName } from '../../src/dpu/ovs/commands';
import { OvsDpuClient } from '../../src/dpu/ovs/client';
import type { DpuTransport, ExecResult } from '../../src/dpu/ssh';
import { argvAsRunBySh } from './helpers/argv-echo';
import { memoryLogger, silentLogger } from './helpers/logger';
import { removeTmpDirs } from './helpers/tmp';
import { dpuRejectionOf } from './helpers/errors';
import { DpuError, DpuPortOwned } from '../../src/dpu/errors';

afterAll(removeTmpDirs);

const IFACE = '11111111-1111-4111-8111-111111111111';
const PORT = '22222222-2222-4222-8222-222222222222';
const BR = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';
const TUN = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
const INTERNAL = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd';
const OTHER = 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee';

const s: OvsSettings = { bridgePrefix: 'br-vni', datapathType: 'system', localVtep: '192.0.2.1', remoteVteps: ['192.0.2.2'], hwOffload: 'enable', timeoutMs: 10000 };
const req: PlugRequest = { network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: '/run/netns/a', representor: 'pf0vf0', mtu: 1450 };

const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
const table = (headings: string[], data: unknown[][]) => JSON.stringify({ data, headings });
const ovsConfig = (hw?: string) => table(['other_config'], [[['map', hw === undefined ? [] : [['hw-offload', hw]]]]]);
const bridgeRow = (ports: string[]) => table(['_uuid', 'ports'], [[['uuid', BR], ports.length === 1 ? ['uuid', ports[0]] : ['set', ports.map((p) => ['uuid', p])]]]);
const uuids = (...u: string[]) => table(['_uuid'], u.map((x) => [['uuid', x]]));
const noRows = (headings: string[]) => table(headings, []);
/** The tunnel reading a plug ends with: bridge, tunnel ports, tunnel interfaces (per bridge). */
const tunnelRead = (remotes = ['192.0.2.2'], vni = 5001) =>
  [
    bridgeRow([TUN, PORT]),
    table(['_uuid', 'name', 'external_ids'], remotes.map((r) => [['uuid', TUN], tunnelPortName(vni, r), ['map', [['dpu-overlay.remote', r], ['dpu-overlay.role', 'tunnel'], ['dpu-overlay.vni', String(vni)]]]])),
    table(['name', 'options'], remotes.map((r) => [tunnelPortName(vni, r), ['map', [['key', String(vni)], ['local_ip', '192.0.2.1'], ['remote_ip', r]]]])),
  ].join('\n') + '\n';
const noBridgeRead = () => [noRows(['_uuid', 'ports']), noRows(['_uuid', 'name', 'external_ids']), noRows(['name', 'options'])].join('\n') + '\n';

/** A transport that records each command line and answers from a queue (or a function). */
class FakeTransport implements DpuTransport {
  readonly target = 'root@192.0.2.10:22';
  readonly commands: string[] = [];
  closed = 0;
  constructor(private readonly answers: Array<ExecResult | ((cmd: string) => ExecResult)> = []) {}
  async exec(command: string): Promise<ExecResult> {
    this.commands.push(command);
    const a = this.answers.shift();
    if (a === undefined) throw new Error(`FakeTransport: unexpected command ${command}`);
    return typeof a === 'function' ? a(command) : a;
  }
  close(): void {
    this.closed++;
  }
  /** The argv of each program the DPU's shell would run for command i. */
  argv(i: number): string[][] {
    return argvAsRunBySh(this.commands[i] as string);
  }
}

function client(t: FakeTransport, settings: Partial<OvsSettings> = {}, log = silentLogger()) {
  return new OvsDpuClient(t, { ...s, ...settings }, log);
}

describe('plugBatch (the daemon merging concurrent ADDs)', () => {
  const PORT2 = '33333333-3333-4333-8333-333333333333';
  const req2: PlugRequest = { ...req, containerId: 'c2', representor: 'pf0vf1' };

  it('one ip per representor, then one ovs-vsctl transaction with distinct @ids; results split per request', async () => {
    const t = new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n${OTHER}\n${PORT2}\n${ovsConfig('true')}\n${tunnelRead()}`)]);
    expect(await client(t).plugBatch([req, req2])).toEqual([{ bridge: 'br-vni5001', portUuid: PORT }, { bridge: 'br-vni5001', portUuid: PORT2 }]);
    const ran = t.argv(0);
    expect(ran.map((a) => a[0])).toEqual(['ip', 'ip', 'ovs-vsctl']);
    const vsctl = ran[2] as string[];
    // the bridge's tunnels are read at the end of the same transaction, once per bridge
    expect(vsctl.slice(-17).join(' ')).toMatch(/^-- --columns=_uuid,ports find Bridge name=br-vni5001 -- .* find Interface type=vxlan options:key=5001$/);
    expect(vsctl.filter((w) => w === 'name=br-vni5001')).toHaveLength(1);
    expect(vsctl.filter((w) => w.startsWith('--id='))).toEqual(['--id=@i0', '--id=@p0', '--id=@i1', '--id=@p1']);
    expect(vsctl).toContain('interfaces=@i1');
    expect(vsctl.filter((w) => /^@p\d$/.test(w))).toEqual(['@p0', '@p1']);
  });

  it('output that does not split into the requests is code 112 (the daemon then retries each alone)', async () => {
    const t = new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n`)]);
    expect(await dpuRejectionOf(client(t).plugBatch([req, req2]))).toMatchObject({ code: 112 });
  });
});

describe('plug', () => {
  it('sends ip + one ovs-vsctl transaction and returns the bridge and the new Port UUID', async () => {
    const t = new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n${tunnelRead()}`)]);
    expect(await client(t).plug(req)).toEqual({ bridge: 'br-vni5001', portUuid: PORT });
    expect(t.commands).toHaveLength(1);
    const ran = t.argv(0);
    // one ovs-vsctl run: the plug's transaction, with the bridge's tunnels read at its end
    expect(ran.map((a) => a[0])).toEqual(['ip', 'ovs-vsctl']);
    expect(ran[1]?.slice(-4)).toEqual(['find', 'Interface', 'type=vxlan', 'options:key=5001']);
    expect(ran[1]).toContain('--may-exist');
    expect(ran[1]).toContain('name=pf0vf0');
    expect(ran[1]).toContain(tunnelPortName(5001, '192.0.2.2'));
  });

  describe('a port of the representor\'s name exists (the plug never deletes by name)', () => {
    const taken = { exitCode: 1, stdout: '', stderr: `ovs-vsctl: transaction error: {"details":"Transaction causes multiple rows in \\"Port\\" table to have identical values (\\"pf0vf0\\") for index on column \\"name\\".","error":"constraint violation"}\n` };
    const holder = (ids: Array<[string, string]>) => ok(table(['_uuid', 'name', 'external_ids'], [[['uuid', OTHER], 'pf0vf0', ['map', ids]]]));
    const owned = (c: string): Array<[string, string]> => [['dpu-overlay.container', c], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container'], ['dpu-overlay.vni', '100']];

    it('its own earlier port (a repeated or interrupted ADD, a re-plug): removed owner-checked, then plugged again', async () => {
      const t = new FakeTransport([taken, holder(owned('c1')), ok(`[{},{"count":1}]\n${IFACE}\n${PORT}\n${ovsConfig('true')}\n`)]);
      expect(await client(t).plug(req)).toEqual({ bridge: 'br-vni5001', portUuid: PORT });
      expect(t.argv(1)[0]).toEqual(expect.arrayContaining(['find', 'Port', 'name=pf0vf0']));
      const again = t.argv(2);
      expect(again.map((a) => a[0])).toEqual(['ovsdb-client', 'ip', 'ovs-vsctl']);
      expect(again[0]?.[2]).toContain(`["uuid","${OTHER}"]`);
      expect(again[0]?.[2]).toContain('["dpu-overlay.container","c1"]');
    });

    it('another attachment\'s port: not moved, code 102 naming its owner (the plugin decides whether it is stale)', async () => {
      const t = new FakeTransport([taken, holder(owned('c9'))]);
      const err = await client(t).plug(req).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DpuPortOwned);
      expect(err).toMatchObject({ kind: 'port-owned', holder: { containerId: 'c9', ifname: 'net1', network: 'ovl', portUuid: OTHER } });
      expect((err as Error).message).toMatch(/pf0vf0 is plugged for another attachment \(container c9, ifname net1, network ovl\)/);
      expect(await dpuRejectionOf(client(new FakeTransport([taken, holder(owned('c9'))])).plug(req))).toMatchObject({ code: 102 });
      expect(t.commands).toHaveLength(2);
    });

    it('another attachment\'s port the plugin named as stale (reclaim): removed only while it still has that owner', async () => {
      const t = new FakeTransport([ok(`[{},{"count":1}]\n${IFACE}\n${PORT}\n${ovsConfig('true')}\n`)]);
      await client(t).plug({ ...req, reclaim: { network: 'ovl', containerId: 'c9', ifname: 'net1', portUuid: OTHER } });
      expect(t.argv(0)[0]?.[2]).toContain('["dpu-overlay.container","c9"]');
      // the named port was replaced meanwhile by a live one: refused again, nothing removed
      const t2 = new FakeTransport([taken, holder(owned('c7'))]);
      expect(await dpuRejectionOf(client(t2).plug({ ...req, reclaim: { network: 'ovl', containerId: 'c9', ifname: 'net1', portUuid: OTHER } }))).toMatchObject({ code: 102 });
    });

    it('a port dpu-overlay did not make: code 112 saying how to remove it', async () => {
      const t = new FakeTransport([taken, holder([['foo', 'bar']])]);
      const err = await dpuRejectionOf(client(t).plug(req));
      expect(err).toMatchObject({ code: 112 });
      expect(err.message).toMatch(/dpu-overlay did not make .*ovs-vsctl del-port pf0vf0/);
    });

    it('gone by the time it is looked up: plugged again without a removal', async () => {
      const t = new FakeTransport([taken, ok(noRows(['_uuid', 'name', 'external_ids'])), ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n`)]);
      expect(await client(t).plug(req)).toEqual({ bridge: 'br-vni5001', portUuid: PORT });
      expect(t.argv(2).map((a) => a[0])).toEqual(['ip', 'ovs-vsctl']);
    });
  });

  it('warns when hw-offload was not on yet (enable), and not when it was', async () => {
    const m1 = memoryLogger();
    await client(new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig()}\n`)]), {}, m1.log).plug(req);
    expect(m1.records.filter((r) => r.level === 40)).toHaveLength(1);
    const m2 = memoryLogger();
    await client(new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n`)]), {}, m2.log).plug(req);
    expect(m2.records.filter((r) => r.level === 40)).toHaveLength(0);
  });

  it('output without a port UUID is code 112', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([ok(`${IFACE}\n${ovsConfig('true')}\n`)])).plug(req))).toMatchObject({ code: 112 });
    expect(await dpuRejectionOf(client(new FakeTransport([ok(`${IFACE}\nnot-a-uuid\n`)])).plug(req))).toMatchObject({ code: 112 });
  });

  it('a failing command is code 112 with its stderr', async () => {
    const t = new FakeTransport([{ exitCode: 1, stdout: '', stderr: 'ovs-vsctl: no bridge named br-x\n' }]);
    const err = await dpuRejectionOf(client(t).plug(req));
    expect(err.code).toBe(112);
    expect(err.message).toContain('no bridge named br-x');
    expect(err.message).toContain('root@192.0.2.10:22');
  });

  it('unparseable JSON output is code 112', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([ok(`${IFACE}\n${PORT}\n{"data":[\n`)])).plug(req))).toMatchObject({ code: 112 });
  });

  it('hwOffload require: a timed-out wait for hw-offload is code 113', async () => {
    const t = new FakeTransport([{ exitCode: 142, stdout: '', stderr: 'ovs-vsctl: timeout expired\n' }]);
    expect(await dpuRejectionOf(client(t, { hwOffload: 'require' }).plug(req))).toMatchObject({ code: 113 });
    expect(t.argv(0).map((a) => a.slice(0, 3))).toEqual([
      ['ip', 'link', 'set'],
      ['ovs-vsctl', '--timeout=1', 'wait-until'],
      ['ovs-vsctl', '--timeout=10', '-f'],
    ]);
  });

  it('the same stderr without hwOffload require stays code 112', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([{ exitCode: 142, stdout: '', stderr: 'ovs-vsctl: timeout expired' }])).plug(req))).toMatchObject({ code: 112 });
  });
});

describe('unplugBatch (the daemon merging concurrent DELs)', () => {
  const PORT2 = '33333333-3333-4333-8333-333333333333';
  const tables = (ports: string[]) => [bridgeRow(ports), uuids(TUN), uuids(INTERNAL)].join('\n');

  it('one owner-checked transaction per port, one usage read; the last request on the bridge decides whether it goes', async () => {
    const t = new FakeTransport([ok(`[{},{"count":1}]\n[{},{"count":1}]\n${tables([TUN, INTERNAL])}\n${tables([TUN, INTERNAL])}\n`), ok('[{"count":1},{"count":1}]\n')]);
    await client(t).unplugBatch([{ ...req, portUuid: PORT }, { ...req, containerId: 'c2', representor: 'pf0vf1', portUuid: PORT2 }]);
    expect(t.commands).toHaveLength(2);
    const ran = t.argv(0);
    expect(ran.map((a) => a[0])).toEqual(['ovsdb-client', 'ovsdb-client', 'ovs-vsctl']);
    expect(ran[0]?.[2]).toContain(PORT);
    expect(ran[0]?.[2]).toContain('["dpu-overlay.container","c1"]');
    expect(ran[1]?.[2]).toContain(PORT2);
    expect(ran[1]?.[2]).toContain('["dpu-overlay.container","c2"]');
    expect((t.argv(1)[0] as string[])[0]).toBe('ovsdb-client');
  });

  it('output that does not split into the requests is code 112', async () => {
    const t = new FakeTransport([ok(`${tables([TUN, INTERNAL])}\n`)]);
    expect(await dpuRejectionOf(client(t).unplugBatch([{ ...req, portUuid: PORT }, { ...req, portUuid: PORT2 }]))).toMatchObject({ code: 112 });
  });
});

describe('unplug', () => {
  const usage = (ports: string[], removed = '[{},{"count":1}]') => ok([removed, bridgeRow(ports), uuids(TUN), uuids(INTERNAL)].join('\n') + '\n');

  it('by UUID; removes the bridge when only its tunnel and internal port remain, guarded by the exact port set', async () => {
    const t = new FakeTransport([usage([TUN, INTERNAL]), ok('[{"count":1},{"count":1}]\n')]);
    await client(t).unplug({ ...req, portUuid: PORT });
    expect(t.commands).toHaveLength(2);
    const [removal, read] = t.argv(0) as [string[], string[]];
    expect(removal.slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
    expect(JSON.parse(removal[2] as string)[1]).toMatchObject({ op: 'wait', table: 'Port', where: [['_uuid', '==', ['uuid', PORT]], ['name', '==', 'pf0vf0'], ['external_ids', 'includes', ['map', [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container']]]]] });
    expect(read[0]).toBe('ovs-vsctl');
    const second = t.argv(1)[0] as string[];
    expect(second.slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
    const txn = JSON.parse(second[2] as string) as Array<Record<string, unknown>>;
    expect(txn[1]).toMatchObject({ op: 'wait', where: [['_uuid', '==', ['uuid', BR]]], rows: [{ ports: ['set', [['uuid', TUN], ['uuid', INTERNAL]]] }], timeout: 0 });
    expect(txn[2]).toMatchObject({ op: 'mutate', mutations: [['bridges', 'delete', ['uuid', BR]]] });
  });

  it('keeps the bridge while another container port is on it', async () => {
    const t = new FakeTransport([usage([TUN, INTERNAL, OTHER])]);
    await client(t).unplug({ ...req, portUuid: PORT });
    expect(t.commands).toHaveLength(1);
  });

  it('a bridge that is already gone: nothing more', async () => {
    const t = new FakeTransport([ok(['[{"details":"\\"wait\\" timed out","error":"timed out"}]', noRows(['_uuid', 'ports']), noRows(['_uuid']), noRows(['_uuid'])].join('\n'))]);
    await client(t).unplug({ ...req, portUuid: PORT });
    expect(t.commands).toHaveLength(1);
  });

  it('a concurrent ADD that won the race (wait failed) is not an error', async () => {
    const m = memoryLogger();
    const t = new FakeTransport([usage([TUN, INTERNAL]), ok('[{"details":"...","error":"timed out"}]\n')]);
    await expect(client(t, {}, m.log).unplug({ ...req, portUuid: PORT })).resolves.toBeUndefined();
    expect(m.records.some((r) => r.removed === false)).toBe(true);
  });

  it('without a UUID: finds the owner ports first; none means nothing else is sent', async () => {
    const t = new FakeTransport([ok(noRows(['_uuid', 'name', 'external_ids']))]);
    await client(t).unplug({ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', representor: '' });
    expect(t.commands).toHaveLength(1);
    expect(t.argv(0)[0]).toEqual(expect.arrayContaining(['find', 'Port', 'external_ids:dpu-overlay.container="c1"', 'external_ids:dpu-overlay.ifname="net1"', 'external_ids:dpu-overlay.network="ovl"']));
  });

  it('a port meanwhile taken by another owner: its removal changes nothing (the wait fails), the rest goes on', async () => {
    const t = new FakeTransport([usage([TUN, INTERNAL, OTHER], '[{"details":"\\"wait\\" timed out","error":"timed out"}]')]);
    await expect(client(t).unplug({ ...req, portUuid: PORT })).resolves.toBeUndefined();
    expect(t.commands).toHaveLength(1);
  });

  it('without a UUID: removes every port of that owner, each by its owner-checked transaction', async () => {
    const found = table(['_uuid', 'name', 'external_ids'], [
      [['uuid', PORT], 'pf0vf0', ['map', [['dpu-overlay.container', 'c1']]]],
      [['uuid', OTHER], 'pf0vf1', ['map', [['dpu-overlay.container', 'c1']]]],
    ]);
    const t = new FakeTransport([ok(found), ok(['[{},{"count":1}]', '[{},{"count":1}]', bridgeRow([TUN, INTERNAL, 'ffffffff-ffff-4fff-8fff-ffffffffffff']), uuids(TUN), uuids(INTERNAL)].join('\n'))]);
    await client(t).unplug({ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', representor: '' });
    const ran = t.argv(1);
    expect(ran.map((a) => a[0])).toEqual(['ovsdb-client', 'ovsdb-client', 'ovs-vsctl']);
    expect(ran[0]?.[2]).toContain(`["uuid","${PORT}"]`);
    expect(ran[0]?.[2]).toContain('["name","==","pf0vf0"]');
    expect(ran[1]?.[2]).toContain(`["uuid","${OTHER}"]`);
  });

  it('a failing unplug is code 112', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([{ exitCode: 1, stdout: '', stderr: 'database connection failed' }])).unplug({ ...req, portUuid: PORT }))).toMatchObject({ code: 112 });
  });
});

describe('check', () => {
  const tunnel = tunnelPortName(5001, '192.0.2.2');
  const portRow = (ids: Array<[string, string]>) => table(['_uuid', 'name', 'external_ids'], [[['uuid', PORT], 'pf0vf0', ['map', ids]]]);
  const mine: Array<[string, string]> = [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl']];
  const tunnels = (remote = '192.0.2.2') => table(['name', 'options'], [[tunnel, ['map', [['key', '5001'], ['remote_ip', remote]]]]]);
  const answer = (parts: { bridge?: string; port?: string; tun?: string; ovs?: string }) =>
    ok(
      [
        parts.bridge ?? table(['_uuid', 'ports', 'datapath_type'], [[['uuid', BR], ['set', [['uuid', PORT], ['uuid', TUN]]], 'system']]),
        parts.port ?? portRow(mine),
        parts.tun ?? tunnels(),
        parts.ovs ?? ovsConfig('true'),
      ].join('\n'),
    );
  const flows = ok('ufid:1, recirc_id(0),in_port(2) actions:3\nufid:2, recirc_id(0),in_port(3) actions:2\n');

  it('passes when bridge, port, owner and tunnels match; then counts offloaded flows', async () => {
    const m = memoryLogger();
    const t = new FakeTransport([answer({}), flows]);
    await client(t, {}, m.log).check(req);
    expect(t.argv(1)).toEqual([['ovs-appctl', 'dpctl/dump-flows', 'type=offloaded']]);
    expect(m.records.some((r) => r.offloadedFlows === 2)).toBe(true);
  });

  it.each<[string, Parameters<typeof answer>[0], RegExp]>([
    ['bridge missing', { bridge: noRows(['_uuid', 'ports', 'datapath_type']) }, /bridge br-vni5001 does not exist/],
    ['port missing', { port: noRows(['_uuid', 'name', 'external_ids']) }, /no OVS port/],
    ['port on another bridge', { bridge: table(['_uuid', 'ports', 'datapath_type'], [[['uuid', BR], ['uuid', TUN], 'system']]) }, /not on bridge/],
    ['port owned by another container', { port: portRow([['dpu-overlay.container', 'c2'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl']]) }, /belongs to container c2/],
    ['port of another network', { port: portRow([['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'x']]) }, /belongs to/],
    ['tunnel missing', { tun: noRows(['name', 'options']) }, /VXLAN tunnel .* to 192.0.2.2 \(VNI 5001\) is missing/],
    ['tunnel to another remote', { tun: tunnels('192.0.2.99') }, /is missing/],
  ])('%s: code 120', async (_n, parts, msg) => {
    const t = new FakeTransport([answer(parts), flows]);
    const err = await dpuRejectionOf(client(t).check(req));
    expect(err.code).toBe(120);
    expect(err.message).toMatch(msg);
  });

  it('hwOffload require without hw-offload=true: code 120; with it: pass', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([answer({ ovs: ovsConfig('false') }), flows]), { hwOffload: 'require' }).check(req))).toMatchObject({ code: 120 });
    await expect(client(new FakeTransport([answer({}), flows]), { hwOffload: 'require' }).check(req)).resolves.toBeUndefined();
    await expect(client(new FakeTransport([answer({ ovs: ovsConfig('false') }), flows]), { hwOffload: 'enable' }).check(req)).resolves.toBeUndefined();
  });

  it('cannot count offloaded flows: still passes', async () => {
    await expect(client(new FakeTransport([answer({}), { exitCode: 2, stdout: '', stderr: 'no such command' }])).check(req)).resolves.toBeUndefined();
  });
});

describe('gc', () => {
  const ports = table(['_uuid', 'name', 'external_ids'], [
    [['uuid', PORT], 'pf0vf0', ['map', [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.vni', '5001']]]],
    [['uuid', OTHER], 'pf0vf1', ['map', [['dpu-overlay.container', 'c2'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.vni', '5001']]]],
    [['uuid', IFACE], 'pf0vf2', ['map', [['dpu-overlay.container', 'c3'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.vni', '7']]]],
  ]);
  const usage = ok([bridgeRow([TUN, INTERNAL, PORT]), uuids(TUN), uuids(INTERNAL)].join('\n'));

  it('removes ports of this network whose owner is not kept, per VNI bridge, and counts them', async () => {
    const t = new FakeTransport([ok(ports), usage, usage, ok(tunnelRead() + noBridgeRead())]);
    expect(await client(t).gc('ovl', 5001, [{ containerId: 'c1', ifname: 'net1' }])).toBe(2);
    expect(t.argv(0)[0]).toEqual(expect.arrayContaining(['external_ids:dpu-overlay.network="ovl"']));
    const removes = [1, 2].map((i) => {
      const [removal, read] = t.argv(i) as [string[], string[]];
      const wait = JSON.parse(removal[2] as string)[1] as { where: unknown[] };
      return [wait.where[0], wait.where[2], read.find((w) => w.startsWith('name=br-'))];
    });
    // each removal names the owner the port had when GC read it: a port re-plugged meanwhile stays
    expect(removes).toEqual([
      [['_uuid', '==', ['uuid', OTHER]], ['external_ids', 'includes', ['map', [['dpu-overlay.container', 'c2'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container']]]], 'name=br-vni5001'],
      [['_uuid', '==', ['uuid', IFACE]], ['external_ids', 'includes', ['map', [['dpu-overlay.container', 'c3'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container']]]], 'name=br-vni7'],
    ]);
  });

  it('a failing tunnel reading does not fail GC: logged, tried again by the next command', async () => {
    const m = memoryLogger();
    const t = new FakeTransport([ok(ports), usage, { exitCode: 1, stdout: '', stderr: 'database connection failed' }]);
    expect(await client(t, {}, m.log).gc('ovl', 5001, [{ containerId: 'c1', ifname: 'net1' }, { containerId: 'c2', ifname: 'net1' }, { containerId: 'c3', ifname: 'net1' }])).toBe(0);
    expect(m.records.some((r) => r.msg === 'could not reconcile VNI bridge tunnels with remoteVteps')).toBe(true);
  });

  it('nothing stale: the query, a look at the network\'s bridge (which keeps its containers), then the tunnel reading', async () => {
    const t = new FakeTransport([ok(ports), usage, ok(tunnelRead())]);
    expect(await client(t).gc('ovl', 5001, [{ containerId: 'c1', ifname: 'net1' }, { containerId: 'c2', ifname: 'net1' }, { containerId: 'c3', ifname: 'net1' }])).toBe(0);
    expect(t.commands).toHaveLength(3);
    expect(t.argv(1).map((a) => a[0])).toEqual(['ovs-vsctl']);
  });

  it('nothing stale but the bridge has no container (a daemon killed in its grace period): GC removes it', async () => {
    const t = new FakeTransport([ok(noRows(['_uuid', 'name', 'external_ids'])), ok([bridgeRow([TUN, INTERNAL]), uuids(TUN), uuids(INTERNAL)].join('\n')), ok('[{"count":1},{"count":1}]\n'), ok(noBridgeRead())]);
    expect(await client(t).gc('ovl', 5001, [])).toBe(0);
    expect(t.commands).toHaveLength(4);
    expect((t.argv(2)[0] as string[]).slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
  });
});

describe('an empty-bridge sink (the daemon)', () => {
  it('unplug hands the emptied bridge over instead of removing it; GC still removes it itself', async () => {
    const handed: unknown[] = [];
    const sink = { emptied: (_c: unknown, b: unknown) => void handed.push(b) };
    const t = new FakeTransport([ok(['[{},{"count":1}]', bridgeRow([TUN, INTERNAL]), uuids(TUN), uuids(INTERNAL)].join('\n') + '\n')]);
    await new OvsDpuClient(t, s, silentLogger(), sink).unplug({ ...req, portUuid: PORT });
    expect(t.commands).toHaveLength(1);
    expect(handed).toEqual([{ bridge: 'br-vni5001', bridgeUuid: BR, ports: [TUN, INTERNAL] }]);
    const g = new FakeTransport([ok(noRows(['_uuid', 'name', 'external_ids'])), ok([bridgeRow([TUN, INTERNAL]), uuids(TUN), uuids(INTERNAL)].join('\n')), ok('[{"count":1},{"count":1}]\n'), ok(noBridgeRead())]);
    await new OvsDpuClient(g, s, silentLogger(), sink).gc('ovl', 5001, []);
    expect(g.commands).toHaveLength(4);
    expect(handed).toHaveLength(1);
  });
});

describe('status and close', () => {
  it('status passes with hw-offload on, or when not required', async () => {
    await expect(client(new FakeTransport([ok(ovsConfig('true'))]), { hwOffload: 'require' }).status()).resolves.toBeUndefined();
    await expect(client(new FakeTransport([ok(ovsConfig())]), { hwOffload: 'enable' }).status()).resolves.toBeUndefined();
  });
  it('status: hwOffload require without hw-offload=true is code 113', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([ok(ovsConfig('false'))]), { hwOffload: 'require' }).status())).toMatchObject({ code: 113 });
  });
  it('status: ovs-vsctl failing is code 112', async () => {
    expect(await dpuRejectionOf(client(new FakeTransport([{ exitCode: 1, stdout: '', stderr: 'unix:/var/run/openvswitch/db.sock: database connection failed' }])).status())).toMatchObject({ code: 112 });
  });
  it('a transport error passes through unchanged', async () => {
    const t = new FakeTransport([
      () => {
        throw new DpuError('unreachable', 'cannot reach DPU');
      },
    ]);
    expect(await dpuRejectionOf(client(t).status())).toMatchObject({ code: 11, message: 'cannot reach DPU' });
  });
  it('close closes the transport; target comes from it', () => {
    const t = new FakeTransport();
    const c = client(t);
    expect(c.target).toBe('root@192.0.2.10:22');
    c.close();
    expect(t.closed).toBe(1);
  });
});

describe('tunnels follow remoteVteps (static mode)', () => {
  const GONE = '198.51.100.9';
  it('a plug whose reading shows a tunnel to a remote no longer configured removes it, owner-checked', async () => {
    const m = memoryLogger();
    const t = new FakeTransport([ok(`${IFACE}\n${PORT}\n${ovsConfig('true')}\n${tunnelRead(['192.0.2.2', GONE])}`), ok('[{},{"count":1}]\n')]);
    expect(await client(t, {}, m.log).plug(req)).toEqual({ bridge: 'br-vni5001', portUuid: PORT });
    expect(t.commands).toHaveLength(2);
    const [removal] = t.argv(1);
    expect(removal?.slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
    const txn = JSON.parse(removal?.[2] as string) as [string, { rows: unknown[] }, { where: unknown[]; mutations: unknown[] }];
    expect(txn[1].rows).toEqual([{ name: tunnelPortName(5001, GONE), external_ids: ['map', [['dpu-overlay.remote', GONE], ['dpu-overlay.role', 'tunnel'], ['dpu-overlay.vni', '5001']]] }]);
    expect(txn[2].where).toEqual([['name', '==', 'br-vni5001']]);
    expect(m.records.some((r) => r.msg === 'VNI bridge tunnels reconciled with remoteVteps')).toBe(true);
  });

  it('a tunnel port without the plugin name or on another bridge is left alone', async () => {
    const foreign = table(['_uuid', 'name', 'external_ids'], [
      [['uuid', OTHER], 'vxdeadbeef', ['map', [['dpu-overlay.remote', GONE], ['dpu-overlay.role', 'tunnel'], ['dpu-overlay.vni', '5001']]]],
      [['uuid', INTERNAL], tunnelPortName(5001, GONE), ['map', [['dpu-overlay.remote', GONE], ['dpu-overlay.role', 'tunnel'], ['dpu-overlay.vni', '5001']]]],
    ]);
    const reading = [bridgeRow([TUN, OTHER]), foreign, table(['name', 'options'], [])].join('\n');
    const t = new FakeTransport([ok(reading), ok('')]);
    const [d] = await client(t).reconcileTunnels([{ bridge: 'br-vni5001', vni: 5001 }]);
    expect(d?.extra).toEqual([]);
    expect(d?.missing).toEqual(['192.0.2.2']);
    // the missing tunnel is made again; nothing is removed
    expect(t.argv(1).map((a) => a[0])).toEqual(['ovs-vsctl']);
  });

  it('a renumbered local VTEP: the tunnel is stale and set again', async () => {
    const t = new FakeTransport([ok(tunnelRead()), ok('')]);
    const [d] = await client(t, { localVtep: '192.0.2.77' }).reconcileTunnels([{ bridge: 'br-vni5001', vni: 5001 }]);
    expect(d?.stale).toEqual(['192.0.2.2']);
    expect(t.argv(1)[0]).toContain('options:local_ip=192.0.2.77');
  });

  it('CHECK: a bridge whose tunnels differ is code 120 saying what differs, and is reconciled', async () => {
    const tunnel = tunnelPortName(5001, '192.0.2.2');
    const check = [
      table(['_uuid', 'ports', 'datapath_type'], [[['uuid', BR], ['set', [['uuid', PORT], ['uuid', TUN]]], 'system']]),
      table(['_uuid', 'name', 'external_ids'], [[['uuid', PORT], 'pf0vf0', ['map', [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl']]]]]),
      table(['name', 'options'], [[tunnel, ['map', [['key', '5001'], ['remote_ip', '192.0.2.2']]]]]),
      ovsConfig('true'),
    ].join('\n');
    const t = new FakeTransport([ok(`${check}\n${tunnelRead(['192.0.2.2', GONE])}`), ok('[{},{"count":1}]\n')]);
    const err = await dpuRejectionOf(client(t).check(req));
    expect(err.code).toBe(120);
    expect(err.message).toMatch(/br-vni5001: tunnel to 198\.51\.100\.9, which is not in remoteVteps .*reconciled now/);
    expect(t.argv(1)[0]?.[0]).toBe('ovsdb-client');
  });
});
