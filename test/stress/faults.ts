/**
 * Crashes and faults, each followed by the documented recovery (docs/operations.md "Recovery after crashes and faults"):
 * SIGKILL at every fault point of ADD and DEL (then DEL or GC), DPU sshd down, ovs-vswitchd restarted,
 * OVS database reset, the container's netns deleted before DEL, the stateDir lost (rebooted host), and a
 * slow DPU (timeouts fire with code 11). After each: host and DPU clean, the VF allocatable again.
 */
import { spawnSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FAULT_ENV, FAULT_POINTS } from '../../src/util/fault';
import {
  container, firstIp, hostDaemonPid, hostLocal, linkJson, netConf, nsName, ping, pluginPath, sh, type Site, site, startHostDaemons, TESTBED, type Testbed,
} from '../testkit/testbed';
import {
  expectCniError, expectSuccess, forcedWrapper, listTree, newTally, type Outcome, ovsState, type Probe, runPlugin, runProbes, type Tally, timed, violation,
} from './common';

const NET = { name: 'flt', vni: 3000 };

export interface FaultOptions {
  seed: number;
  progress?: (line: string) => void;
}

interface Bed {
  tb: Testbed;
  t: Tally;
  B: Site;
  C: Site;
  conf(s: Site, dpu?: Record<string, unknown>): Record<string, unknown>;
}

function dpuCtl(s: Site, action: string): void {
  sh('bash', [TESTBED, 'dpu-ctl', s.name, action]);
}

async function op(bed: Bed, s: Site, command: string, containerId: string, netns: string, extra: { conf?: Record<string, unknown>; env?: Record<string, string> } = {}): Promise<Outcome> {
  const out = await runPlugin(s, extra.conf ?? bed.conf(s), { command, containerId, netns }, { env: extra.env });
  timed(bed.t, `${command} (faults)`, out.ms);
  return out;
}

async function gc(bed: Bed, s: Site, keep: Array<{ containerID: string; ifname: string }> = []): Promise<Outcome> {
  return op(bed, s, 'GC', '', '', { conf: { ...bed.conf(s), 'cni.dev/valid-attachments': keep } });
}

/** Host and DPU of site s hold nothing of this network: VFs home, no state, no leases, no ports, no bridge. */
function expectClean(bed: Bed, s: Site, what: string): void {
  const { tb, t } = bed;
  const state = join(tb.stateDir, `plugin-${s.name}`);
  for (const sub of ['allocations', 'attachments']) {
    const left = listTree(join(state, sub));
    if (left.length) violation(t, `${what}: ${sub} left on ${s.name}: ${left.join(',')}`);
  }
  const leases = listTree(join(tb.stateDir, `ipam-${s.name}-${NET.name}`, NET.name));
  if (leases.length) violation(t, `${what}: IPAM leases left on ${s.name}: ${leases.join(',')}`);
  for (const vf of s.vfs.slice(0, 4)) {
    const l = linkJson(s.hostNetns, vf.netdev);
    if (!l || l.address !== vf.mac || l.mtu !== 1500) violation(t, `${what}: VF ${vf.netdev} on ${s.name} not back as it was: ${JSON.stringify(l)}`);
  }
  const ovs = ovsState(s.name);
  if (ovs.ports.length) violation(t, `${what}: container ports left on DPU ${s.name}: ${ovs.ports.map((p) => p.name).join(',')}`);
  if (ovs.bridges.includes(`br-vni${NET.vni}`)) violation(t, `${what}: br-vni${NET.vni} left on DPU ${s.name}`);
}

/** The VF is allocatable again (no stuck claim or lock): ADD gets VF 0 at once, DEL gives it back. */
async function expectReusable(bed: Bed, s: Site, what: string): Promise<void> {
  const ns = container(`${s.name}reuse`);
  const add = await op(bed, s, 'ADD', 'reuse', ns);
  if (!expectSuccess(bed.t, `${what}: ADD afterwards`, add)) return;
  const pci = (add.json?.interfaces as Array<{ pciID?: string }> | undefined)?.[0]?.pciID;
  if (pci !== s.vfs[0]?.pci) violation(bed.t, `${what}: ADD afterwards got ${pci}, not the freed ${s.vfs[0]?.pci}`);
  expectSuccess(bed.t, `${what}: DEL afterwards`, await op(bed, s, 'DEL', 'reuse', ns));
  expectClean(bed, s, `${what} (after reuse)`);
}

/**
 * DPU_OVERLAY_FAULT in the request's env kills whoever runs the command at that point: the plugin on the standalone
 * path; on the daemon path the daemon once it executes whole commands (until then the plugin, which still runs them
 * and only sends DPU operations to the daemon). A dead daemon is restarted before the repair, or after it (the repair
 * then runs standalone: the plugin falls back), alternately.
 */
async function killAtEachPoint(bed: Bed): Promise<void> {
  const { B, t, tb } = bed;
  const daemonPath = pluginPath() === 'daemon';
  for (const [i, point] of FAULT_POINTS.entries()) {
    const what = `SIGKILL at ${point}`;
    const ns = container(`kill${i}`);
    const id = `kill-${i}`;
    if (point.startsWith('del:')) {
      if (!expectSuccess(t, `${what}: ADD`, await op(bed, B, 'ADD', id, ns))) continue;
    }
    const daemonBefore = daemonPath ? hostDaemonPid(tb, B.name) : undefined;
    if (daemonPath && daemonBefore === undefined) violation(t, `${what}: the daemon of host ${B.name} is not running before the fault`);
    const killed = await op(bed, B, point.startsWith('add:') ? 'ADD' : 'DEL', id, ns, { env: { [FAULT_ENV]: point } });
    t.faults += 1;
    const daemonDied = daemonBefore !== undefined && hostDaemonPid(tb, B.name) !== daemonBefore;
    if (killed.signal !== 'SIGKILL' && !daemonDied) violation(t, `${what}: neither the plugin nor the daemon was killed there (exit ${killed.status}, ${killed.stdout.slice(0, 200)})`);
    const restartFirst = Math.floor(i / 2) % 2 === 0;
    if (daemonDied && restartFirst) startHostDaemons(B.name);
    // recovery alternates between the runtime's DEL and a GC that no longer lists the container
    const viaGc = i % 2 === 1;
    const how = `${viaGc ? 'GC' : 'DEL'}${daemonDied ? (restartFirst ? ' (daemon restarted)' : ' (daemon down: standalone)') : ''}`;
    const rec = viaGc ? await gc(bed, B) : await op(bed, B, 'DEL', id, ns);
    expectSuccess(t, `${what}: ${how}`, rec);
    expectClean(bed, B, `${what} + ${how}`);
    if (daemonDied && !restartFirst) startHostDaemons(B.name);
    await expectReusable(bed, B, what);
  }
}

/** ADDs a container on B and one on C (same VNI), returns their netns and results. */
async function pair(bed: Bed, tag: string): Promise<{ nb: string; nc: string; rb: Record<string, unknown>; rc: Record<string, unknown> } | undefined> {
  const nb = container(`${tag}b`);
  const nc = container(`${tag}c`);
  const ab = await op(bed, bed.B, 'ADD', `${tag}-b`, nb);
  const ac = await op(bed, bed.C, 'ADD', `${tag}-c`, nc);
  if (!expectSuccess(bed.t, `${tag}: ADD on b`, ab) || !expectSuccess(bed.t, `${tag}: ADD on c`, ac)) return undefined;
  return { nb, nc, rb: ab.json as Record<string, unknown>, rc: ac.json as Record<string, unknown> };
}

async function delPair(bed: Bed, tag: string, p: { nb: string; nc: string }): Promise<void> {
  expectSuccess(bed.t, `${tag}: DEL on b`, await op(bed, bed.B, 'DEL', `${tag}-b`, p.nb));
  expectSuccess(bed.t, `${tag}: DEL on c`, await op(bed, bed.C, 'DEL', `${tag}-c`, p.nc));
  expectClean(bed, bed.B, tag);
  expectClean(bed, bed.C, tag);
}

function reaches(from: string, result: Record<string, unknown>): boolean {
  for (let k = 0; k < 5; k++) if (ping(from, firstIp(result), 2)) return true;
  return false;
}

async function sshdDown(bed: Bed): Promise<void> {
  const { B, t } = bed;
  const tag = 'sshd';
  const ns = container('sshd');
  const fresh = container('sshd2');
  const add = await op(bed, B, 'ADD', 'sshd-1', ns);
  if (!expectSuccess(t, `${tag}: ADD`, add)) return;
  dpuCtl(B, 'sshd-stop'); // with its sessions: on the daemon path the daemon's connection drops too
  t.faults += 1;
  try {
    expectCniError(t, `${tag}: CHECK while sshd is down`, await op(bed, B, 'CHECK', 'sshd-1', ns, { conf: { ...bed.conf(B), prevResult: add.json } }), 11);
    expectCniError(t, `${tag}: ADD while sshd is down`, await op(bed, B, 'ADD', 'sshd-2', fresh), 11);
    expectCniError(t, `${tag}: DEL while sshd is down`, await op(bed, B, 'DEL', 'sshd-1', ns), 11);
    if (linkJson(B.hostNetns, B.vfs[0]?.netdev as string)?.address !== B.vfs[0]?.mac) violation(t, `${tag}: DEL with the DPU down did not give the VF back to the host`);
  } finally {
    dpuCtl(B, 'sshd-start');
  }
  expectSuccess(t, `${tag}: DEL retried after sshd is back`, await op(bed, B, 'DEL', 'sshd-1', ns));
  expectSuccess(t, `${tag}: DEL of the failed ADD`, await op(bed, B, 'DEL', 'sshd-2', fresh));
  expectClean(bed, B, tag);
}

async function vswitchdRestart(bed: Bed): Promise<void> {
  const tag = 'vswitchd';
  const p = await pair(bed, tag);
  if (!p) return;
  dpuCtl(bed.B, 'vswitchd-restart');
  bed.t.faults += 1;
  expectSuccess(bed.t, `${tag}: CHECK after the restart`, await op(bed, bed.B, 'CHECK', `${tag}-b`, p.nb, { conf: { ...bed.conf(bed.B), prevResult: p.rb } }));
  if (!reaches(p.nb, p.rc)) violation(bed.t, `${tag}: no traffic b -> c after ovs-vswitchd restarted`);
  await delPair(bed, tag, p);
}

async function dbReset(bed: Bed): Promise<void> {
  const { B, t } = bed;
  const tag = 'dbreset';
  const p = await pair(bed, tag);
  if (!p) return;
  dpuCtl(B, 'db-reset');
  t.faults += 1;
  if (pluginPath() === 'daemon') {
    // the daemon watches the DPU (docs/daemon.md "DPU reboot and OVS database reset") and plugs the port again by itself
    const deadline = Date.now() + 30000;
    while (ovsState(B.name).ports.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    if (ovsState(B.name).ports.length === 0) violation(t, `${tag}: the daemon did not plug the port again within 30 s`);
    expectSuccess(t, `${tag}: CHECK after the daemon re-plugged`, await op(bed, B, 'CHECK', `${tag}-b`, p.nb, { conf: { ...bed.conf(B), prevResult: p.rb } }));
    if (!reaches(p.nb, p.rc)) violation(t, `${tag}: no traffic b -> c after the daemon re-plugged`);
  } else {
    expectCniError(t, `${tag}: CHECK reports the lost port`, await op(bed, B, 'CHECK', `${tag}-b`, p.nb, { conf: { ...bed.conf(B), prevResult: p.rb } }), 120);
  }
  // recovery: the runtime's DEL (idempotent on the DPU) and a new ADD
  expectSuccess(t, `${tag}: DEL`, await op(bed, B, 'DEL', `${tag}-b`, p.nb));
  const again = await op(bed, B, 'ADD', `${tag}-b`, p.nb);
  if (expectSuccess(t, `${tag}: ADD again`, again) && !reaches(p.nb, p.rc)) violation(t, `${tag}: no traffic b -> c after DEL and ADD`);
  await delPair(bed, tag, p);
}

/** The kernel gives a physical VF back to the host when its namespace dies; the testbed's veth VF is moved back by hand. */
function killNetnsReturningVf(s: Site, netns: string, vfIndex: number, tb: Testbed, hostName: string): void {
  const vf = s.vfs[vfIndex];
  if (!vf) throw new Error(`no VF ${vfIndex}`);
  sh('ip', ['-n', nsName(netns), 'link', 'set', 'eth0', 'down']);
  sh('ip', ['-n', nsName(netns), 'link', 'set', 'eth0', 'netns', s.hostNetns, 'name', hostName]);
  spawnSync('ip', ['netns', 'del', nsName(netns)]);
  // sysfs names the VF's netdev as the kernel now does
  const net = join(tb.stateDir, `host-${s.name}`, 'sys', 'bus', 'pci', 'devices', vf.pci, 'net');
  if (hostName !== vf.netdev) renameSync(join(net, vf.netdev), join(net, hostName));
}

function sysfsRename(tb: Testbed, s: Site, vfIndex: number, from: string, to: string): void {
  const vf = s.vfs[vfIndex] as { pci: string };
  const net = join(tb.stateDir, `host-${s.name}`, 'sys', 'bus', 'pci', 'devices', vf.pci, 'net');
  renameSync(join(net, from), join(net, to));
}

async function netnsDeleted(bed: Bed): Promise<void> {
  const { B, t, tb } = bed;
  const tag = 'netns-gone';
  const ns = container('gone');
  if (!expectSuccess(t, `${tag}: ADD`, await op(bed, B, 'ADD', 'gone-1', ns))) return;
  killNetnsReturningVf(B, ns, 0, tb, 'eth0');
  t.faults += 1;
  const del = await op(bed, B, 'DEL', 'gone-1', ns);
  // DEL renames the VF back; the kernel then names the sysfs entry again
  sysfsRename(tb, B, 0, 'eth0', B.vfs[0]?.netdev as string);
  expectSuccess(t, `${tag}: DEL with the namespace gone`, del);
  expectClean(bed, B, tag);
  await expectReusable(bed, B, tag);
}

async function stateLost(bed: Bed): Promise<void> {
  const { B, t, tb } = bed;
  const tag = 'state-lost';
  const n1 = container('lost1');
  const n2 = container('lost2');
  const a1 = await op(bed, B, 'ADD', 'lost-1', n1);
  const a2 = await op(bed, B, 'ADD', 'lost-2', n2);
  if (!expectSuccess(t, `${tag}: ADD 1`, a1) || !expectSuccess(t, `${tag}: ADD 2`, a2)) return;
  // "reboot": containers gone, VFs back under their own names, MAC and MTU reset by the driver; stateDir wiped
  for (const [k, ns] of [n1, n2].entries()) {
    killNetnsReturningVf(B, ns, k, tb, B.vfs[k]?.netdev as string);
    sh('ip', ['-n', B.hostNetns, 'link', 'set', B.vfs[k]?.netdev as string, 'address', B.vfs[k]?.mac as string, 'mtu', '1500']);
  }
  rmSync(join(tb.stateDir, `plugin-${B.name}`), { recursive: true, force: true });
  t.faults += 1;
  const fresh = container('lost1');
  expectCniError(t, `${tag}: CHECK reports the lost state (120: the runtime must still DEL)`, await op(bed, B, 'CHECK', 'lost-1', fresh, { conf: { ...bed.conf(B), prevResult: a1.json } }), 120);
  // GC removes the DPU ports nobody lists any more; the runtime's DELs release the addresses
  expectSuccess(t, `${tag}: GC`, await gc(bed, B));
  if (ovsState(B.name).ports.length) violation(t, `${tag}: GC left container ports on the DPU`);
  expectSuccess(t, `${tag}: DEL 1`, await op(bed, B, 'DEL', 'lost-1', ''));
  expectSuccess(t, `${tag}: DEL 2`, await op(bed, B, 'DEL', 'lost-2', ''));
  expectClean(bed, B, tag);
  await expectReusable(bed, B, tag);
}

async function slowDpu(bed: Bed): Promise<void> {
  const { B, t } = bed;
  const tag = 'slow DPU';
  const sleepS = 4;
  const timeoutMs = 1500;
  const margin = 3000; // process start, host steps and their undo on a loaded 2-core machine
  const slow = forcedWrapper(bed.tb, 'slow', sleepS);
  const slowConf = bed.conf(B, { privateKeyFile: slow.key, timeoutMs });
  // On the daemon path the ADD runs in the daemon, whose DPU request gives up at the exec limit like the plugin's own;
  // the forwarding and the daemon's rollback get one more timeoutMs and a second (the daemon's protocol bound,
  // dpuRequestBoundMs in src/protocol/deadlines.ts, is far larger: it caps a stuck daemon, not a slow DPU).
  const limitMs = pluginPath() === 'daemon' ? 2 * timeoutMs + 1000 : timeoutMs;
  const ns = container('slow');
  t.faults += 1;
  const add = await op(bed, B, 'ADD', 'slow-1', ns, { conf: slowConf });
  expectCniError(t, `${tag}: ADD`, add, 11);
  if (add.ms > limitMs + margin) violation(t, `${tag}: ADD took ${add.ms} ms with timeoutMs ${timeoutMs} (limit ${limitMs} ms on the ${pluginPath()} path)`);
  expectClean(bed, B, `${tag}: after the failed ADD (host side)`);
  // the DPU may still run the plug once its sleep ends: the runtime's DEL (normal speed) removes it by owner
  await new Promise((res) => setTimeout(res, sleepS * 1000 + 500));
  expectSuccess(t, `${tag}: DEL after the failed ADD`, await op(bed, B, 'DEL', 'slow-1', ns));
  expectClean(bed, B, `${tag}: after DEL`);

  if (!expectSuccess(t, `${tag}: ADD (normal speed)`, await op(bed, B, 'ADD', 'slow-2', ns))) return;
  const del = await op(bed, B, 'DEL', 'slow-2', ns, { conf: slowConf });
  expectCniError(t, `${tag}: DEL`, del, 11);
  if (del.ms > limitMs + margin) violation(t, `${tag}: DEL took ${del.ms} ms with timeoutMs ${timeoutMs} (limit ${limitMs} ms on the ${pluginPath()} path)`);
  await new Promise((res) => setTimeout(res, sleepS * 1000 + 500));
  expectSuccess(t, `${tag}: DEL retried`, await op(bed, B, 'DEL', 'slow-2', ns));
  expectClean(bed, B, tag);
}

const RANGES: Record<string, [string, string]> = { b: ['10.140.0.10', '10.140.0.99'], c: ['10.140.0.100', '10.140.0.199'] };

function bed(tb: Testbed, t: Tally): Bed {
  return {
    tb, t, B: site(tb, 'b'), C: site(tb, 'c'),
    conf: (s, dpu = {}) => {
      const [start, end] = RANGES[s.name] as [string, string];
      return netConf(tb, s, { name: NET.name, vni: NET.vni, ipam: hostLocal(tb, s, '10.140.0.0/24', start, end, NET.name), dpu });
    },
  };
}

/** One row each in the summary; a new probe is one more entry (see the top of common.ts). Deterministic: no seed. */
export const FAULT_PROBES: ReadonlyArray<readonly [string, Probe]> = [
  ['SIGKILL at each fault point', (tb, t) => killAtEachPoint(bed(tb, t))],
  ['DPU sshd down', (tb, t) => sshdDown(bed(tb, t))],
  ['ovs-vswitchd restarted', (tb, t) => vswitchdRestart(bed(tb, t))],
  ['OVS database reset', (tb, t) => dbReset(bed(tb, t))],
  ['netns deleted before DEL', (tb, t) => netnsDeleted(bed(tb, t))],
  ['stateDir lost', (tb, t) => stateLost(bed(tb, t))],
  ['slow DPU', (tb, t) => slowDpu(bed(tb, t))],
];

export async function faults(tb: Testbed, o: FaultOptions): Promise<Tally> {
  const t = newTally('crashes and faults');
  void o.seed; // the fault scenarios are deterministic
  await runProbes(tb, t, FAULT_PROBES, o.progress);
  return t;
}
