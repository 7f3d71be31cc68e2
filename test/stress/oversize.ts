/**
 * Oversized DPU traffic: the schema's maxima through the DPU guard (1024 remoteVteps in one ADD, a daemon burst
 * of plugs with 10 remotes each) must succeed and leave nothing behind; a DPU that floods its output must be
 * cut off at the plugin's cap with a CNI error instead of being buffered.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, container, dpuExec, hostLocal, netConf, readJsonLines, ROOT, type Site, type Testbed } from '../testkit/testbed';
import { authorizeForced, diffLines, expectCniError, expectSuccess, hostSnapshot, newKey, type Outcome, ovsState, runPlugin, stressDir, type Tally, timed, violation } from './common';

const LIMIT_MS = 600000;

function conf(tb: Testbed, A: Site, dpu: Record<string, unknown>): Record<string, unknown> {
  return netConf(tb, A, { name: 'big', vni: 5100, ipam: hostLocal(tb, A, '10.151.0.0/24', '10.151.0.10', '10.151.0.250', 'big'), dpu: { timeoutMs: 120000, ...dpu } });
}

async function op(t: Tally, A: Site, what: string, c: Record<string, unknown>, command: string, containerId: string, netns: string): Promise<Outcome> {
  const out = await runPlugin(A, c, { command, containerId, netns }, { timeoutMs: LIMIT_MS });
  timed(t, `${command} (${what})`, out.ms);
  t.operations += 1;
  return out;
}

function tunnelPorts(A: Site): string[] {
  return dpuExec(A.name, 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=tunnel').split('\n').filter(Boolean);
}

/** Bridges, container ports and tunnel ports on the DPU. */
function dpuState(A: Site): string {
  return JSON.stringify([ovsState(A.name), tunnelPorts(A).sort()]);
}

function unchanged(t: Tally, what: string, A: Site, before: { host: string; ovs: string }, dirs: string[]): void {
  const host = hostSnapshot(A, dirs);
  if (host !== before.host) violation(t, `${what}: host state changed: ${diffLines(before.host, host)}`);
  const ovs = dpuState(A);
  if (ovs !== before.ovs) violation(t, `${what}: OVS on DPU ${A.name} changed: ${ovs.slice(0, 300)}`);
}

async function manyRemotes(t: Tally, tb: Testbed, A: Site, key: string, dirs: string[]): Promise<void> {
  const remoteVteps = Array.from({ length: 1024 }, (_, i) => `10.${200 + (i >> 8)}.${i & 255}.1`);
  const c = conf(tb, A, { privateKeyFile: key, remoteVteps });
  const ns = container('big');
  const before = { host: hostSnapshot(A, dirs), ovs: dpuState(A) };
  t.inputs += 1;
  if (expectSuccess(t, 'oversize: ADD with 1024 remoteVteps through the guard', await op(t, A, '1024 remotes', c, 'ADD', 'big-1', ns))) {
    const tunnels = tunnelPorts(A).length;
    if (tunnels !== 1024) violation(t, `oversize: ADD with 1024 remoteVteps made ${tunnels} tunnels`);
  }
  expectSuccess(t, 'oversize: DEL with 1024 remoteVteps through the guard', await op(t, A, '1024 remotes', c, 'DEL', 'big-1', ns));
  unchanged(t, 'oversize: 1024 remoteVteps', A, before, dirs);
}

function startDaemon(A: Site, socket: string, log: string): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', A.hostNetns, BINARY, 'daemon', '--socket', socket, '--log-file', log], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 30000;
    const poll = () => {
      if (readJsonLines(log).some((l) => l.msg === 'dpu-overlay daemon listening')) resolve(p);
      else if (Date.now() > deadline || p.exitCode !== null) reject(new Error('the daemon did not start listening'));
      else setTimeout(poll, 50);
    };
    poll();
  });
}

async function daemonBurst(t: Tally, tb: Testbed, A: Site, key: string, dirs: string[]): Promise<void> {
  const dir = join(stressDir(tb), 'daemon');
  rmSync(dir, { recursive: true, force: true });
  const socket = join(dir, 'run', 'dpu.sock');
  const log = join(stressDir(tb), 'oversize-daemon.log');
  rmSync(log, { force: true });
  const remoteVteps = [...A.remoteVteps, ...Array.from({ length: 10 }, (_, i) => `10.210.0.${i + 1}`)].slice(0, 10);
  const c = conf(tb, A, { privateKeyFile: key, remoteVteps, daemonSocket: socket });
  const n = Math.min(64, A.vfs.length);
  const nets = Array.from({ length: n }, (_, i) => container(`big${i}`));
  const before = { host: hostSnapshot(A, dirs), ovs: dpuState(A) };
  const daemon = await startDaemon(A, socket, log);
  try {
    t.inputs += n;
    const adds = await Promise.all(nets.map((ns, i) => op(t, A, 'daemon burst', c, 'ADD', `big-d${i}`, ns)));
    adds.forEach((out, i) => expectSuccess(t, `oversize: daemon burst ADD ${i + 1}/${n} (10 remoteVteps)`, out));
    const dels = await Promise.all(nets.map((ns, i) => op(t, A, 'daemon burst', c, 'DEL', `big-d${i}`, ns)));
    dels.forEach((out, i) => expectSuccess(t, `oversize: daemon burst DEL ${i + 1}/${n}`, out));
    const records = readJsonLines(log);
    const plugs = records.filter((l) => l.msg === 'ovs-vsctl transaction' && l.op === 'plug');
    if (plugs.reduce((sum, l) => sum + Number(l.requests), 0) !== n) violation(t, `oversize: the daemon served ${plugs.length} plug transactions, not ${n} requests`);
    const trouble = records.filter((l) => l.msg === 'DPU connection dropped; reconnecting' || l.msg === 'batched transaction failed; retrying each request alone');
    if (trouble.length) violation(t, `oversize: daemon burst: ${trouble.map((l) => l.msg).join('; ')}`);
  } finally {
    await new Promise<void>((resolve) => {
      if (daemon.exitCode !== null) return resolve();
      daemon.once('exit', () => resolve());
      daemon.kill('SIGTERM');
    });
  }
  unchanged(t, 'oversize: daemon burst', A, before, dirs);
}

async function floodingDpu(t: Tally, tb: Testbed, A: Site, dirs: string[]): Promise<void> {
  const script = join(stressDir(tb), 'flood.sh');
  // A hostile DPU: endless output for whatever it is asked.
  writeFileSync(script, '#!/bin/sh\nexec cat /dev/zero\n');
  chmodSync(script, 0o755);
  const key = newKey(tb, 'flood_ed25519');
  authorizeForced(tb, key, script);
  const c = conf(tb, A, { privateKeyFile: key, timeoutMs: 60000 });
  const ns = container('flood');
  const before = { host: hostSnapshot(A, dirs), ovs: dpuState(A) };
  t.inputs += 1;
  t.faults += 1;
  const out = await op(t, A, 'flooding DPU', c, 'ADD', 'flood-1', ns);
  expectCniError(t, 'oversize: a DPU flooding its output', out, 112);
  if (out.json && !/more than \d+ bytes/.test(String(out.json.msg))) violation(t, `oversize: flooding DPU: the message does not name the cap: ${String(out.json.msg)}`);
  unchanged(t, 'oversize: flooding DPU', A, before, dirs);
}

/** Runs the oversize probes on site A; adds to tally t. */
export async function oversize(tb: Testbed, t: Tally, A: Site): Promise<void> {
  const key = newKey(tb, 'oversize_ed25519');
  authorizeForced(tb, key, join(ROOT, 'guard', 'dpu-guard.sh'));
  const dirs = [join(tb.stateDir, `plugin-${A.name}`), join(tb.stateDir, `ipam-${A.name}-big`)];
  await manyRemotes(t, tb, A, key, dirs);
  await daemonBurst(t, tb, A, key, dirs);
  await floodingDpu(t, tb, A, dirs);
}
