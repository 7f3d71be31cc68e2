import { createHash } from 'node:crypto';
import type { PlugRequest } from '../../src/dpu/api';
import { representorName } from '../../src/dpu/api';
import { bridgeName, bridgeUsageQueries, checkCommand, EXT, expectedTunnels, findOwnerPortsCommand, isOwnedBy, type OvsSettings, plugCommands, removeBridgeIfUnchangedCommand, removeOwnedPortTxn, removePortsCommands, statusCommand, tunnelPortName } from '../../src/dpu/ovs/commands';
import { hwOffloadValue, mapOf, parseBridgeUsage, parseTables, rows, uuidOf, uuidSet } from '../../src/dpu/ovs/parse';
import { commandLine } from '../../src/dpu/quote';
import { argvAsRunBySh } from './helpers/argv-echo';
import { removeTmpDirs } from './helpers/tmp';
import { dpuErrorOf } from './helpers/errors';

afterAll(removeTmpDirs);

const s: OvsSettings = { bridgePrefix: 'br-vni', datapathType: 'system', localVtep: '192.0.2.1', remoteVteps: ['192.0.2.2', '2001:db8::3'], hwOffload: 'enable', timeoutMs: 10000 };
const req: PlugRequest = { network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: '/run/netns/pod a', representor: 'pf0vf3', mtu: 1450 };
const T1 = `vx${createHash('sha256').update('5001/192.0.2.2').digest('hex').slice(0, 8)}`;
const T2 = `vx${createHash('sha256').update('5001/2001:db8::3').digest('hex').slice(0, 8)}`;

/** Splits an ovs-vsctl argv into its global options and its "--"-separated commands. */
function txn(argv: readonly string[]): { globals: string[]; commands: string[][] } {
  const [head, ...rest] = argv.join('\u0000').split('\u0000--\u0000');
  return { globals: (head as string).split('\u0000'), commands: rest.map((c) => c.split('\u0000')) };
}

const owner = [
  'external_ids:dpu-overlay.role="container"',
  'external_ids:dpu-overlay.vni="5001"',
  'external_ids:dpu-overlay.network="ovl"',
  'external_ids:dpu-overlay.container="c1"',
  'external_ids:dpu-overlay.ifname="net1"',
  'external_ids:dpu-overlay.netns="/run/netns/pod a"',
];

describe('names', () => {
  it('bridgeName is prefix + VNI, at most 15 bytes', () => {
    expect(bridgeName('br-vni', 5001)).toBe('br-vni5001');
    expect(bridgeName('br-vni', 16777215)).toBe('br-vni16777215');
    expect(bridgeName('abcdefg', 16777215)).toBe('abcdefg16777215');
    expect(dpuErrorOf(() => bridgeName('abcdefgh', 16777215)).code).toBe(7);
  });

  it('tunnel ports: "vx" + 8 hex of sha256(vni/remote): unique per VNI and remote, a valid netdev name', () => {
    expect(tunnelPortName(5001, '192.0.2.2')).toBe(T1);
    expect(T1).toMatch(/^vx[0-9a-f]{8}$/);
    expect(tunnelPortName(5002, '192.0.2.2')).not.toBe(T1);
    expect(tunnelPortName(5001, '192.0.2.3')).not.toBe(T1);
    expect([...expectedTunnels(s, 5001)]).toEqual([
      [T1, '192.0.2.2'],
      [T2, '2001:db8::3'],
    ]);
  });

  it('representorName fills {pf} and {vf} (every occurrence)', () => {
    expect(representorName('pf{pf}vf{vf}', 1, 12)).toBe('pf1vf12');
    expect(representorName('vf{vf}-{vf}', 0, 3)).toBe('vf3-3');
    expect(representorName('p{pf}', 2, 9)).toBe('p2');
  });
});

describe('plugCommands', () => {
  it('brings the representor up, then ONE ovs-vsctl transaction that ensures bridge, tunnels and port (never deleting one by name)', () => {
    const { commands, bridge } = plugCommands(s, req);
    expect(bridge).toBe('br-vni5001');
    expect(commands).toHaveLength(2);
    expect(commands[0]).toEqual(['ip', 'link', 'set', 'dev', 'pf0vf3', 'mtu', '1450', 'up']);
    const { globals, commands: c } = txn(commands[1] as string[]);
    expect(globals).toEqual(['ovs-vsctl', '--timeout=10', '-f', 'json']);
    expect(c).toEqual([
      ['--may-exist', 'add-br', 'br-vni5001'],
      ['set', 'Bridge', 'br-vni5001', 'datapath_type=system', 'external_ids:dpu-overlay.managed="true"', 'external_ids:dpu-overlay.vni="5001"'],
      ['--may-exist', 'add-port', 'br-vni5001', T1],
      ['set', 'Interface', T1, 'type=vxlan', 'options:key=5001', 'options:remote_ip=192.0.2.2', 'options:local_ip=192.0.2.1'],
      ['set', 'Port', T1, 'protected=true', 'external_ids:dpu-overlay.role="tunnel"', 'external_ids:dpu-overlay.vni="5001"', 'external_ids:dpu-overlay.remote="192.0.2.2"'],
      ['--may-exist', 'add-port', 'br-vni5001', T2],
      ['set', 'Interface', T2, 'type=vxlan', 'options:key=5001', 'options:remote_ip=2001:db8::3', 'options:local_ip=192.0.2.1'],
      ['set', 'Port', T2, 'protected=true', 'external_ids:dpu-overlay.role="tunnel"', 'external_ids:dpu-overlay.vni="5001"', 'external_ids:dpu-overlay.remote="2001:db8::3"'],
      ['--id=@i', 'create', 'Interface', 'name=pf0vf3', 'mtu_request=1450', ...owner],
      ['--id=@p', 'create', 'Port', 'name=pf0vf3', 'interfaces=@i', ...owner],
      ['add', 'Bridge', 'br-vni5001', 'ports', '@p'],
      ['--columns=other_config', 'find', 'Open_vSwitch'],
      ['set', 'Open_vSwitch', '.', 'other_config:hw-offload=true'],
    ]);
  });

  it('reads other_config before it sets hw-offload (to know whether a restart is needed)', () => {
    const { commands } = txn(plugCommands(s, req).commands[1] as string[]);
    const find = commands.findIndex((c) => c.includes('find') && c.includes('Open_vSwitch'));
    const set = commands.findIndex((c) => c.includes('other_config:hw-offload=true'));
    expect(find).toBeGreaterThan(-1);
    expect(set).toBeGreaterThan(find);
  });

  it('hwOffload require: waits for hw-offload=true first and never sets it; ignore: neither', () => {
    const req1 = plugCommands({ ...s, hwOffload: 'require' }, req).commands;
    expect(req1).toHaveLength(3);
    expect(req1[1]).toEqual(['ovs-vsctl', '--timeout=1', 'wait-until', 'Open_vSwitch', '.', 'other_config:hw-offload=true']);
    expect((req1[2] as string[]).join(' ')).not.toContain('other_config:hw-offload=true');
    const ign = plugCommands({ ...s, hwOffload: 'ignore' }, req).commands;
    expect(ign).toHaveLength(2);
    expect((ign[1] as string[]).join(' ')).not.toContain('hw-offload');
  });

  it('no remote VTEPs: no tunnel commands; netdev datapath and timeout are passed through', () => {
    const { commands } = plugCommands({ ...s, remoteVteps: [], datapathType: 'netdev', timeoutMs: 2500 }, req);
    const t = txn(commands[1] as string[]);
    expect(t.globals).toEqual(['ovs-vsctl', '--timeout=3', '-f', 'json']);
    expect(t.commands.some((c) => c.includes('type=vxlan'))).toBe(false);
    expect(t.commands[1]).toContain('datapath_type=netdev');
  });

  it('owner values with quotes or shell characters stay one OVSDB atom and one shell word', () => {
    const nasty = { ...req, network: 'n"; rm -rf / #', netns: "/run/netns/it's $(id)" };
    const { commands } = plugCommands(s, nasty);
    const ran = argvAsRunBySh(commandLine(commands));
    expect(ran).toEqual(commands);
    const port = txn(ran[1] as string[]).commands.find((c) => c[0] === '--id=@p') as string[];
    expect(port).toContain(`external_ids:dpu-overlay.network=${JSON.stringify('n"; rm -rf / #')}`);
    expect(port).toContain(`external_ids:dpu-overlay.netns=${JSON.stringify("/run/netns/it's $(id)")}`);
  });

  it('the whole plug survives the shell unchanged', () => {
    const { commands } = plugCommands(s, req);
    expect(argvAsRunBySh(commandLine(commands))).toEqual(commands);
  });
});

describe('other commands', () => {
  const owned = { uuid: 'aaaaaaaa-0000-0000-0000-000000000001', name: 'pf0vf3', owner: { network: 'ovl', containerId: 'c1', ifname: 'net1' } };

  it('unplug removes each port by an owner-checked OVSDB transaction, then reads what is left', () => {
    const cmds = removePortsCommands(s, 'br-vni5001', 5001, [owned]);
    expect(cmds).toHaveLength(2);
    expect(cmds[0]?.slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
    expect(JSON.parse(cmds[0]?.[2] as string)).toEqual(removeOwnedPortTxn(owned));
    expect(txn(cmds[1] as string[]).commands).toEqual(bridgeUsageQueries('br-vni5001', 5001));
  });

  it('the owner-checked removal: a wait (timeout 0) on the port, its name and the owner keys, then the bridge reference goes', () => {
    const u = ['uuid', owned.uuid];
    expect(removeOwnedPortTxn(owned)).toEqual([
      'Open_vSwitch',
      {
        op: 'wait', table: 'Port',
        where: [['_uuid', '==', u], ['name', '==', 'pf0vf3'], ['external_ids', 'includes', ['map', [['dpu-overlay.container', 'c1'], ['dpu-overlay.ifname', 'net1'], ['dpu-overlay.network', 'ovl'], ['dpu-overlay.role', 'container']]]]],
        columns: ['name'], until: '==', rows: [{ name: 'pf0vf3' }], timeout: 0,
      },
      { op: 'mutate', table: 'Bridge', where: [['ports', 'includes', u]], mutations: [['ports', 'delete', ['set', [u]]]] },
    ]);
  });

  it('a plug that reclaims a port removes it (owner-checked) before anything else', () => {
    const { commands } = plugCommands(s, { ...req, reclaim: { ...owned.owner, portUuid: owned.uuid } });
    expect(commands).toHaveLength(3);
    expect(JSON.parse(commands[0]?.[2] as string)).toEqual(removeOwnedPortTxn(owned));
  });

  it('removePorts: one transaction per port (one that changes nothing cannot abort the others)', () => {
    const cmds = removePortsCommands(s, 'br-vni7', 7, [owned, { ...owned, uuid: 'u2' }]);
    expect(cmds.map((c) => c[0])).toEqual(['ovsdb-client', 'ovsdb-client', 'ovs-vsctl']);
  });

  it('findOwnerPorts filters by the given owner fields only', () => {
    expect(txn(findOwnerPortsCommand(s, { network: 'ovl' })).commands).toEqual([
      ['--columns=_uuid,name,external_ids', 'find', 'Port', 'external_ids:dpu-overlay.role="container"', 'external_ids:dpu-overlay.network="ovl"'],
    ]);
    expect(txn(findOwnerPortsCommand(s, { network: 'ovl', containerId: 'c1', ifname: 'net1', vni: 9 })).commands[0]).toEqual([
      '--columns=_uuid,name,external_ids', 'find', 'Port',
      'external_ids:dpu-overlay.role="container"', 'external_ids:dpu-overlay.network="ovl"', 'external_ids:dpu-overlay.container="c1"', 'external_ids:dpu-overlay.ifname="net1"', 'external_ids:dpu-overlay.vni="9"',
    ]);
  });

  it('check reads bridge, port, tunnels and other_config in one call', () => {
    expect(txn(checkCommand(s, 'br-vni5001', 5001, 'pf0vf3')).commands).toEqual([
      ['--columns=_uuid,ports,datapath_type', 'find', 'Bridge', 'name=br-vni5001'],
      ['--columns=_uuid,name,external_ids', 'find', 'Port', 'name=pf0vf3'],
      ['--columns=name,options', 'find', 'Interface', 'type=vxlan', 'options:key=5001'],
      ['--columns=other_config', 'find', 'Open_vSwitch'],
    ]);
    expect(txn(statusCommand(s)).commands).toEqual([['--columns=other_config', 'find', 'Open_vSwitch']]);
  });

  it('removeBridgeIfUnchanged: one OVSDB transaction that waits for exactly these ports (timeout 0) before deleting', () => {
    const argv = removeBridgeIfUnchangedCommand('bbbb', ['p1', 'p2']);
    expect(argv.slice(0, 2)).toEqual(['ovsdb-client', 'transact']);
    expect(JSON.parse(argv[2] as string)).toEqual([
      'Open_vSwitch',
      { op: 'wait', table: 'Bridge', where: [['_uuid', '==', ['uuid', 'bbbb']]], columns: ['ports'], until: '==', rows: [{ ports: ['set', [['uuid', 'p1'], ['uuid', 'p2']]] }], timeout: 0 },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['uuid', 'bbbb']]] },
    ]);
    expect(argvAsRunBySh(commandLine([argv]))).toEqual([argv]);
  });
});

describe('parsing ovs-vsctl -f json output', () => {
  const out = [
    '{"data":[[["uuid","b0"],["set",[["uuid","a"],["uuid","b"],["uuid","c"]]]]],"headings":["_uuid","ports"]}',
    '{"data":[[["uuid","a"]]],"headings":["_uuid"]}',
    '{"data":[[["uuid","b"]]],"headings":["_uuid"]}',
  ].join('\n');

  it('parseTables: JSON lines become tables, other lines (create UUIDs) stay strings', () => {
    const t = parseTables('11111111-1111-1111-1111-111111111111\n\n' + out + '\n');
    expect(t[0]).toBe('11111111-1111-1111-1111-111111111111');
    expect(t).toHaveLength(4);
    expect(rows(t[1])).toEqual([{ _uuid: ['uuid', 'b0'], ports: ['set', [['uuid', 'a'], ['uuid', 'b'], ['uuid', 'c']]] }]);
  });

  it('uuidSet reads single atoms and sets; mapOf reads maps', () => {
    expect(uuidSet(['uuid', 'x'])).toEqual(['x']);
    expect(uuidSet(['set', []])).toEqual([]);
    expect(uuidSet('x')).toEqual([]);
    expect(uuidOf(['uuid', 'x'])).toBe('x');
    expect(uuidOf('x')).toBeUndefined();
    expect(mapOf(['map', [['hw-offload', 'true'], ['n', 5]]])).toEqual({ 'hw-offload': 'true', n: '5' });
    expect(mapOf(['set', []])).toEqual({});
  });

  it('parseBridgeUsage: container ports are those that are neither tunnels nor the internal port', () => {
    expect(parseBridgeUsage(parseTables(out))).toEqual({ bridgeUuid: 'b0', ports: ['a', 'b', 'c'], containerPorts: ['c'] });
    const onlyInfra = out.replace(',["uuid","c"]', '');
    expect(parseBridgeUsage(parseTables(onlyInfra)).containerPorts).toEqual([]);
  });

  it('parseBridgeUsage: a bridge that is gone has no UUID', () => {
    const gone = ['{"data":[],"headings":["_uuid","ports"]}', '{"data":[],"headings":["_uuid"]}', '{"data":[],"headings":["_uuid"]}'].join('\n');
    expect(parseBridgeUsage(parseTables(gone))).toEqual({ bridgeUuid: undefined, ports: [], containerPorts: [] });
  });

  it('hwOffloadValue reads other_config:hw-offload', () => {
    expect(hwOffloadValue(parseTables('{"data":[[["map",[["hw-offload","true"]]]]],"headings":["other_config"]}')[0])).toBe('true');
    expect(hwOffloadValue(parseTables('{"data":[[["map",[]]]],"headings":["other_config"]}')[0])).toBeUndefined();
  });

  it('isOwnedBy compares container, ifname and network', () => {
    const ids = { [EXT.container]: 'c1', [EXT.ifname]: 'net1', [EXT.network]: 'ovl' };
    expect(isOwnedBy(ids, { containerId: 'c1', ifname: 'net1', network: 'ovl' })).toBe(true);
    expect(isOwnedBy(ids, { containerId: 'c1', ifname: 'net1', network: 'other' })).toBe(false);
    expect(isOwnedBy(ids, { containerId: 'c2', ifname: 'net1', network: 'ovl' })).toBe(false);
    expect(isOwnedBy(ids, { containerId: 'c1', ifname: 'net2', network: 'ovl' })).toBe(false);
  });
});

describe('command sizes at the schema maxima', () => {
  // The longest IPv6 text form, 1024 of them (dpu.remoteVteps max), and the longest names the schema allows.
  const longest = (i: number) => `ffff:ffff:ffff:ffff:ffff:ffff:255.${(i >> 8) & 255}.${i & 255}.255`;
  const max: OvsSettings = { ...s, remoteVteps: Array.from({ length: 1024 }, (_, i) => longest(i)), localVtep: longest(9999) };
  const req = (k: number): PlugRequest => ({ network: 'n'.repeat(253), vni: 16777215, containerId: `${'c'.repeat(250)}${k}`, ifname: 'i'.repeat(15), netns: `/${'p'.repeat(4095)}`, representor: `pf255vf${k}`, mtu: 65535 });

  it('one ADD fits the guard (1 MiB of stdin) and the DPU execve limit (2 MiB of argv, 128 KiB per word)', () => {
    const { commands } = plugCommands(max, req(1));
    expect(commandLine(commands).length).toBeLessThan(1024 * 1024);
    const vsctl = commands.at(-1) as readonly string[];
    expect(vsctl.reduce((n, w) => n + w.length + 1, 0)).toBeLessThan(2 * 1024 * 1024);
    expect(Math.max(...vsctl.map((w) => w.length))).toBeLessThan(128 * 1024);
  });
});
