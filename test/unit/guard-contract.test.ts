/**
 * Contract between the plugin's DPU command grammar (src/dpu/ovs/commands.ts) and the forced command that
 * enforces it on the DPU (guard/dpu-guard.sh): every command the builders produce, for ordinary and edge-case
 * inputs, is accepted by the guard's --dry-run and read back as exactly the argv that was built. A change to
 * either side that the other does not follow fails here, without a DPU or root.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { PlugRequest } from '../../src/dpu/api';
import {
  BOOT_ID_COMMAND, checkCommand, findOwnerPortsCommand, OFFLOADED_FLOWS_COMMAND, type OvsSettings, plugBatchCommands, plugCommands, removeBridgeIfUnchangedCommand,
  probeCommands, removeOwnedPortCommand, removePortsBatchCommands, removePortsCommands, statusCommand,
} from '../../src/dpu/ovs/commands';
import { type Argv, commandLine } from '../../src/dpu/quote';
import { removeTunnelCommand, tunnelQueries, tunnelQueryCommand } from '../../src/dpu/ovs/tunnels';
import { tunnelPortName } from '../../src/dpu/ovs/commands';
import { REMOTE_COMMAND } from '../../src/dpu/ssh';
import { DEVLINK_PORTS_QUERY, DEVLINK_RATES_QUERY, smartnicQuery, uplinkQuery, vfFunctionSetCommands } from '../../src/dpu/vf-function';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpDir } from './helpers/tmp';
import {
  checkCommands as ovnCheckCommands, chassisQuery, minePortsCommand, newLsp, type OvnSettings, plugCommands as ovnPlugCommands, portByNameCommand, statusCommands as ovnStatusCommands,
  unplugCommands as ovnUnplugCommands,
} from '../../src/dpu/ovn/commands';

const GUARD = join(__dirname, '..', '..', 'guard', 'dpu-guard.sh');
const UUID = ['0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60', 'a1b2c3d4-e5f6-4711-8899-aabbccddeeff'] as const;

/** Runs the guard as sshd would (the line on stdin of REMOTE_COMMAND) and returns the argv it would run. */
function throughGuard(commands: readonly Argv[], guardArgs: string[] = []): { status: number | null; stderr: string; argv: string[][] } {
  const r = spawnSync('sh', [GUARD, '--dry-run', ...guardArgs], {
    input: commandLine(commands) + '\n',
    env: { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: REMOTE_COMMAND },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const argv = r.stdout.split('\n').filter(Boolean).map((line) => [...line.matchAll(/\[((?:\\.|[^\\\]])*)\]/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1')));
  return { status: r.status, stderr: r.stderr, argv };
}

function expectAccepted(commands: readonly Argv[], guardArgs: string[] = []): void {
  const out = throughGuard(commands, guardArgs);
  expect(out.stderr).toBe('');
  expect(out.status).toBe(0);
  expect(out.argv).toEqual(commands.map((c) => [...c]));
}

const base: OvsSettings = { bridgePrefix: 'br-vni', datapathType: 'system', localVtep: '198.51.100.1', remoteVteps: ['198.51.100.2', '2001:db8::3'], hwOffload: 'enable', timeoutMs: 10000 };
const custom: OvsSettings = { ...base, bridgePrefix: 'ovl_x-1', datapathType: 'netdev', remoteVteps: [], hwOffload: 'require', timeoutMs: 100 };
const CUSTOM_GUARD = ['--bridge-prefix', 'ovl_x-1', '--representor-template', 'c1pf{pf}vf{vf}'];

/** Owners the runtime and a pod author control: odd but valid ifnames and the longest container IDs. */
const owners: Array<Pick<PlugRequest, 'containerId' | 'ifname' | 'netns' | 'network'>> = [
  { containerId: 'c0ffee', ifname: 'eth0', netns: '/run/netns/c0ffee', network: 'net-a' },
  { containerId: 'x'.repeat(256), ifname: '"x""netns"1', netns: `/proc/4194304/ns/net`, network: 'n.' + 'y'.repeat(251) },
  { containerId: 'A_b.c-9', ifname: `q'"#\\@`, netns: '/var/run/netns/a b "c" #d \\e', network: '0' },
  { containerId: '1', ifname: 'e#x', netns: '/run/netns/\u00e9\u202e', network: 'net_1' },
  // DEL and C1 controls are legal in ifnames; JSON leaves them raw, ovsString escapes them for the guard
  { containerId: 'del', ifname: 'a\x7f\u009f', netns: '/run/netns/\x7f', network: 'n' },
];

describe('every DPU command the plugin builds passes the guard unchanged', () => {
  it.each(owners.map((o, i) => [i, o] as const))('plug, one request (owner %i)', (_i, o) => {
    expectAccepted(plugCommands(base, { ...o, vni: 100, representor: 'pf0vf3', mtu: 1450 }).commands);
    expectAccepted(plugCommands(custom, { ...o, vni: 16777215, representor: 'c1pf1vf127', mtu: 9000 }).commands, CUSTOM_GUARD);
    // as the client sends it: the bridge's tunnels read at the end of the plug's own transaction
    expectAccepted(plugCommands(base, { ...o, vni: 100, representor: 'pf0vf3', mtu: 1450 }, tunnelQueries([{ bridge: 'br-vni100', vni: 100 }])).commands);
    expectAccepted(plugCommands(custom, { ...o, vni: 16777215, representor: 'c1pf1vf127', mtu: 9000 }, tunnelQueries([{ bridge: 'ovl_x-116777215', vni: 16777215 }])).commands, CUSTOM_GUARD);
  });

  it('plug, a daemon batch of 64 with the longest IPv6 remotes', () => {
    const s: OvsSettings = { ...base, remoteVteps: Array.from({ length: 10 }, (_, i) => `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.${i}`) };
    const reqs = Array.from({ length: 64 }, (_, i) => ({ ...(owners[i % owners.length] as (typeof owners)[number]), vni: 1 + i, representor: `pf${i % 2}vf${i}`, mtu: 1450 }));
    expectAccepted(plugBatchCommands(s, reqs).commands);
    expectAccepted(plugBatchCommands(s, reqs, (bridges) => tunnelQueries([...new Set(bridges)].map((bridge, k) => ({ bridge, vni: 1 + k })))).commands);
  });

  it.each(owners.map((o, i) => [i, o] as const))('find, check, remove and status (owner %i)', (_i, o) => {
    expectAccepted([findOwnerPortsCommand(base, { network: o.network, containerId: o.containerId, ifname: o.ifname, vni: 7 })]);
    expectAccepted([findOwnerPortsCommand(base, { network: o.network })]);
    expectAccepted([checkCommand(base, 'br-vni7', 7, 'pf0vf0')]);
    const owner = { network: o.network, containerId: o.containerId, ifname: o.ifname };
    expectAccepted(removePortsCommands(base, 'br-vni7', 7, UUID.map((u) => ({ uuid: u, name: 'pf0vf3', owner }))));
    expectAccepted(removePortsBatchCommands(base, UUID.map((u, k) => ({ bridge: `br-vni${k}`, vni: k + 1, port: { uuid: u, name: `pf1vf${k}`, owner } }))));
    // a plug that replaces its own earlier port (or a stale attachment's the plugin named) removes it first
    expectAccepted(plugCommands(base, { ...o, vni: 100, representor: 'pf0vf3', mtu: 1450, reclaim: { ...owner, portUuid: UUID[0] } }).commands);
    expectAccepted([statusCommand(base)]);
    expectAccepted([OFFLOADED_FLOWS_COMMAND]);
  });

  it('the bridge removal transaction (the guard looks the bridge up by UUID; in a dry run it does not)', () => {
    expectAccepted([removeBridgeIfUnchangedCommand(UUID[0], [UUID[1]])]);
    expectAccepted([removeBridgeIfUnchangedCommand(UUID[0], [])]);
  });

  describe('a container port goes only by the owner-checked transaction, never by name or bare UUID', () => {
    const owner = { network: 'net-a', containerId: 'c1', ifname: 'eth0' };
    const removal = removeOwnedPortCommand({ uuid: UUID[0], name: 'pf0vf3', owner });
    const edit = (f: (j: string) => string): Argv => ['ovsdb-client', 'transact', f(removal[2] as string)];
    it.each<[string, Argv]>([
      ['del-port by name (what a plug did before)', ['ovs-vsctl', '--timeout=5', '-f', 'json', '--', '--if-exists', 'del-port', 'pf0vf0']],
      ['a removal by bare UUID from a VNI bridge', ['ovs-vsctl', '--timeout=5', '-f', 'json', '--', '--if-exists', 'remove', 'Bridge', 'br-vni7', 'ports', UUID[0]]],
      ['a removal by bare UUID from br-int', ['ovs-vsctl', '--timeout=5', '-f', 'json', '--', '--if-exists', 'remove', 'Bridge', 'br-int', 'ports', UUID[0]]],
      ['a port that is not named like a representor', removeOwnedPortCommand({ uuid: UUID[0], name: 'br-phy', owner })],
      ['without the role (any port with such keys)', edit((j) => j.replace(',["dpu-overlay.role","container"]', ''))],
      ['another owner condition than "includes"', edit((j) => j.replace('"includes"', '"excludes"'))],
      ['a wait on another port than the one removed', edit((j) => j.replace(`"mutate","table":"Bridge","where":[["ports","includes",["uuid","${UUID[0]}"]]],"mutations":[["ports","delete",["set",[["uuid","${UUID[0]}"]]]]]`, `"mutate","table":"Bridge","where":[["ports","includes",["uuid","${UUID[1]}"]]],"mutations":[["ports","delete",["set",[["uuid","${UUID[1]}"]]]]]`))],
      ['an extra op', edit((j) => `${j.slice(0, -1)},{"op":"delete","table":"Bridge","where":[]}]`)],
      ['a timeout that waits', edit((j) => j.replace('"timeout":0', '"timeout":100'))],
    ])('refused: %s', (_name, argv) => {
      expect(throughGuard([argv]).status).toBe(126);
    });
    it('accepted: the transaction as built', () => expectAccepted([removal]));
  });

  it('tunnels following remoteVteps: the reading, and the owner-checked removal of one tunnel', () => {
    expectAccepted([tunnelQueryCommand(base, [{ bridge: 'br-vni7', vni: 7 }, { bridge: 'br-vni16777215', vni: 16777215 }])]);
    for (const remote of ['198.51.100.3', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff']) {
      expectAccepted([removeTunnelCommand('br-vni7', 7, { uuid: UUID[0], name: tunnelPortName(7, remote), remote })]);
    }
    expectAccepted([removeTunnelCommand('ovl_x-15', 15, { uuid: UUID[0], name: tunnelPortName(15, '198.51.100.3'), remote: '198.51.100.3' })], CUSTOM_GUARD);
  });

  it.each<[string, Argv]>([
    ['a name not derived from VNI and remote', removeTunnelCommand('br-vni7', 7, { uuid: UUID[0], name: tunnelPortName(8, '198.51.100.3'), remote: '198.51.100.3' })],
    ['a representor', removeTunnelCommand('br-vni7', 7, { uuid: UUID[0], name: 'pf0vf1', remote: '198.51.100.3' })],
    ['a bridge that is not a VNI bridge', removeTunnelCommand('br-int', 7, { uuid: UUID[0], name: tunnelPortName(7, '198.51.100.3'), remote: '198.51.100.3' })],
    ['the wait and the mutate on different ports', [...removeTunnelCommand('br-vni7', 7, { uuid: UUID[0], name: tunnelPortName(7, '198.51.100.3'), remote: '198.51.100.3' }).slice(0, 2), (removeTunnelCommand('br-vni7', 7, { uuid: UUID[0], name: tunnelPortName(7, '198.51.100.3'), remote: '198.51.100.3' })[2] as string).replace(/"delete",\["uuid","[^"]+"/, `"delete",["uuid","${UUID[1]}"`)]],
  ])('a tunnel removal with %s is refused', (_why, argv) => {
    expect(throughGuard([argv]).status).toBe(126);
  });

  it('a representor or bridge outside the configured names is refused', () => {
    expect(throughGuard(plugCommands(custom, { ...(owners[0] as (typeof owners)[number]), vni: 5, representor: 'c1pf0vf1', mtu: 1450 }).commands).status).toBe(126);
    expect(throughGuard(plugCommands(base, { ...(owners[0] as (typeof owners)[number]), vni: 5, representor: 'eth0', mtu: 1450 }).commands).status).toBe(126);
  });

  it("the daemon's recovery probe: boot id, database identity and container ports", () => {
    expectAccepted(probeCommands(base));
    expectAccepted(probeCommands(custom), CUSTOM_GUARD);
  });

  it.each([
    ['another file', [['cat', '/etc/shadow']]],
    ['the boot id and another file', [['cat', '/proc/sys/kernel/random/boot_id', '/etc/shadow']]],
    ['a path that leaves /proc', [['cat', '/proc/sys/kernel/random/../../../../etc/shadow']]],
    ['cat of stdin', [['cat']]],
    ['an option', [['cat', '-v', '/proc/sys/kernel/random/boot_id']]],
    ['the database row with a condition', [['ovs-vsctl', '--timeout=1', '-f', 'json', '--', '--columns=_uuid', 'find', 'Open_vSwitch', 'external_ids:x=1']]],
    ['other columns of the database row', [['ovs-vsctl', '--timeout=1', '-f', 'json', '--', '--columns=_uuid,external_ids', 'find', 'Open_vSwitch']]],
    ['a write after the probe', [BOOT_ID_COMMAND, ['ovs-vsctl', '--timeout=1', '-f', 'json', '--', '--columns=_uuid', 'find', 'Open_vSwitch', '--', 'set', 'Open_vSwitch', '.', 'external_ids:x=1']]],
  ] as Array<[string, Argv[]]>)('probe-like commands beyond the probe are refused: %s', (_name, commands) => {
    const out = throughGuard(commands);
    expect(out.status).toBe(126);
    expect(out.argv).toEqual([]);
  });
});

describe('DPU-mode VF settings and the uplink query pass the guard; anything wider is refused', () => {
  const HANDLE = 'pci/0000:03:00.0/1';
  it('the facts queries and every set shape the builders make', () => {
    expectAccepted([uplinkQuery('198.51.100.1'), DEVLINK_PORTS_QUERY, DEVLINK_RATES_QUERY]);
    expectAccepted([uplinkQuery('2001:db8::1')]);
    expectAccepted([smartnicQuery(1, 127)]);
    for (const values of [{ mac: '02:aa:00:00:00:01', linkState: 'disable' as const, minTxRate: 0, maxTxRate: 100000 }, { mac: '00:00:00:00:00:00' }, { linkState: 'auto' as const }, { maxTxRate: 5 }]) {
      expectAccepted(vfFunctionSetCommands({ path: 'devlink', handle: HANDLE }, values));
      expectAccepted(vfFunctionSetCommands({ path: 'smartnic', pfIndex: 0, vfIndex: 3 }, values));
    }
  });

  it.each([
    [['devlink', 'port', 'function', 'set', HANDLE, 'hw_addr', '03:00:00:00:00:01']],
    [['devlink', 'port', 'function', 'set', HANDLE, 'hw_addr', 'ff:ff:ff:ff:ff:ff']],
    [['devlink', 'port', 'function', 'set', HANDLE, 'roce', 'disable']],
    [['devlink', 'port', 'function', 'set', HANDLE, 'state', 'active', 'state', 'inactive']],
    [['devlink', 'port', 'function', 'set', 'pf0vf0', 'state', 'active']],
    [['devlink', 'port', 'function', 'set', 'pci/0000:03:00.0/1/2', 'state', 'active']],
    [['devlink', 'port', 'function', 'rate', 'set', HANDLE, 'tx_max', '100']],
    [['devlink', 'port', 'function', 'rate', 'set', HANDLE, 'parent', 'node1']],
    [['devlink', 'port', 'del', HANDLE]],
    [['devlink', 'dev', 'eswitch', 'set', 'pci/0000:03:00.0', 'mode', 'legacy']],
    [['devlink', 'dev', 'reload', 'pci/0000:03:00.0']],
    [['ip', '-j', 'addr', 'show']],
    [['ip', 'addr', 'add', '198.51.100.9/24', 'dev', 'p0']],
    [['cat', '/etc/shadow']],
    [['cat', '/sys/class/net/p0/smart_nic/vf0/../../../../../../etc/shadow']],
    [['cat', '/sys/class/net/p0/smart_nic/pf/config']],
    [['dpu-guard', 'smartnic-write', '/sys/class/net/p0/smart_nic/pf/mac', '02:aa:00:00:00:01']],
    [['dpu-guard', 'smartnic-write', '/sys/class/net/p0/smart_nic/vf0/mac', '02:aa:00:00:00:01\n']],
    [['dpu-guard', 'smartnic-write', '/sys/class/net/p0/smart_nic/vf0/trust', 'on']],
    [['dpu-guard', 'smartnic-write', '/sys/class/net/p0/smart_nic/vf0/vport_state', 'up']],
    [['dpu-guard', 'smartnic-write', '/etc/passwd', '1']],
  ])('refused: %j', (argv) => {
    expect(throughGuard([argv]).status).toBe(126);
  });

  it('a port function set runs only on a VF representor named like the template (devlink is asked about the handle first)', () => {
    const bin = tmpDir('guard-devlink-');
    const log = `${bin}/log`;
    // a devlink that knows the uplink (physical) and pf0vf0 (pcivf), and logs what it is asked to set
    writeFileSync(`${bin}/devlink`, `#!/bin/sh
case "$*" in
  "-j port show pci/0000:03:00.0/65535") echo '{"port":{"pci/0000:03:00.0/65535":{"type":"eth","netdev":"p0","flavour":"physical"}}}' ;;
  "-j port show pci/0000:03:00.0/1") echo '{"port":{"pci/0000:03:00.0/1":{"type":"eth","netdev":"pf0vf0","flavour":"pcivf","pfnum":0,"vfnum":0}}}' ;;
  "-j port show pci/0000:03:00.0/2") echo '{"port":{"pci/0000:03:00.0/2":{"type":"eth","netdev":"eth9","flavour":"pcivf","pfnum":0,"vfnum":1}}}' ;;
  "-j port show "*) exit 1 ;;
  *) echo "$*" >>${log} ;;
esac
`);
    chmodSync(`${bin}/devlink`, 0o755);
    const run = (argv: string[]) =>
      spawnSync('sh', [GUARD], { input: commandLine([argv]) + '\n', env: { PATH: `${bin}:${process.env.PATH}`, SSH_ORIGINAL_COMMAND: REMOTE_COMMAND }, encoding: 'utf8' });
    expect(run(['devlink', 'port', 'function', 'set', 'pci/0000:03:00.0/1', 'hw_addr', '02:aa:00:00:00:01']).status).toBe(0);
    for (const handle of ['pci/0000:03:00.0/65535', 'pci/0000:03:00.0/2', 'pci/0000:03:00.0/7']) {
      const r = run(['devlink', 'port', 'function', 'rate', 'set', handle, 'tx_max', '1mbit']);
      expect(r.status).toBe(126);
      expect(r.stderr).toMatch(/is not the port of a VF representor on this DPU/);
    }
    expect(readFileSync(log, 'utf8')).toBe('port function set pci/0000:03:00.0/1 hw_addr 02:aa:00:00:00:01\n');
  });
});

describe('OVN mode (--ovn): every shape the OVN builders make passes; hostile shapes are refused', () => {
  const ovnS: OvnSettings = { timeoutMs: 10000, hwOffload: 'enable', ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 } };
  const L = UUID[0];
  const req: PlugRequest = { network: 'net-a', vni: 100, containerId: 'c1', ifname: 'eth0', netns: '/run/netns/x', representor: 'pf0vf3', mtu: 1400, mac: '02:aa:00:00:00:01', ips: ['10.0.0.2', '2001:db8::5'], host: 'node-1' };
  const NB_REMOTE = 'tcp:198.51.100.254:6641';

  /** A DPU's ovs-vsctl that answers the guard's read of its own OVN settings. */
  function fakeDpu(values: { sysid?: string; nb?: string; key?: string; cert?: string; ca?: string; bridge?: string } = {}): string {
    const bin = tmpDir('guard-ovn-');
    const v = { sysid: 'dpuo-a', nb: NB_REMOTE, key: '', cert: '', ca: '', bridge: '', ...values };
    const q = (x: string) => (x === '' ? "''" : `'"${x}"'`);
    writeFileSync(`${bin}/ovs-vsctl`, `#!/bin/sh
case "$*" in
  "--timeout=10 --if-exists get Open_vSwitch . external_ids:system-id external_ids:ovn-nb external_ids:ovn-nb-private-key external_ids:ovn-nb-certificate external_ids:ovn-nb-ca-cert external_ids:ovn-bridge")
    printf '%s\\n' ${[v.sysid, v.nb, v.key, v.cert, v.ca, v.bridge].map(q).join(' ')} ;;
  *) exit 1 ;;
esac
`);
    chmodSync(`${bin}/ovs-vsctl`, 0o755);
    return bin;
  }

  function throughOvnGuard(commands: readonly Argv[], guardArgs: string[] = ['--ovn'], dpu = fakeDpu()) {
    const r = spawnSync('sh', [GUARD, '--dry-run', ...guardArgs], {
      input: commandLine(commands) + '\n',
      env: { PATH: `${dpu}:${process.env.PATH}`, SSH_ORIGINAL_COMMAND: REMOTE_COMMAND },
      encoding: 'utf8',
    });
    const argv = r.stdout.split('\n').filter(Boolean).map((line) => [...line.matchAll(/\[((?:\\.|[^\\\]])*)\]/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1')));
    return { status: r.status, stderr: r.stderr, argv };
  }

  /** What the guard runs: the plugin's argv, with the DPU's own NB server (and SSL options) in every NB call. */
  function asRun(commands: readonly Argv[], nb = NB_REMOTE, ssl: string[] = []): string[][] {
    return commands.map((c) => (c[0] === 'ovsdb-client' && c[3]?.startsWith('["OVN_Northbound"') ? ['ovsdb-client', c[1] as string, ...ssl, c[2] as string, nb, c[3] as string] : [...c]));
  }

  function expectOvnAccepted(commands: readonly Argv[], guardArgs?: string[], dpu?: string, nb?: string, ssl?: string[]): void {
    const out = throughOvnGuard(commands, guardArgs, dpu);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.argv).toEqual(asRun(commands, nb, ssl));
  }

  function expectOvnRefused(commands: readonly Argv[], why: RegExp, guardArgs?: string[], dpu?: string): void {
    const out = throughOvnGuard(commands, guardArgs, dpu);
    expect(out.status).toBe(126);
    expect(out.stderr).toMatch(why);
    expect(out.argv).toEqual([]);
  }

  const lsp = newLsp('dpuo-a', req, L);
  const ensure = (r = req) => ovnPlugCommands(ovnS, r, 'dpuo-a', newLsp('dpuo-a', r, L))[1] as Argv;
  const addPort = (r = req, s = ovnS) => ovnPlugCommands(s, r, 'dpuo-a', newLsp('dpuo-a', r, L))[2] as Argv;
  const withJson = (argv: Argv, edit: (json: string) => string): Argv => [...argv.slice(0, 3), edit(argv[3] as string)];

  it.each(owners.map((o, i) => [i, o] as const))('ADD, DEL, CHECK, GC and STATUS lines (owner %i)', (_i, o) => {
    const r = { ...req, ...o };
    const l = newLsp('dpuo-a', r, L);
    expectOvnAccepted(ovnPlugCommands(ovnS, r, 'dpuo-a', l));
    expectOvnAccepted(ovnPlugCommands({ ...ovnS, hwOffload: 'require', ovn: { ...ovnS.ovn, portSecurity: false } }, { ...r, vni: 16777215, ips: [] }, 'dpuo-a', l));
    const owner = { network: r.network, containerId: r.containerId, ifname: r.ifname };
    expectOvnAccepted(ovnUnplugCommands(ovnS, 'dpuo-a', [{ vni: 1, port: { uuid: UUID[1], name: 'pf0vf3', owner }, lsp: l }, { vni: 2, lsp: { uuid: UUID[1], name: 'dpuo-dpuo-a-0123456789abcdef' } }, { vni: 3, port: { uuid: L, name: 'pf1vf9', owner } }]));
    expectOvnAccepted(ovnPlugCommands(ovnS, { ...r, reclaim: { ...owner, portUuid: UUID[1] } }, 'dpuo-a', l));
    // a later ADD on a VNI whose switch the connection has seen: the same line without the ensure
    expectOvnAccepted(ovnPlugCommands(ovnS, r, 'dpuo-a', l, false));
    expectOvnAccepted(ovnCheckCommands(ovnS, r, l));
    expectOvnAccepted([chassisQuery(ovnS), minePortsCommand(ovnS, 'dpuo-a', r.network), findOwnerPortsCommand(ovnS, { network: r.network })]);
    expectOvnAccepted([portByNameCommand(ovnS, l.name), findOwnerPortsCommand(ovnS, { network: r.network, containerId: r.containerId, ifname: r.ifname })]);
  });

  it('STATUS and a custom switch prefix (--ovn-switch-prefix, repeatable)', () => {
    expectOvnAccepted(ovnStatusCommands(ovnS));
    const s2 = { ...ovnS, ovn: { ...ovnS.ovn, switchPrefix: 'tenant-a.' } };
    expectOvnAccepted(ovnPlugCommands(s2, req, 'dpuo-a', lsp), ['--ovn', '--ovn-switch-prefix', 'x', '--ovn-switch-prefix=tenant-a.']);
    expectOvnRefused(ovnPlugCommands(s2, req, 'dpuo-a', lsp), /switch name tenant-a\.100 is not a configured prefix/);
  });

  it('an ssl: NB gets the DPU\'s own key, certificate and CA; a cluster list is passed as is', () => {
    const nb = 'ssl:192.0.2.1:6641,ssl:192.0.2.2:6641';
    const dpu = fakeDpu({ nb, key: '/etc/ovn/key.pem', cert: '/etc/ovn/cert.pem', ca: '/etc/ovn/ca.pem' });
    expectOvnAccepted([ensure()], ['--ovn'], dpu, nb, ['--private-key=/etc/ovn/key.pem', '--certificate=/etc/ovn/cert.pem', '--ca-cert=/etc/ovn/ca.pem']);
    expectOvnRefused([ensure()], /ovn-nb-private-key is not an absolute path/, ['--ovn'], fakeDpu({ nb }));
  });

  it.each<[string, Argv[], RegExp]>([
    ['a port for another chassis (requested-chassis)', [ovnPlugCommands(ovnS, req, 'dpuo-b', newLsp('dpuo-a', req, L))[2] as Argv], /requested-chassis is not this DPU's system-id/],
    ['a port named for another chassis', [ovnPlugCommands(ovnS, req, 'dpuo-a', newLsp('dpuo-b', req, L))[2] as Argv], /port name is not this DPU's system-id/],
    ['a requested-chassis list', [withJson(addPort(), (j) => j.replace('["requested-chassis","dpuo-a"]', '["requested-chassis","dpuo-a,dpuo-b"]'))], /not this DPU's system-id/],
    ['an extra option', [withJson(addPort(), (j) => j.replace('["requested-chassis","dpuo-a"]]', '["requested-chassis","dpuo-a"],["x","y"]]'))], /not the plugin's transaction|not one of/],
    ['a smuggled column (type)', [withJson(addPort(), (j) => j.replace('"addresses":', '"type":"localnet","addresses":'))], /not one of the plugin's OVN_Northbound transactions/],
    ['reordered keys', [withJson(addPort(), (j) => j.replace('"op":"insert","table":"Logical_Switch_Port"', '"table":"Logical_Switch_Port","op":"insert"'))], /not one of/],
    ['an extra op', [withJson(addPort(), (j) => `${j.slice(0, -1)},{"op":"delete","table":"Logical_Switch","where":[]}]`)], /not the plugin's transaction/],
    ['injected JSON in an owner value', [withJson(addPort(), (j) => j.replace('["dpu-overlay.container","c1"]', '["dpu-overlay.container","c1"],["dpu-overlay.x","y"]'))], /not one of|not the plugin's/],
    ['spaces between tokens', [withJson(addPort(), (j) => j.replace('"op":"insert"', '"op": "insert"'))], /not one of/],
    ['a switch UUID that is not the VNI\'s', [withJson(ensure(), (j) => j.replaceAll('000000000064', '000000000065'))], /not the plugin's transaction/],
    ['a switch outside the prefix', [ovnPlugCommands({ ...ovnS, ovn: { ...ovnS.ovn, switchPrefix: 'other' } }, req, 'dpuo-a', lsp)[1] as Argv], /switch name other100 is not a configured prefix/],
    ['a bad address', [ovnPlugCommands(ovnS, { ...req, mac: '02:aa:00:00:00:01 10.0.0.1; x' }, 'dpuo-a', lsp)[2] as Argv], /addresses must be a MAC/],
    ['a delete without the owner wait', [withJson(ovnUnplugCommands(ovnS, 'dpuo-a', [{ vni: 100, lsp }])[0] as Argv, (j) => `["OVN_Northbound",${j.slice(j.indexOf('{"op":"mutate"'))}`)], /not one of/],
    ['a delete of another chassis\'s port', [ovnUnplugCommands(ovnS, 'dpuo-b', [{ vni: 100, lsp }])[0] as Argv], /requested-chassis is not this DPU's system-id/],
    ['a delete of a port named for another chassis', [ovnUnplugCommands(ovnS, 'dpuo-a', [{ vni: 100, lsp: { uuid: L, name: 'dpuo-dpuo-b-0123456789abcdef' } }])[0] as Argv], /port name is not this DPU's system-id/],
    ['a query of another chassis\'s ports', [minePortsCommand(ovnS, 'dpuo-b', 'net-a')], /not this DPU's system-id/],
    ['a query of a foreign port by name', [portByNameCommand(ovnS, 'vm1')], /not this DPU's system-id/],
    ['a query of another table', [['ovsdb-client', '--timeout=10', 'query', '["OVN_Northbound",{"op":"select","table":"NB_Global","where":[],"columns":["options"]}]']], /not one of the plugin's OVN_Northbound queries/],
    ['an NB server named by the plugin', [['ovsdb-client', '--timeout=10', 'transact', 'tcp:203.0.113.9:6641', (ensure()[3] as string)]], /bridge-removal and tunnel-removal transactions/],
    ['an NB timeout over 600 s', [['ovsdb-client', '--timeout=601', 'transact', ensure()[3] as string]], /bridge-removal and tunnel-removal transactions/],
    ['iface-id of another chassis\'s port', [['ovs-vsctl', '--timeout=10', '-f', 'json', '--', '--id=@i', 'create', 'Interface', 'name=pf0vf3', 'external_ids:iface-id="dpuo-dpuo-b-0123456789abcdef"', `external_ids:iface-id-ver="${L}"`]], /subcommand not allowed/],
    ['two iface-ids', [['ovs-vsctl', '--timeout=10', '-f', 'json', '--', '--id=@i', 'create', 'Interface', 'name=pf0vf3', `external_ids:iface-id="${lsp.name}"`, `external_ids:iface-id="${lsp.name}"`, `external_ids:iface-id-ver="${L}"`]], /subcommand not allowed/],
    ['another bridge than br-int', [['ovs-vsctl', '--timeout=10', '-f', 'json', '--', '--if-exists', 'remove', 'Bridge', 'br-ex', 'ports', L]], /subcommand not allowed/],
    ['any br-int port by bare UUID (one the plugin never made)', [['ovs-vsctl', '--timeout=10', '-f', 'json', '--', '--if-exists', 'remove', 'Bridge', 'br-int', 'ports', L]], /subcommand not allowed/],
    ['a br-int port by name', [['ovs-vsctl', '--timeout=10', '-f', 'json', '--', '--if-exists', 'del-port', 'pf0vf3']], /subcommand not allowed/],
    ['a wait on another column', [['ovs-vsctl', '--timeout=10', 'wait-until', 'Interface', 'pf0vf3', 'external_ids:iface-id="x"']], /must start with/],
    ['other ovn-appctl commands', [['ovn-appctl', '-t', 'ovn-controller', 'exit']], /only "ovn-appctl -t ovn-controller connection-status"/],
    ['ovn-nbctl', [['ovn-nbctl', 'show']], /command ovn-nbctl is not allowed/],
  ])('refused: %s', (_name, commands, why) => {
    expectOvnRefused(commands, why);
  });

  it('without --ovn every OVN shape is refused, and --ovn-switch-prefix needs --ovn', () => {
    for (const c of [ensure(), addPort(), ['ovn-appctl', '-t', 'ovn-controller', 'connection-status'], chassisQuery(ovnS), ovnPlugCommands(ovnS, req, 'dpuo-a', lsp)[4] as Argv]) {
      expectOvnRefused([c], /refused/, []);
    }
    expectOvnRefused([ensure()], /--ovn-switch-prefix needs --ovn/, ['--ovn-switch-prefix', 'vni']);
    expectOvnRefused([ensure()], /bad --ovn-switch-prefix/, ['--ovn', '--ovn-switch-prefix', 'v1']);
  });

  it('running an NB transaction: the DPU\'s NB server is named, op errors are scanned (65), an unreachable NB is 69', () => {
    const bin = fakeDpu();
    // an ovsdb-client that logs its argv and prints the result the test chose
    writeFileSync(`${bin}/ovsdb-client`, `#!/bin/sh\nprintf '%s\\n' "$*" >>${bin}/argv\ncat ${bin}/answer\nexit $(cat ${bin}/rc)\n`);
    chmodSync(`${bin}/ovsdb-client`, 0o755);
    const run = (commands: Argv[], answer: string, rc = 0) => {
      writeFileSync(`${bin}/answer`, answer);
      writeFileSync(`${bin}/rc`, String(rc));
      return spawnSync('sh', [GUARD, '--ovn'], { input: commandLine(commands) + '\n', env: { PATH: `${bin}:${process.env.PATH}`, SSH_ORIGINAL_COMMAND: REMOTE_COMMAND }, encoding: 'utf8' });
    };
    const del = ovnUnplugCommands(ovnS, 'dpuo-a', [{ vni: 100, lsp }]);
    let r = run([ensure()], '[{},{"details":"x","error":"duplicate uuid"}]\n');
    expect([r.status, r.stdout]).toEqual([0, '[{},{"details":"x","error":"duplicate uuid"}]\n']);
    expect(readFileSync(`${bin}/argv`, 'utf8')).toBe(`--timeout=10 transact ${NB_REMOTE} ${ensure()[3]}\n`);
    // add-port repeated after a lost channel: its logical port (a UUID new per ADD attempt) is there already
    r = run([addPort()], '[{},{"details":"x","error":"duplicate uuid"},null]\n');
    expect([r.status, r.stderr]).toEqual([0, '']);
    r = run([addPort()], '[{},{"details":"x","error":"constraint violation"},null]\n');
    expect([r.status, r.stderr]).toEqual([65, 'dpu-guard: OVN_Northbound add-port: constraint violation: x\n']);
    r = run(del, '[{"details":"\\"where\\" clause test failed","error":"timed out"},null]\n');
    expect(r.status).toBe(0);
    // an "error" inside a value is not an op error
    r = run([portByNameCommand(ovnS, lsp.name)], '[{"rows":[{"name":"a\\",\\"error\\":\\"boom","external_ids":["map",[["error","x"]]]}]}]\n');
    expect([r.status, r.stderr]).toEqual([0, '']);
    r = run([ensure()], '', 1);
    expect(r.status).toBe(69);
    expect(r.stderr).toMatch(/cannot reach the northbound server tcp:198\.51\.100\.254:6641/);
    r = run([ensure(), addPort()], '[{},{"details":"d","error":"constraint violation"}]\n');
    expect([r.status, r.stderr]).toEqual([65, 'dpu-guard: OVN_Northbound ensure-switch: constraint violation: d\n']);
  });

  it('a DPU without a usable system-id, ovn-nb or with another ovn-bridge gets no OVN shape', () => {
    expectOvnRefused([chassisQuery(ovnS), ensure()], /system-id is not set/, ['--ovn'], fakeDpu({ sysid: '' }));
    expectOvnRefused([ensure()], /system-id is not set or not a name/, ['--ovn'], fakeDpu({ sysid: 'a b' }));
    expectOvnRefused([ensure()], /ovn-nb is not set/, ['--ovn'], fakeDpu({ nb: '' }));
    expectOvnRefused([ensure()], /ovn-nb must be tcp:, ssl: or unix:/, ['--ovn'], fakeDpu({ nb: 'tcp:1.2.3.4:6641 --x' }));
    expectOvnRefused([ensure()], /ovn-bridge is not br-int/, ['--ovn'], fakeDpu({ bridge: 'br-x' }));
  });
});

test('the guard compiles without a warning under perl -w (it does not load warnings.pm per call)', () => {
  const r = spawnSync('perl', ['-w', '-x', '-c', GUARD], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  expect(r.stderr.trim()).toBe(`${GUARD} syntax OK`);
  expect(readFileSync(GUARD, 'utf8')).not.toMatch(/^\s*(?:use|no) warnings\b/m);
});

describe('the guard compiles only the sections a command needs', () => {
  const SECTIONS = ['ovsdb', 'ovn', 'ovnrest', 'devlink'];

  test('every section after __DATA__ compiles without a warning under perl -w', () => {
    const text = readFileSync(GUARD, 'utf8');
    expect([...text.matchAll(/^#@section ([a-z]+)$/gm)].map((m) => m[1])).toEqual(SECTIONS);
    const r = spawnSync('perl', ['-w', '-x', '--', GUARD, '--compile-all'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  /** A copy of the guard whose named sections no longer compile. */
  function brokenGuard(...sections: string[]): string {
    const dir = tmpDir('guard-sections-');
    let text = readFileSync(GUARD, 'utf8');
    for (const section of sections) text = text.replace(`#@section ${section}\n`, `#@section ${section}\nthis does not compile (\n`);
    writeFileSync(`${dir}/dpu-guard.sh`, text);
    return `${dir}/dpu-guard.sh`;
  }

  function run(guard: string, commands: readonly Argv[], guardArgs: string[] = []) {
    return spawnSync('sh', [guard, '--dry-run', ...guardArgs], {
      input: commandLine(commands) + '\n',
      env: { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: REMOTE_COMMAND },
      encoding: 'utf8',
    });
  }

  const plug = plugCommands(base, { network: 'net-a', vni: 100, containerId: 'c1', ifname: 'eth0', netns: '/run/netns/x', representor: 'pf0vf3', mtu: 1400 }, tunnelQueries([{ bridge: 'br-vni100', vni: 100 }])).commands;

  test('a plug line is checked by the part compiled up front alone: with every section broken it still passes', () => {
    const guard = brokenGuard(...SECTIONS);
    const r = run(guard, plug);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test.each([
    ['ovsdb', [removeOwnedPortCommand({ uuid: UUID[0], name: 'pf0vf3', owner: { containerId: 'c1', ifname: 'eth0', network: 'net-a' } })], []],
    ['devlink', [[...DEVLINK_PORTS_QUERY]], []],
    ['ovn', [['ovn-appctl', '-t', 'ovn-controller', 'connection-status']], ['--ovn']],
  ] as Array<[string, Argv[], string[]]>)('a command that needs the %s section is refused when that section does not compile', (section, commands, guardArgs) => {
    expect(run(GUARD, commands, guardArgs).status).toBe(0);
    const r = run(brokenGuard(section), commands, guardArgs);
    expect(r.status).toBe(126);
    expect(r.stderr).toMatch(new RegExp(`refused: internal error: the guard's section ${section} does not compile`));
  });
});
