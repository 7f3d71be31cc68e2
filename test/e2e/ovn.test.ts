/**
 * OVN mode end to end (issue 14): dist/dpu-overlay with dpu.controlPlane "ovn" on the testbed's OVN emulation
 * (testbed.sh up --ovn: central netns, ovn-controller per DPU, the plugin's key forced through guard --ovn).
 */
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { addPortTxn, ensureSwitchTxn, newLsp, NB, ovsJson } from '../../src/dpu/ovn/commands';
import { removeOwnedPortCommand } from '../../src/dpu/ovs/commands';
import { commandLine } from '../../src/dpu/quote';
import {
  BINARY, cni, cniAsync, type CniOutcome, container, dpuCtl, dpuExec, firstIp, hostLocal, inNetns, netConf, ovnCtl, ovnNbctl, p0Packets, readJsonLines,
  type NetConfig, NODE_FILE, removeContainers, requireBinary, ROOT, sh, site, type Site, spawnDaemon, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(180000);

let tb: Testbed;
let A: Site;
let B: Site;
let C: Site;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(3, 'a,b,c', 1, { ovn: true });
  A = site(tb, 'a');
  B = site(tb, 'b');
  C = site(tb, 'c');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const RANGE: Record<string, [string, string]> = { a: ['10.100.0.10', '10.100.0.39'], b: ['10.100.0.40', '10.100.0.69'], c: ['10.100.0.70', '10.100.0.99'] };

/** An operator's OVN-mode config: no localVtep, no remoteVteps, MTU 1400 for Geneve over a 1500-byte underlay. */
function ovnConf(s: Site, vni = 100, dpu: Record<string, unknown> = {}): NetConfig {
  const [start, end] = vni === 100 ? (RANGE[s.name] as [string, string]) : [`10.${vni}.0.10`, `10.${vni}.0.99`];
  const subnet = vni === 100 ? '10.100.0.0/24' : `10.${vni}.0.0/24`;
  return netConf(tb, s, { name: `vni${vni}`, vni, ipam: hostLocal(tb, s, subnet, start, end, `vni${vni}`), dpu: { controlPlane: 'ovn', timeoutMs: 15000, ...dpu }, extra: { mtu: 1400 }, drop: ['dpu.localVtep', 'dpu.remoteVteps'] });
}

function added(s: Site, id: string, vni = 100): { ns: string; ip: string; out: CniOutcome } {
  const ns = container(id);
  const out = cni(s, ovnConf(s, vni), { command: 'ADD', containerId: id, netns: ns });
  expect([out.status, out.json?.msg]).toEqual([0, undefined]);
  return { ns, ip: firstIp(out.json), out };
}

function del(s: Site, id: string, ns: string, vni = 100): void {
  const out = cni(s, ovnConf(s, vni), { command: 'DEL', containerId: id, netns: ns });
  expect([out.status, out.json?.msg]).toEqual([0, undefined]);
}

function pingRetry(from: string, to: string, tries = 10): boolean {
  // the first packets after ovn-installed may still race the remote chassis's flows
  for (let i = 0; i < tries; i++) {
    if (inNetns(from, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', to]).status === 0) return true;
  }
  return false;
}

const pingOnce = (from: string, to: string) => inNetns(from, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', to]).status === 0;
const lsps = () => ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch_Port').split('\n').filter(Boolean).sort();
const switches = () => ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch').split('\n').filter(Boolean).sort();
/** br-int's ports but ovn-controller's own tunnel ports (ovn-<chassis>-N). */
const brInt = (s: Site) => dpuExec(s.dpu, 'ovs-vsctl', 'list-ports', 'br-int').split('\n').filter((p) => p !== '' && !p.startsWith('ovn-'));
const lspOf = (containerId: string) => ovnNbctl(tb, '--bare', '--columns=name', 'find', 'Logical_Switch_Port', `external_ids:"dpu-overlay.container"="${containerId}"`).trim();
const records = (s: Site) => {
  const dir = join(tb.stateDir, `plugin-${s.name}`, 'attachments');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')).sort() : [];
};
const sshA = (command: string) =>
  spawnSync('ip', ['netns', 'exec', A.hostNetns, 'ssh', '-i', tb.privateKeyFile, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${A.dpuHost}`, command], { encoding: 'utf8', timeout: 30000 });

describe('OVN mode through dist/dpu-overlay', () => {
  test('ADD on two hosts, ping across, CHECK, ovn-nbctl show, no flooding to a third chassis, port security, DEL cleans up', () => {
    const a = added(A, 'oa');
    const b = added(B, 'ob');
    expect(a.out.json?.interfaces).toBeDefined();
    expect(pingRetry(a.ns, b.ip)).toBe(true);
    for (const [s, c, id] of [[A, a, 'oa'], [B, b, 'ob']] as const) {
      const check = cni(s, { ...ovnConf(s), prevResult: c.out.json }, { command: 'CHECK', containerId: id, netns: c.ns });
      expect([check.status, check.json?.msg]).toEqual([0, undefined]);
    }
    const show = ovnNbctl(tb, 'show');
    expect(show).toContain('(vni100)');
    const pa = lspOf('oa');
    const pb = lspOf('ob');
    expect(pa).toMatch(new RegExp(`^dpuo-${A.ovnSystemId}-[0-9a-f]{16}$`));
    expect(pb).toMatch(new RegExp(`^dpuo-${B.ovnSystemId}-[0-9a-f]{16}$`));
    expect(show).toContain(`port ${pa}`);
    expect(show).toContain(`port ${pb}`);
    expect(ovnNbctl(tb, 'get', 'Logical_Switch', 'vni100', 'other_config:requested-tnl-key').trim()).toBe('"100"');

    // C has no port on vni100: a broadcast from a's container goes to b's chassis only
    expect(brInt(C)).toEqual([]);
    const c0 = p0Packets('c');
    const b0 = p0Packets('b');
    inNetns(a.ns, 'ping', ['-b', '-c', '5', '-i', '0.2', '-W', '1', '10.100.0.255']);
    expect(p0Packets('b') - b0).toBeGreaterThanOrEqual(5);
    expect(p0Packets('c') - c0).toBe(0);
    // the counter's control: once c has a port on vni100, the same broadcast reaches it
    const c = added(C, 'oc');
    let reached = 0;
    // a's flood group learns of c's port from the SB a moment after c's ovn-installed
    for (let i = 0; i < 10 && reached < 5; i++) {
      const c1 = p0Packets('c');
      inNetns(a.ns, 'ping', ['-b', '-c', '5', '-i', '0.2', '-W', '1', '10.100.0.255']);
      reached = p0Packets('c') - c1;
    }
    expect(reached).toBeGreaterThanOrEqual(5);
    del(C, 'oc', c.ns);

    // port security: a spoofed source MAC gets nothing through; the real one again does
    const mac = (inNetns(a.ns, 'cat', ['/sys/class/net/eth0/address']).stdout as string).trim();
    expect(inNetns(a.ns, 'ip', ['link', 'set', 'dev', 'eth0', 'address', '02:de:ad:be:ef:01']).status).toBe(0);
    inNetns(a.ns, 'ip', ['neigh', 'flush', 'all']);
    expect(pingOnce(a.ns, b.ip)).toBe(false);
    expect(inNetns(a.ns, 'ip', ['link', 'set', 'dev', 'eth0', 'address', mac]).status).toBe(0);
    expect(pingRetry(a.ns, b.ip)).toBe(true);

    const repA = brInt(A);
    expect(repA).toHaveLength(1);
    del(A, 'oa', a.ns);
    expect(lsps()).toEqual([pb]);
    expect(brInt(A)).toEqual([]);
    expect(switches()).toEqual(['vni100']);
    del(B, 'ob', b.ns);
    expect(lsps()).toEqual([]);
    expect(brInt(B)).toEqual([]);
    expect(switches()).toEqual([]);
    expect(records(A)).toEqual([]);
  });

  test('VNI isolation: a container on VNI 200 cannot reach VNI 100', () => {
    const a = added(A, 'iso-a');
    const b = added(B, 'iso-b');
    const b2 = added(B, 'iso-b2', 200);
    expect(pingRetry(a.ns, b.ip)).toBe(true);
    // same subnet on VNI 200 as a's, so only the overlay separates them
    expect(inNetns(b2.ns, 'ip', ['addr', 'add', '10.100.0.200/24', 'dev', 'eth0']).status).toBe(0);
    expect(pingOnce(b2.ns, a.ip)).toBe(false);
    expect(switches()).toEqual(['vni100', 'vni200']);
    del(A, 'iso-a', a.ns);
    del(B, 'iso-b', b.ns);
    del(B, 'iso-b2', b2.ns, 200);
    expect(switches()).toEqual([]);
  });

  test('GC removes this chassis\'s logical port that is not in the valid list', () => {
    const keep = added(A, 'gc-keep');
    const drop = added(A, 'gc-drop');
    const other = added(B, 'gc-other');
    const gone = lspOf('gc-drop');
    const gc = cni(A, { ...ovnConf(A), 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] }, { command: 'GC' });
    expect([gc.status, gc.json?.msg]).toEqual([0, undefined]);
    expect(lsps()).not.toContain(gone);
    expect(lsps()).toContain(lspOf('gc-keep'));
    expect(lsps()).toContain(lspOf('gc-other'));
    expect(brInt(A)).toHaveLength(1);
    del(A, 'gc-keep', keep.ns);
    del(A, 'gc-drop', drop.ns);
    del(B, 'gc-other', other.ns);
    expect(lsps()).toEqual([]);
  });

  test('STATUS is ok, and code 50 while ovn-controller is stopped', () => {
    expect(cni(A, ovnConf(A), { command: 'STATUS' }).status).toBe(0);
    dpuCtl('a', 'ovn-controller-stop');
    try {
      const st = cni(A, ovnConf(A), { command: 'STATUS' });
      expect([st.status, st.json?.code]).toEqual([1, 50]);
    } finally {
      dpuCtl('a', 'ovn-controller-start');
    }
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) ok = cni(A, ovnConf(A), { command: 'STATUS' }).status === 0;
    expect(ok).toBe(true);
  });

  test('ADD with the NB unreachable fails with 11 and rolls back; works after', () => {
    ovnCtl('nb-block');
    let ns = '';
    try {
      ns = container('nb-down');
      const out = cni(A, ovnConf(A), { command: 'ADD', containerId: 'nb-down', netns: ns });
      expect([out.status, out.json?.code]).toEqual([1, 11]);
      expect(brInt(A)).toEqual([]);
      expect(inNetns(ns, 'ip', ['link', 'show', 'eth0']).status).not.toBe(0);
      expect(records(A)).toEqual([]);
    } finally {
      ovnCtl('nb-unblock');
    }
    const a = added(A, 'nb-up');
    expect(brInt(A)).toHaveLength(1);
    del(A, 'nb-up', a.ns);
    expect(lsps()).toEqual([]);
  });

  test('DEL with the NB unreachable fails with 11 and keeps the record, as with an unreachable DPU; the retry cleans up', () => {
    const a = added(A, 'del-nb');
    ovnCtl('nb-block');
    try {
      const out = cni(A, ovnConf(A), { command: 'DEL', containerId: 'del-nb', netns: a.ns });
      expect([out.status, out.json?.code]).toEqual([1, 11]);
      expect(records(A)).toEqual(['del-nb:eth0']);
    } finally {
      ovnCtl('nb-unblock');
    }
    del(A, 'del-nb', a.ns);
    expect(records(A)).toEqual([]);
    expect(lsps()).toEqual([]);
    expect(brInt(A)).toEqual([]);
  });

  test('ADD with ovn-controller stopped fails with 11 (port never up) and rolls back; a restart keeps a port working', () => {
    const b = added(B, 'oc-peer');
    dpuCtl('a', 'ovn-controller-stop');
    try {
      const ns = container('oc-down');
      const short = ovnConf(A, 100, { ovn: { upTimeoutMs: 2000 } });
      const out = cni(A, short, { command: 'ADD', containerId: 'oc-down', netns: ns });
      expect([out.status, out.json?.code]).toEqual([1, 11]);
      expect(out.json?.msg).toMatch(/ovn-controller|up/);
      expect(brInt(A)).toEqual([]);
      expect(inNetns(ns, 'ip', ['link', 'show', 'eth0']).status).not.toBe(0);
      expect(records(A)).toEqual([]);
      expect(lsps()).toEqual([lspOf('oc-peer')]);
    } finally {
      dpuCtl('a', 'ovn-controller-start');
    }
    const a = added(A, 'oc-up');
    expect(pingRetry(a.ns, b.ip)).toBe(true);
    dpuCtl('a', 'ovn-controller-restart');
    expect(pingRetry(a.ns, b.ip)).toBe(true);
    del(A, 'oc-up', a.ns);
    del(B, 'oc-peer', b.ns);
    expect(lsps()).toEqual([]);
  });

  test('CHECK fails with 120 when the logical port was deleted behind the plugin\'s back; DEL still cleans up', () => {
    const a = added(A, 'chk');
    const port = lspOf('chk');
    ovnNbctl(tb, 'lsp-del', port);
    const check = cni(A, { ...ovnConf(A), prevResult: a.out.json }, { command: 'CHECK', containerId: 'chk', netns: a.ns });
    expect([check.status, check.json?.code]).toEqual([1, 120]);
    del(A, 'chk', a.ns);
    expect(brInt(A)).toEqual([]);
    expect(switches()).toEqual([]);
  });

  test('three DPUs racing on a new VNI: ADDs make one switch, DELs leave none', async () => {
    const sites = [A, B, C];
    const ns = sites.map((s) => container(`race-${s.name}`));
    const adds = await Promise.all(sites.map((s, i) => cniAsync(s, ovnConf(s, 250), { command: 'ADD', containerId: `race-${s.name}`, netns: ns[i] as string })));
    expect(adds.map((r) => [r.status, r.json?.msg])).toEqual(sites.map(() => [0, undefined]));
    expect(switches()).toEqual(['vni250']);
    expect(lsps()).toHaveLength(3);
    const dels = await Promise.all(sites.map((s, i) => cniAsync(s, ovnConf(s, 250), { command: 'DEL', containerId: `race-${s.name}`, netns: ns[i] as string })));
    expect(dels.map((r) => [r.status, r.json?.msg])).toEqual(sites.map(() => [0, undefined]));
    expect(switches()).toEqual([]);
    expect(lsps()).toEqual([]);
  });

  test('a switchPrefix the guard was not given is refused on the DPU, and ADD rolls back with a message naming the guard option', () => {
    const ns = container('prefix');
    const other = ovnConf(A, 100, { ovn: { switchPrefix: 'tenant' } });
    const out = cni(A, other, { command: 'ADD', containerId: 'prefix', netns: ns });
    expect([out.status, out.json?.code]).toEqual([1, 112]);
    expect(out.json?.msg).toMatch(/tenant100 is not a configured prefix.*--ovn-switch-prefix matching dpu\.ovn\.switchPrefix/);
    expect(brInt(A)).toEqual([]);
    expect(records(A)).toEqual([]);
    expect(switches()).toEqual([]);
  });

  test('the guard refuses a logical port for another chassis (exit 126), over the DPU SSH with the plugin\'s key', () => {
    const settings = { timeoutMs: 10000, hwOffload: 'ignore' as const, ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 } };
    const req = { network: 'vni100', containerId: 'thief', ifname: 'eth0', vni: 100, netns: '/x', representor: A.vfs[0]?.representor ?? 'pf0vf0', mtu: 1400, mac: '02:00:00:00:00:99', ips: ['10.100.0.99'], host: 'h' };
    const forB = newLsp(B.ovnSystemId as string, req, randomUUID());
    const line = commandLine([['ovsdb-client', '--timeout=10', 'transact', ovsJson([NB, ...addPortTxn(settings, req, B.ovnSystemId as string, forB)])]]);
    const r = sshA(line);
    expect(r.status).toBe(126);
    expect(r.stderr).toMatch(/system-id/);
    expect(lsps()).toEqual([]);
    // the same key cannot run anything else
    expect(sshA('ovn-nbctl ls-add evil').status).toBe(126);
  });

  test('a template that reaches another pod\'s representor: 102, that pod\'s br-int port and logical port untouched, this ADD\'s logical port rolled back', () => {
    const v = added(A, 'ovictim');
    const rep = brInt(A)[0] as string;
    const before = dpuExec(A.dpu, 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', `name=${rep}`).trim();
    // the template is the node's: a node file of its own with the colliding template
    const bad = ovnConf(A, 200, { representorTemplate: rep.replace(/vf\d+$/, 'vf{pf}') });
    const ns = container('othief');
    const r = cni(A, bad, { command: 'ADD', containerId: 'othief', netns: ns });
    expect(r.json).toMatchObject({ code: 102 });
    expect(r.json?.msg).toMatch(/belongs to the live attachment of container ovictim/);
    expect(dpuExec(A.dpu, 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', `name=${rep}`).trim()).toBe(before);
    expect(lspOf('othief')).toBe('');
    expect(lspOf('ovictim')).not.toBe('');
    expect(cni(A, { ...ovnConf(A), prevResult: v.out.json }, { command: 'CHECK', containerId: 'ovictim', netns: v.ns }).status).toBe(0);
    expect(cni(A, bad, { command: 'DEL', containerId: 'othief', netns: ns }).status).toBe(0);
    del(A, 'ovictim', v.ns);
  });

  test('guard --ovn removes only ports with the plugin\'s owner external_ids: a br-int port it never made stays', () => {
    dpuExec(A.dpu, 'ovs-vsctl', 'add-port', 'br-int', 'pf0vf2', '--', 'set', 'Interface', 'pf0vf2', 'type=internal');
    const uuid = dpuExec(A.dpu, 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', 'name=pf0vf2').trim();
    expect(sshA(`ovs-vsctl --timeout=10 -f json -- --if-exists remove Bridge br-int ports ${uuid}`).status).toBe(126);
    expect(sshA('ovs-vsctl --timeout=10 -f json -- --if-exists del-port pf0vf2').status).toBe(126);
    const named = sshA(commandLine([removeOwnedPortCommand({ uuid, name: 'pf0vf2', owner: { network: 'vni100', containerId: 'x', ifname: 'eth0' } })]));
    expect([named.status, named.stdout]).toEqual([0, expect.stringMatching(/timed out/)]);
    expect(brInt(A)).toContain('pf0vf2');
    dpuExec(A.dpu, 'ovs-vsctl', 'del-port', 'br-int', 'pf0vf2');
  });

  test('an add-port repeated after a lost channel succeeds ("duplicate uuid" is its own logical port), and a re-plug (replug --all) replaces its own port', () => {
    const settings = { timeoutMs: 10000, hwOffload: 'ignore' as const, ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 } };
    const req = { network: 'vni100', containerId: 'twice', ifname: 'eth0', vni: 100, netns: '/x', representor: 'pf0vf2', mtu: 1400, mac: '02:00:00:00:00:98', ips: ['10.100.0.98'], host: 'h' };
    const lsp = newLsp(A.ovnSystemId as string, req, randomUUID());
    const line = commandLine([['ovsdb-client', '--timeout=10', 'transact', ovsJson([NB, ...ensureSwitchTxn('vni', 100)])], ['ovsdb-client', '--timeout=10', 'transact', ovsJson([NB, ...addPortTxn(settings, req, A.ovnSystemId as string, lsp)])]]);
    for (let i = 0; i < 2; i++) expect([sshA(line).status, sshA(line).stderr]).toEqual([0, '']);
    expect(lspOf('twice')).toBe(lsp.name);
    ovnNbctl(tb, 'lsp-del', lsp.name);

    // a re-plug of a port that is still there (replug --all): the plug finds its own port in the way and replaces it
    const first = added(A, 'again');
    const portBefore = dpuExec(A.dpu, 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', 'external_ids:dpu-overlay.container=again').trim();
    const replug = spawnSync('ip', ['netns', 'exec', A.hostNetns, BINARY, 'replug', '--all', '--state-dir', join(tb.stateDir, `plugin-${A.name}`), '--log-file', join(tb.stateDir, 'ovn-replug.log')], { encoding: 'utf8', timeout: 60000 });
    expect([replug.status, replug.stderr]).toEqual([0, '']);
    const portAfter = dpuExec(A.dpu, 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', 'external_ids:dpu-overlay.container=again').trim();
    expect(portAfter).not.toBe(portBefore);
    expect(portAfter).toMatch(/^[0-9a-f-]{36}$/);
    expect(brInt(A)).toHaveLength(1);
    expect(cni(A, { ...ovnConf(A), prevResult: first.out.json }, { command: 'CHECK', containerId: 'again', netns: first.ns }).status).toBe(0);
    del(A, 'again', first.ns);
    expect(brInt(A)).toEqual([]);
  });

  test('ADD, CHECK, DEL, GC and STATUS through the daemon (the warm DPU channel) in OVN mode', async () => {
    const socket = join(tb.stateDir, 'ovn-daemon', 'dpu.sock');
    const log = join(tb.stateDir, 'ovn-daemon.log');
    rmSync(log, { force: true });
    // the socket is the node owner's: the plugin finds it in the config's node file, the daemon reads that file too
    const viaDaemon = ovnConf(A, 100, { daemonSocket: socket });
    const daemon = await spawnDaemon(A, { socket, logFile: log, nodeConfig: viaDaemon[NODE_FILE] });
    try {
      const b = added(B, 'dmn-b');
      const ns = container('dmn-a');
      const add = cni(A, viaDaemon, { command: 'ADD', containerId: 'dmn-a', netns: ns });
      expect([add.status, add.json?.msg]).toEqual([0, undefined]);
      expect(pingRetry(ns, b.ip)).toBe(true);
      expect(cni(A, { ...viaDaemon, prevResult: add.json }, { command: 'CHECK', containerId: 'dmn-a', netns: ns }).status).toBe(0);
      expect(cni(A, viaDaemon, { command: 'STATUS' }).status).toBe(0);
      expect(cni(A, { ...viaDaemon, 'cni.dev/valid-attachments': [{ containerID: 'dmn-a', ifname: 'eth0' }] }, { command: 'GC' }).status).toBe(0);
      expect(lsps()).toContain(lspOf('dmn-a'));
      expect(cni(A, viaDaemon, { command: 'DEL', containerId: 'dmn-a', netns: ns }).status).toBe(0);
      const ops = readJsonLines(log).filter((l) => l.msg === 'request').map((l) => l.op);
      expect(ops).toEqual(expect.arrayContaining(['plug', 'unplug']));
      del(B, 'dmn-b', b.ns);
      expect(lsps()).toEqual([]);
      expect(brInt(A)).toEqual([]);
    } finally {
      await stopDaemon(daemon);
    }
  });

  test('through the daemon, a later ADD on a VNI sends no ensure-switch; a switch deleted behind its back is ensured again', async () => {
    const socket = join(tb.stateDir, 'ovn-daemon-sw', 'dpu.sock');
    const log = join(tb.stateDir, 'ovn-daemon-sw.log');
    rmSync(log, { force: true });
    const viaDaemon = ovnConf(A, 100, { daemonSocket: socket });
    const daemon = await spawnDaemon(A, { socket, logFile: log, nodeConfig: viaDaemon[NODE_FILE] });
    const ns = { a: container('sw-a'), c: container('sw-c'), d: container('sw-d') };
    const run = (command: 'ADD' | 'DEL', id: keyof typeof ns) => cni(A, viaDaemon, { command, containerId: `sw-${id}`, netns: ns[id] });
    try {
      const a = run('ADD', 'a');
      expect([a.status, a.json?.msg]).toEqual([0, undefined]);
      // the second ADD on VNI 100 inserts its port alone (the unit tests count the line's commands)
      expect(run('ADD', 'c').status).toBe(0);
      expect(pingRetry(ns.c, firstIp(a.json))).toBe(true);
      expect(readJsonLines(log).filter((l) => l.msg === 'OVN plug: retrying')).toEqual([]);
      // the switch goes behind the daemon's back: its next ADD there finds it gone and ensures it again
      ovnNbctl(tb, 'lsp-del', lspOf('sw-a'));
      ovnNbctl(tb, 'lsp-del', lspOf('sw-c'));
      ovnNbctl(tb, 'ls-del', 'vni100');
      expect(switches()).toEqual([]);
      const d = run('ADD', 'd');
      expect([d.status, d.json?.msg]).toEqual([0, undefined]);
      expect(switches()).toEqual(['vni100']);
      expect(readJsonLines(log).filter((l) => l.msg === 'OVN plug: retrying').map((l) => l.retry)).toEqual(['switch-gone']);
      for (const id of ['a', 'c', 'd'] as const) expect(run('DEL', id).status).toBe(0);
      expect(lsps()).toEqual([]);
      expect(switches()).toEqual([]);
      expect(brInt(A)).toEqual([]);
    } finally {
      await stopDaemon(daemon);
    }
  });

  test('install.sh --dpu --ovn on an emulated DPU writes guard --ovn into command=, and the plugin works through that key', () => {
    // this testbed's own guard directory: the machine-wide one is shared with other testbeds' runs
    const guardDir = join(tb.stateDir, 'guard');
    const key = join(tb.stateDir, 'installed_ed25519');
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dpu-overlay-installed', '-f', key]);
    const ovn = tb.ovn as NonNullable<Testbed['ovn']>;
    try {
      // in the DPU's namespaces, so its ovs-vsctl and ovn-appctl reach DPU a (same chassis keys as the testbed's)
      dpuExec('a', 'bash', join(ROOT, 'install.sh'), '--dpu', '--guard-dir', guardDir, '--authorize-key', `${key}.pub`, '--authorized-keys', join(tb.stateDir, 'authorized_keys'),
        '--ovn', '--ovn-remote', ovn.sb, '--ovn-nb', ovn.nb, '--encap-ip', A.localVtep, '--system-id', A.ovnSystemId as string,
        '--bridge-datapath-type', 'netdev', '--ovn-switch-prefix', 'vni');
      const line = readFileSync(join(tb.stateDir, 'authorized_keys'), 'utf8').split('\n').find((l) => l.endsWith(' dpu-overlay') && l.includes(readFileSync(`${key}.pub`, 'utf8').split(' ')[1] as string));
      expect(line?.startsWith(`command="${guardDir}/dpu-guard --ovn --ovn-switch-prefix 'vni'",`)).toBe(true);
      const ns = container('installed');
      const withKey = ovnConf(A, 100, { privateKeyFile: key });
      const add = cni(A, withKey, { command: 'ADD', containerId: 'installed', netns: ns });
      expect([add.status, add.json?.msg]).toEqual([0, undefined]);
      expect(cni(A, { ...withKey, prevResult: add.json }, { command: 'CHECK', containerId: 'installed', netns: ns }).status).toBe(0);
      expect(cni(A, withKey, { command: 'DEL', containerId: 'installed', netns: ns }).status).toBe(0);
      expect(lsps()).toEqual([]);
    } finally {
      rmSync(guardDir, { recursive: true, force: true });
    }
  });
});
