// Issue 13's targets, measured side by side in one run on the emulated testbed: ADD/DEL latency of the packaged
// plugin warm (the daemon runs the command) and cold (standalone, direct SSH), next to host-device and to what an
// operator would script (host-device + OpenSSH ovs-vsctl); bursts; VERSION next to a hello-world SEA built the same
// way (the Node floor); the daemon's RSS with many attachments and its CPU at idle. Children get a scrubbed
// environment (bench/latency/env.ts); the cost of two inherited variables is measured once, on purpose.
// Every sequential row runs with a second container kept on the network's VNI (the steady state of a node: the VNI
// bridge exists), except the "first on its VNI" rows, whose ADD creates the bridge (a new VNI each cycle).
// Last, the testbed comes up again with OVN, and warm ADD/DEL of an OVN network and of a static one run interleaved
// there (both through the DPU's guard, as OVN mode's testbed has it): OVN mode's cost against static mode's.
// The floors of the missed targets are measured in the same run: the DPU lines a warm ADD/DEL really sends (recorded
// at the DPU's sshd, bench/latency/dpu-floor.ts) replayed locally on the DPU with and without the guard, and the
// forwarder against a stand-in daemon that answers at once (bench/latency/echo-daemon.ts), interleaved with the warm rows.
//   node scripts/run-ts.js bench/latency.ts [--quick] [--cycles N] [--bursts 1,2,5] [--attachments N] [--idle-seconds S] [--snapshot] [--out DIR] [--docs]
// Prints the JSON and a markdown table on stdout; writes DIR/latency.{json,md} (default build/benchmarks);
// --docs (formerly --readme) also puts the table into docs/benchmarks.md between the bench:latency markers and
// the JSON into docs/benchmarks/latency.json.
// Needs root; brings up its own testbed (DPUO_TESTBED_PREFIX, default dpuo) and takes it down.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { BINARY, CNI_PATH, container, envFor, hostLocal, netConf, nodeEnv, type NetnsRun, PREFIX, removeContainers, ROOT, runInNetns, type Site, site, type Testbed, testbedDown, testbedUp } from '../test/testkit/testbed';
import { type Daemon, idleCpuPercent, rssKb, startDaemon, stopDaemon } from './latency/daemon';
import { ENV_EFFECTS, scrubbedEnv } from './latency/env';
import { type BurstResult, DPU_CONNECT, DPU_LINES, FORWARDER_ROW, markdown, median, OVN_ROWS, type Report, type Stats, stats, targets, updateBenchmarksDoc } from './latency/report';
import { type Capture, forcedCommand, replayer, representorOf, startRecording, type Via } from './latency/dpu-floor';
import { helloSea } from './latency/sea-floor';
import { snapshotBinary } from './latency/snapshot';

interface Options {
  quick: boolean;
  cycles: number;
  bursts: number[];
  attachments: number;
  idleSeconds: number;
  snapshot: boolean;
  out: string;
  readme: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, cycles: 50, bursts: [1, 2, 5, 10, 16, 20, 40], attachments: 100, idleSeconds: 10, snapshot: false, out: join(ROOT, 'build', 'benchmarks'), readme: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') Object.assign(o, { quick: true, cycles: 8, bursts: [1, 16], attachments: 20, idleSeconds: 5 });
    else if (a === '--cycles') o.cycles = Number(argv[++i]);
    else if (a === '--bursts') o.bursts = String(argv[++i]).split(',').map(Number);
    else if (a === '--attachments') o.attachments = Number(argv[++i]);
    else if (a === '--idle-seconds') o.idleSeconds = Number(argv[++i]);
    else if (a === '--snapshot') o.snapshot = true;
    else if (a === '--out') o.out = String(argv[++i]);
    else if (a === '--docs' || a === '--readme') o.readme = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.cycles >= 1) || o.bursts.some((n) => !(n >= 1 && n <= 40))) throw new Error('--cycles >= 1, bursts between 1 and 40');
  if (!(Number.isInteger(o.attachments) && o.attachments >= 1 && o.attachments <= 190)) throw new Error('--attachments between 1 and 190 (one VF each)');
  if (!(o.idleSeconds > 0)) throw new Error('--idle-seconds > 0');
  return o;
}

const BENCH_VNI = 100;
/** The "first on its VNI" rows take a new VNI per ADD, from here up. */
let freshVni = 3000;
const HOST_DEVICE = join(CNI_PATH.split(':')[0] as string, 'host-device');
const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** `key` ("ADD <containerId>") finds the run's closing log line whichever process wrote it (plugin or daemon). */
type Run = NetnsRun & { key?: string };

function cniEnv(command: string, containerId: string, netns: string, node: Record<string, string> = {}): Record<string, string> {
  return scrubbedEnv(envFor({ command, containerId, netns }, node));
}

async function must(what: string, r: Promise<Run>): Promise<Run> {
  const out = await r;
  if (out.status !== 0) throw new Error(`${what} failed (exit ${out.status}): ${out.stdout.trim()} ${out.stderr.trim()}`.slice(0, 800));
  return out;
}

// ---- the plugin's own step timings, from its closing log line ----

interface Closing {
  command: string;
  containerId: string;
  msg: string;
  steps: Record<string, number>;
  totalMs: number;
  dpuConnectMs?: number;
}

function closingLines(logFile: string): Map<string, Closing> {
  const out = new Map<string, Closing>();
  if (!existsSync(logFile)) return out;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"totalMs"')) continue;
    const j = JSON.parse(line) as Closing;
    out.set(`${j.command} ${j.containerId}`, j);
  }
  return out;
}

/** Per-step medians; "process start, module loading, exit" is what the wall clock saw beyond the own timer of whoever ran the command. */
function breakdown(runs: Run[], logFile: string): Record<string, number> {
  const lines = closingLines(logFile);
  const cols: Record<string, number[]> = {};
  const add = (k: string, v: number) => (cols[k] ??= []).push(v);
  for (const r of runs) {
    const c = r.key === undefined ? undefined : lines.get(r.key);
    if (!c) continue;
    add('process start, module loading, exit', r.ms - c.totalMs);
    const s = c.steps;
    add('VF allocation and move', (s.hostLinks ?? 0) + (s.allocate ?? 0) + (s.moveVf ?? 0) + (s.returnVf ?? 0) + (s.configure ?? 0));
    add('IPAM', s.ipam ?? 0);
    add('DPU step (rest of the connect + OVS transaction)', s.dpu ?? 0);
    if (c.dpuConnectMs !== undefined) add(DPU_CONNECT, c.dpuConnectMs);
    add('other (config parse, logger, state files)', c.totalMs - Object.values(s).reduce((a, b) => a + b, 0));
  }
  return Object.fromEntries(Object.entries(cols).map(([k, v]) => [k, median(v)]));
}

// ---- the scenarios ----

interface Bench {
  tb: Testbed;
  s: Site;
  logFile: string;
  socket: string;
  daemon?: Daemon;
}

/** The network a row ADDs to: static mode (BENCH_VNI unless given) or, on the OVN testbed, OVN mode. */
type Net = { vni?: number; ovn?: boolean; socket?: string };

/** The OVN rows' MTU (Geneve's overhead on the testbed's 1500-byte uplinks); the static row beside them uses it too. */
const OVN_ROW_MTU = 1400;

function pluginConf(b: Bench, warm: boolean, net: Net = {}): Record<string, unknown> {
  const name = net.ovn ? 'bench-ovn' : 'bench';
  const pool = net.ovn ? '10.79' : '10.77';
  return netConf(b.tb, b.s, {
    name,
    vni: net.vni ?? BENCH_VNI,
    ipam: hostLocal(b.tb, b.s, `${pool}.0.0/16`, `${pool}.0.10`, `${pool}.255.200`, name),
    extra: { logLevel: 'info', logFile: b.logFile, stateDir: join(b.tb.stateDir, 'plugin-bench'), ...(b.tb.ovn ? { mtu: OVN_ROW_MTU } : {}) },
    dpu: { daemonSocket: warm ? net.socket ?? b.socket : '', timeoutMs: 20000, ...(net.ovn ? { controlPlane: 'ovn' } : {}) },
    ...(net.ovn ? { drop: ['dpu.localVtep', 'dpu.remoteVteps'] } : {}),
  });
}

function hostDeviceConf(b: Bench, vf: number): string {
  return JSON.stringify({
    cniVersion: '1.0.0', name: 'bench-hd', type: 'host-device', device: b.s.vfs[vf]?.netdev,
    ipam: hostLocal(b.tb, b.s, '10.78.0.0/16', '10.78.0.10', '10.78.255.200', 'bench-hd'),
  });
}

function sshArgs(b: Bench): string[] {
  return ['-i', b.tb.privateKeyFile, '-o', `UserKnownHostsFile=${b.tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-p', String(b.s.dpuPort), `${b.s.dpuUser}@${b.s.dpuHost}`];
}

/** What an operator would script on the DPU for one VF: bring the representor up and add it to the VNI bridge. */
function opsAddPort(vf: number, b: Bench): string {
  const rep = b.s.vfs[vf]?.representor as string;
  return `ip link set dev ${rep} mtu 1450 up && ovs-vsctl --may-exist add-br br-bench -- set Bridge br-bench datapath_type=netdev -- --may-exist add-port br-bench ${rep}`;
}

async function plugin(b: Bench, command: string, id: string, netns: string, warm: boolean, bin = BINARY, net: Net = {}): Promise<Run> {
  const conf = pluginConf(b, warm, net);
  const run = await must(`dpu-overlay ${command} ${id}`, runInNetns(b.s.hostNetns, bin, [], cniEnv(command, id, netns, nodeEnv(b.s, conf)), JSON.stringify(conf)));
  return { ...run, key: `${command} ${id}` };
}

async function hostDevice(b: Bench, command: string, id: string, netns: string, vf: number): Promise<Run> {
  return must(`host-device ${command}`, runInNetns(b.s.hostNetns, HOST_DEVICE, [], cniEnv(command, id, netns), hostDeviceConf(b, vf)));
}

async function hostDeviceSsh(b: Bench, command: string, id: string, netns: string, vf: number): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const hd = await hostDevice(b, command, id, netns, vf);
  const remote = command === 'ADD' ? opsAddPort(vf, b) : `ovs-vsctl --if-exists del-port br-bench ${b.s.vfs[vf]?.representor}`;
  await must('ssh ovs-vsctl', runInNetns(b.s.hostNetns, 'ssh', [...sshArgs(b), remote], scrubbedEnv()));
  return { ...hd, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

type Cycle = (command: 'ADD' | 'DEL', id: string, netns: string) => Promise<Run>;

/** ADD on a VNI no container is on yet (the bridge and its tunnels are created), DEL on the same VNI. */
function firstOnVni(b: Bench, warm: boolean): Cycle {
  let vni = 0;
  return (cmd, id, ns) => {
    if (cmd === 'ADD') vni = freshVni++;
    return plugin(b, cmd, id, ns, warm, BINARY, { vni });
  };
}

/** The host-device rows use the VFs from the end of the list: the plugin allocates from the start. */
const hdVf = (b: Bench, k: number) => b.s.vfs.length - 1 - k;

type Cycles = { add: Run[]; del: Run[] };

/**
 * n ADD/DEL cycles of each scenario, interleaved (cycle i of every scenario before cycle i+1 of any), so that
 * the ratios between them are taken under the same load even on a shared machine.
 */
async function cycles(n: number, scenarios: Record<string, Cycle>): Promise<Record<string, Cycles>> {
  const netns = container('bench-seq');
  const out: Record<string, Cycles> = Object.fromEntries(Object.keys(scenarios).map((k) => [k, { add: [], del: [] }]));
  for (let i = 0; i < n; i++) {
    for (const [name, fn] of Object.entries(scenarios)) {
      const id = `seq-${name.replace(/[^A-Za-z0-9]+/g, '-')}-${i}`;
      out[name]?.add.push(await fn('ADD', id, netns));
      out[name]?.del.push(await fn('DEL', id, netns));
    }
  }
  for (const [name, c] of Object.entries(out)) progress(`${name}: ${n} ADD/DEL cycles, ADD p50 ${median(c.add.map((r) => r.ms))} ms`);
  return out;
}

/**
 * The command lines a warm ADD and DEL of each network send to the DPU, recorded at its sshd (bench/latency/dpu-floor.ts)
 * through a daemon of their own, started after the recorder is in place and stopped before the timed rows. A first
 * ADD/DEL is left out: it opens the connection and reads the DPU's state once.
 */
async function captureWarm(b: Bench, nets: Record<string, Net>): Promise<Record<string, Capture>> {
  const rec = startRecording(b.tb);
  const out: Record<string, Capture> = {};
  try {
    await daemonUp(b);
    for (const [name, net] of Object.entries(nets)) {
      const ns = container('bench-capture');
      await plugin(b, 'ADD', 'capture-warmup', ns, true, BINARY, net);
      await plugin(b, 'DEL', 'capture-warmup', ns, true, BINARY, net);
      rec.take();
      await plugin(b, 'ADD', 'capture', ns, true, BINARY, net);
      const add = rec.take();
      await plugin(b, 'DEL', 'capture', ns, true, BINARY, net);
      const del = rec.take();
      out[name] = { add, del, representor: representorOf(add) };
      progress(`recorded the DPU lines of a warm ${name} ADD (${add.lines.length}) and DEL (${del.lines.length})`);
    }
  } finally {
    await daemonDown(b);
    rec.stop();
  }
  return out;
}

/** A recorded ADD/DEL replayed locally on the DPU as one cycle of the interleaved rows (its time: the lines' runs only). */
function dpuLines(b: Bench, cap: Capture, via: Via): Cycle {
  const r = replayer(b.tb, b.s, cap, via, forcedCommand(b.tb));
  return async (cmd) => {
    const ms = cmd === 'ADD' ? r.add() : r.del();
    return { status: 0, signal: null, pid: 0, stdout: '', stderr: '', ms };
  };
}

/** The stand-in daemon that answers at once (bench/latency/echo-daemon.ts), until the returned stop is called. */
async function echoDaemon(socket: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run-ts.js'), join(ROOT, 'bench', 'latency', 'echo-daemon.ts'), socket], { stdio: ['ignore', 'ignore', 'inherit'], env: scrubbedEnv() });
  for (let i = 0; i < 400 && !existsSync(socket) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) {
    child.kill('SIGKILL');
    throw new Error(`the echo daemon did not create ${socket} (exit ${child.exitCode})`);
  }
  return async () => {
    const exited = new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dirname(socket), { recursive: true, force: true });
  };
}

/** n concurrent ADDs then n concurrent DELs of the plugin, each beside the same burst of host-device (interleaved). */
async function burst(b: Bench, n: number, warm: boolean): Promise<BurstResult> {
  const nets = Array.from({ length: n }, (_, i) => container(`bench-b${i}`));
  const wall = async (one: (ns: string, i: number) => Promise<Run>) => {
    const t0 = process.hrtime.bigint();
    const runs = await Promise.all(nets.map(one));
    return { wallMs: Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10, per: stats(runs.map((r) => r.ms)) };
  };
  const hd = (command: string) => wall((ns, i) => hostDevice(b, command, `burst-hd-${n}-${i}`, ns, hdVf(b, i)));
  const ours = (command: string) => wall((ns, i) => plugin(b, command, `burst-${n}-${i}`, ns, warm));
  const hdAdd = await hd('ADD');
  const hdDel = await hd('DEL');
  const add = await ours('ADD');
  const del = await ours('DEL');
  return { n, addWallMs: add.wallMs, addPerCall: add.per, delWallMs: del.wallMs, delPerCall: del.per, hostDevice: { addWallMs: hdAdd.wallMs, delWallMs: hdDel.wallMs } };
}

/** The fixed command of the round-trip row: the read half of an unplug, one ovs-vsctl transaction. */
const RTT_COMMAND = 'ovs-vsctl --timeout=5 --columns=other_config find Open_vSwitch';

/** One warm round trip through the plugin's transport beside OpenSSH with ControlMaster (bench/latency/dpu-rtt.ts). */
async function dpuRoundTrip(b: Bench, n: number): Promise<NonNullable<Report['dpuRoundTrip']>> {
  const conf = { host: b.s.dpuHost, port: b.s.dpuPort, user: b.s.dpuUser, privateKeyFile: b.tb.privateKeyFile, knownHostsFile: b.tb.knownHostsFile, command: RTT_COMMAND, n };
  const r = await must('dpu round trip', runInNetns(b.s.hostNetns, process.execPath, [join(ROOT, 'scripts', 'run-ts.js'), join(ROOT, 'bench', 'latency', 'dpu-rtt.ts'), JSON.stringify(conf)], scrubbedEnv()));
  const ms = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { transport: number[]; openssh: number[] };
  return { command: RTT_COMMAND, transport: stats(ms.transport), openssh: stats(ms.openssh) };
}

/** VERSION start-up of each program, n times, interleaved so that the ratios between them share the load. */
function versions(n: number, programs: Record<string, { file: string; env?: Record<string, string> }>): Record<string, Stats> {
  const ms: Record<string, number[]> = Object.fromEntries(Object.keys(programs).map((k) => [k, []]));
  for (let i = 0; i < n; i++) {
    for (const [name, { file, env }] of Object.entries(programs)) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(file, [], { env: { ...scrubbedEnv({ CNI_COMMAND: 'VERSION' }), ...env }, input: '', encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${name} VERSION failed: ${r.stdout}${r.stderr}`);
      ms[name]?.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, stats(v)]));
}

/** Peak RSS (KiB) of one ADD of the plugin, from GNU time inside the host namespace. */
async function peakRssKb(b: Bench, netns: string): Promise<number> {
  const out = join(b.tb.stateDir, 'bench-rss.txt');
  await must('ADD under /usr/bin/time', runInNetns(b.s.hostNetns, '/usr/bin/time', ['-f', '%M', '-o', out, BINARY], cniEnv('ADD', 'rss', netns, nodeEnv(b.s, pluginConf(b, false))), JSON.stringify(pluginConf(b, false))));
  await plugin(b, 'DEL', 'rss', netns, false);
  return Number(readFileSync(out, 'utf8').trim().split('\n').pop());
}

/**
 * OVN mode's warm ADD/DEL beside static mode's, interleaved, on the testbed brought up again with OVN (the DPUs' sshd
 * then runs the guard as the forced command for both). Each network keeps a container on its VNI (the logical
 * switch, or the VNI bridge, exists). The daemon runs for these rows only.
 */
async function ovnRows(b: Bench, n: number, vfs: number): Promise<{ rows: NonNullable<Report['ovn']>; lines: NonNullable<Report['dpuLines']> }> {
  progress(`testbed ${PREFIX}: up again with OVN`);
  b.tb = testbedUp(vfs, 'a,b', 1, { ovn: true });
  b.s = site(b.tb, 'a');
  const ovn: Net = { ovn: true };
  // The keepers first, without the daemon: the capture's own daemon then finds each VNI's bridge or switch there.
  await must('ADD keeper (static, OVN testbed)', plugin(b, 'ADD', 'keeper-static', container('bench-keeper-static'), false));
  await must('ADD keeper (OVN)', plugin(b, 'ADD', 'keeper-ovn', container('bench-keeper-ovn'), false, BINARY, ovn));
  const cap = await captureWarm(b, { static: {}, OVN: ovn });
  await daemonUp(b);
  const rows = await cycles(n, {
    [OVN_ROWS.static]: (cmd, id, ns) => plugin(b, cmd, id, ns, true),
    [OVN_ROWS.ovn]: (cmd, id, ns) => plugin(b, cmd, id, ns, true, BINARY, ovn),
    [DPU_LINES.ovnStatic]: dpuLines(b, cap.static as Capture, 'guard'),
    [DPU_LINES.ovn]: dpuLines(b, cap.OVN as Capture, 'guard'),
  });
  await daemonDown(b);
  const st = (c: Cycles | undefined) => ({ add: stats((c?.add ?? []).map((r) => r.ms)), del: stats((c?.del ?? []).map((r) => r.ms)) });
  const lines = (c: Capture | undefined) => ({ add: c?.add.lines.length ?? 0, del: c?.del.lines.length ?? 0 });
  return {
    rows: { static: st(rows[OVN_ROWS.static]), ovn: st(rows[OVN_ROWS.ovn]), breakdown: breakdown(rows[OVN_ROWS.ovn]?.add ?? [], b.logFile), staticBreakdown: breakdown(rows[OVN_ROWS.static]?.add ?? [], b.logFile) },
    lines: {
      [DPU_LINES.ovnStatic]: { lines: lines(cap.static), ...st(rows[DPU_LINES.ovnStatic]) },
      [DPU_LINES.ovn]: { lines: lines(cap.OVN), ...st(rows[DPU_LINES.ovn]) },
    },
  };
}

async function daemonUp(b: Bench): Promise<void> {
  b.daemon = await startDaemon({ netns: b.s.hostNetns, socket: b.socket, stateDir: join(b.tb.stateDir, 'plugin-bench'), logFile: join(b.tb.stateDir, 'bench-daemon.log') });
}

async function daemonDown(b: Bench): Promise<void> {
  await stopDaemon(b.daemon);
  b.daemon = undefined;
}

/** The daemon serving `n` live attachments (ADDed through it, a few at a time): its RSS, then its CPU at idle. */
async function daemonUsage(b: Bench, n: number, idleSeconds: number): Promise<Report['daemon']> {
  const d = b.daemon as Daemon;
  const rssKbBefore = rssKb(d.pid);
  const ids = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i += 4) {
    await Promise.all(ids.slice(i, i + 4).map((k) => plugin(b, 'ADD', `att-${k}`, container(`bench-att${k}`), true)));
  }
  progress(`${n} attachments through the daemon; idle for ${idleSeconds} s`);
  await new Promise((r) => setTimeout(r, 1000));
  const rss = rssKb(d.pid);
  return { attachments: n, rssKbBefore, rssKb: rss, idleSeconds, idleCpuPercent: await idleCpuPercent(d.pid, idleSeconds) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const o = parseArgs(args);
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
  if (!existsSync(HOST_DEVICE)) throw new Error(`${HOST_DEVICE} is missing: install containernetworking-plugins (./install.sh)`);
  const hello = helloSea(progress);
  const snapshotBin = o.snapshot ? await snapshotBinary(progress) : undefined;
  progress(`testbed ${PREFIX}: up`);
  // +2: the container kept on the VNI, and host-device's VFs counted from the end.
  const vfs = Math.max(...o.bursts, o.attachments + 1, 2) + 2;
  const tb = testbedUp(vfs, 'a,b');
  const s = site(tb, 'a');
  const b: Bench = { tb, s, logFile: join(tb.stateDir, 'plugin-bench.log'), socket: join(tb.stateDir, 'bench-daemon', 'dpu.sock') };
  rmSync(b.logFile, { force: true });
  const kill = () => b.daemon?.child.kill('SIGKILL');
  process.once('exit', kill);
  try {
    const sequential: Report['sequential'] = {};
    const keep = (name: string, c: Cycles) => (sequential[name] = { add: stats(c.add.map((r) => r.ms)), del: stats(c.del.map((r) => r.ms)) });
    // Warm-up: first executions pay for page cache and the DPU's first bridge.
    await cycles(2, { 'warm-up': (cmd, id, ns) => plugin(b, cmd, id, ns, false) });
    // The steady state of a node: another container stays on the VNI, so its bridge exists.
    await plugin(b, 'ADD', 'keeper', container('bench-keeper'), false);
    const hd: Cycle = (cmd, id, ns) => hostDevice(b, cmd, id, ns, hdVf(b, 0));
    const standalone = await cycles(o.cycles, {
      'host-device': hd,
      'host-device + ssh': (cmd, id, ns) => hostDeviceSsh(b, cmd, id, ns, hdVf(b, 0)),
      'dpu-overlay cold': (cmd, id, ns) => plugin(b, cmd, id, ns, false),
      'dpu-overlay cold, first on its VNI': firstOnVni(b, false),
      ...(snapshotBin ? { 'dpu-overlay cold, V8 snapshot': ((cmd, id, ns) => plugin(b, cmd, id, ns, false, snapshotBin)) as Cycle } : {}),
    });
    const bursts: Report['bursts'] = { warm: [], cold: [] };
    for (const n of o.bursts) bursts.cold.push(await burst(b, n, false));
    const captured = (await captureWarm(b, { static: {} })).static as Capture;
    const echoSocket = join(b.tb.stateDir, 'bench-echo', 'echo.sock');
    const stopEcho = await echoDaemon(echoSocket);
    await daemonUp(b);
    // host-device again beside the warm rows: its row pools both halves, so each ratio has its baseline measured alongside.
    const daemonRows = await cycles(o.cycles, {
      'host-device': hd,
      'dpu-overlay warm': (cmd, id, ns) => plugin(b, cmd, id, ns, true),
      'dpu-overlay warm, first on its VNI': firstOnVni(b, true),
      [DPU_LINES.plain]: dpuLines(b, captured, 'plain'),
      [DPU_LINES.guard]: dpuLines(b, captured, 'guard'),
      [FORWARDER_ROW]: (cmd, id, ns) => plugin(b, cmd, id, ns, true, BINARY, { socket: echoSocket }),
    }).finally(stopEcho);
    const lineRows = Object.fromEntries([DPU_LINES.plain, DPU_LINES.guard, FORWARDER_ROW].map((k) => [k, daemonRows[k] as Cycles]));
    for (const k of Object.keys(lineRows)) delete daemonRows[k];
    const pooled = (k: string): Cycles => ({ add: [...(standalone[k]?.add ?? []), ...(daemonRows[k]?.add ?? [])], del: [...(standalone[k]?.del ?? []), ...(daemonRows[k]?.del ?? [])] });
    for (const [name, c] of Object.entries({ ...standalone, ...daemonRows })) keep(name, name === 'host-device' ? pooled(name) : c);
    const cold = standalone['dpu-overlay cold'] as Cycles;
    const warm = daemonRows['dpu-overlay warm'] as Cycles;
    for (const n of o.bursts) bursts.warm.push(await burst(b, n, true));
    progress(`bursts: ${o.bursts.join(', ')} done`);
    const dpuRtt = await dpuRoundTrip(b, Math.max(o.cycles, 10));
    progress(`DPU round trip: plugin transport p50 ${dpuRtt.transport.p50} ms, OpenSSH ControlMaster p50 ${dpuRtt.openssh.p50} ms`);
    const daemon = await daemonUsage(b, o.attachments, o.idleSeconds);
    await daemonDown(b);
    const v = versions(Math.max(o.cycles, 10), {
      dpuOverlay: { file: BINARY },
      helloSea: { file: hello.file },
      hostDevice: { file: HOST_DEVICE },
      ...(snapshotBin ? { snapshot: { file: snapshotBin } } : {}),
      ...Object.fromEntries(ENV_EFFECTS.map((e) => [e.name, { file: BINARY, env: e.env }])),
    });
    const at = (k: string) => v[k] as Stats;
    const peakRss = await peakRssKb(b, container('bench-rss'));
    await plugin(b, 'DEL', 'keeper', '', false).catch(() => undefined);
    // Read before the OVN testbed comes up: testbedUp clears the state directory, the log with it.
    const steps = { cold: breakdown(cold.add, b.logFile), warm: breakdown(warm.add, b.logFile), warmDel: breakdown(warm.del, b.logFile) };
    const ovn = await ovnRows(b, o.cycles, vfs);
    const st = (c: Cycles | undefined) => ({ add: stats((c?.add ?? []).map((r) => r.ms)), del: stats((c?.del ?? []).map((r) => r.ms)) });
    const lines = (c: Capture) => ({ add: c.add.lines.length, del: c.del.lines.length });
    const dpuLineRows: NonNullable<Report['dpuLines']> = {
      [DPU_LINES.plain]: { lines: lines(captured), ...st(lineRows[DPU_LINES.plain]) },
      [DPU_LINES.guard]: { lines: lines(captured), ...st(lineRows[DPU_LINES.guard]) },
      ...ovn.lines,
    };
    progress(`OVN: warm ADD p50 ${ovn.rows.ovn.add.p50} ms, static beside it ${ovn.rows.static.add.p50} ms`);
    const partial = {
      date: new Date().toISOString(),
      command: ['npm run bench', ...(args.length ? ['--', ...args] : [])].join(' '),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      cycles: o.cycles,
      childEnv: ['PATH', 'CNI_*'],
      sequential,
      breakdown: steps,
      bursts,
      dpuRoundTrip: dpuRtt,
      version: { dpuOverlay: at('dpuOverlay'), helloSea: at('helloSea'), hostDevice: at('hostDevice'), helloSeaKey: hello.key },
      envEffects: ENV_EFFECTS.map((e) => ({ name: e.name, p50: at(e.name).p50, addedMs: Math.round((at(e.name).p50 - at('dpuOverlay').p50) * 10) / 10 })),
      ...(snapshotBin ? { snapshotVersion: at('snapshot') } : {}),
      peakRssKb: peakRss,
      daemon,
      ovn: ovn.rows,
      dpuLines: dpuLineRows,
      forwarder: st(lineRows[FORWARDER_ROW]),
    };
    const report: Report = { ...partial, targets: targets(partial) };
    const md = markdown(report);
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'latency.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(join(o.out, 'latency.md'), md);
    if (o.readme) {
      updateBenchmarksDoc(md);
      writeFileSync(join(ROOT, 'docs', 'benchmarks', 'latency.json'), JSON.stringify(report, null, 2) + '\n');
      progress('docs/benchmarks.md figures updated');
    }
    process.stdout.write(JSON.stringify(report) + '\n\n' + md);
  } finally {
    await daemonDown(b);
    await plugin(b, 'DEL', 'keeper', '', false).catch(() => undefined);
    removeContainers();
    testbedDown();
    progress(`testbed ${PREFIX}: down`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
