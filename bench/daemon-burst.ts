// The daemon during one burst of concurrent warm ADDs and then DELs, with its in-process netlink or with the ip
// fallback: what its main thread did (a CPU profile) or which children it started (strace -f attached to it).
// Counts and shares, not wall-clock figures: docs/benchmarks.md "Host steps: processes or in-process netlink".
//   node scripts/run-ts.js bench/daemon-burst.ts netlink|ip prof|strace [--burst N]   (root; its own testbed)
// The SEA refuses --cpu-prof in NODE_OPTIONS, so "prof" runs the same bundle (build/dpu-overlay.cjs) under node;
// "ip" with prof runs a copy of it without the addon beside it, with strace a native dir holding a mismatching file.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cni, cniAsync, container, hostLocal, netConf, removeContainers, ROOT, site, spawnDaemon, stopDaemon, testbedDown, testbedUp } from '../test/testkit/testbed';
const [mode, what] = process.argv.slice(2);
const burstAt = process.argv.indexOf('--burst');
const N = burstAt > 0 ? Number(process.argv[burstAt + 1]) : 16;

interface ProfileNode { id: number; callFrame: { functionName: string; url: string }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

/** Busy main-thread time and the part of it inside child_process's spawn (ms). */
function spawnShare(file: string): { busyMs: number; spawnMs: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inSpawn = (id: number): boolean => {
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const cf = byId.get(x)?.callFrame;
      if (cf?.functionName === 'spawn' && cf.url.includes('child_process')) return true;
    }
    return false;
  };
  let busy = 0;
  let spawned = 0;
  p.samples.forEach((id, i) => {
    if (byId.get(id)?.callFrame.functionName === '(idle)') return;
    busy += p.timeDeltas[i] ?? 0;
    if (inSpawn(id)) spawned += p.timeDeltas[i] ?? 0;
  });
  return { busyMs: Math.round(busy / 1000), spawnMs: Math.round(spawned / 1000) };
}

/** The program each traced child ran first (nsenter then execs ip in the same process), counted. */
function childCounts(file: string): Record<string, number> {
  const byPid = new Map<string, string>();
  // Concurrent children split a call: `execve("X", ... <unfinished ...>`, later `<... execve resumed>...) = 0`.
  const pending = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const started = /^(\d+) +execve\("([^"]+)"/.exec(line);
    const pid = /^(\d+) /.exec(line)?.[1] ?? '';
    if (started && line.endsWith('<unfinished ...>')) pending.set(pid, started[2] as string);
    const path = started && / = 0$/.test(line) ? started[2] : /^\d+ +<\.\.\. execve resumed>.* = 0$/.test(line) ? pending.get(pid) : undefined;
    if (path && !byPid.has(pid)) byPid.set(pid, path.split('/').pop() as string);
  }
  const counts: Record<string, number> = {};
  for (const n of byPid.values()) counts[n] = (counts[n] ?? 0) + 1;
  return counts;
}

async function main(): Promise<void> {
  if (!['netlink', 'ip'].includes(mode ?? '') || !['prof', 'strace'].includes(what ?? '') || !(N >= 1 && N <= 40)) {
    throw new Error('usage: bench/daemon-burst.ts netlink|ip prof|strace [--burst 1..40]');
  }
  const tb = testbedUp(N + 4, 'a,b');
  const A = site(tb, 'a');
  const out = join(ROOT, 'build', 'benchmarks', `daemon-burst-${mode}-${what}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const nativeDir = join(tb.stateDir, 'native');
  rmSync(nativeDir, { recursive: true, force: true });
  mkdirSync(nativeDir, { mode: 0o700 });
  chmodSync(nativeDir, 0o700);
  if (mode === 'ip') {
    const sha = readFileSync(join(ROOT, 'build', 'rtnetlink.node.sha256'), 'utf8').trim();
    writeFileSync(join(nativeDir, `rtnetlink-${sha.slice(0, 16)}.node`), 'not the addon', { mode: 0o500 });
  }
  const socket = join(tb.stateDir, 'daemon-burst', 'd.sock');
  const log = join(out, 'daemon.log');
  const stateDir = join(tb.stateDir, `plugin-${A.name}`);
  let daemon: ChildProcess;
  if (what === 'prof') {
    let bundle = join(ROOT, 'build', 'dpu-overlay.cjs');
    if (mode === 'ip') {
      mkdirSync(join(out, 'bundle'), { recursive: true });
      copyFileSync(bundle, (bundle = join(out, 'bundle', 'dpu-overlay.cjs')));
    }
    mkdirSync(join(tb.stateDir, 'daemon-burst'), { recursive: true, mode: 0o700 });
    daemon = spawn('ip', ['netns', 'exec', A.hostNetns, process.execPath, '--cpu-prof', `--cpu-prof-dir=${out}`, bundle, 'daemon', '--socket', socket, '--log-file', log, '--state-dir', stateDir, '--empty-bridge-grace-ms', '0'], { stdio: 'ignore' });
    const deadline = Date.now() + 30000;
    while (!(existsSync(log) && readFileSync(log, 'utf8').includes('daemon listening'))) {
      if (Date.now() > deadline) throw new Error(`the daemon did not start (see ${log})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } else {
    daemon = await spawnDaemon(A, { socket, logFile: log, stateDir, env: { DPU_OVERLAY_NATIVE_DIR: nativeDir } });
  }
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.95.0.0/24', '10.95.0.10', '10.95.0.99'), dpu: { daemonSocket: socket } });
  // Warm: the DPU connection, the IPAM plugin's VERSION answer, and a second container keeping the VNI bridge.
  const keep = container('burst-keep');
  if (cni(A, conf, { command: 'ADD', containerId: 'burst-keep', netns: keep }).status !== 0) throw new Error('the warm-up ADD failed');
  const nss = Array.from({ length: N }, (_, i) => container(`burst${i}`));
  let tracer: ChildProcess | undefined;
  if (what === 'strace') {
    tracer = spawn('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', join(out, 'strace'), '-p', String(daemon.pid)], { stdio: 'ignore' });
    while (!/TracerPid:\s+[1-9]/.test(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))) await new Promise((r) => setTimeout(r, 50));
  }
  const adds = await Promise.all(nss.map((ns, i) => cniAsync(A, conf, { command: 'ADD', containerId: `burst${i}`, netns: ns })));
  const dels = await Promise.all(nss.map((ns, i) => cniAsync(A, conf, { command: 'DEL', containerId: `burst${i}`, netns: ns })));
  if (tracer) {
    const t = tracer;
    await new Promise<void>((r) => (t.once('exit', () => r()), t.kill('SIGINT')));
  }
  cni(A, conf, { command: 'DEL', containerId: 'burst-keep', netns: keep });
  if (what === 'prof') await new Promise<void>((r) => (daemon.once('exit', () => r()), daemon.kill('SIGTERM')));
  else await stopDaemon(daemon);
  const failed = [...adds, ...dels].filter((r) => r.status !== 0).length;
  const netlink = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('in-process netlink')).map((l) => (JSON.parse(l) as { msg: string }).msg);
  const profile = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
  console.log(JSON.stringify({ mode, burst: N, failed, netlink, ...(what === 'strace' ? { children: childCounts(join(out, 'strace')) } : profile ? spawnShare(join(out, profile)) : {}) }));
  removeContainers();
  testbedDown();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
