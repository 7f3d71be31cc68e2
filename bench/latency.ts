// ADD/DEL latency and scale of the packaged plugin on the emulated testbed, next to what an operator would
// script (host-device + OpenSSH ovs-vsctl), cold (direct SSH) and warm (through the daemon).
//   node scripts/run-ts.js bench/latency.ts [--quick] [--cycles N] [--bursts 1,2,5] [--out DIR] [--readme]
// Prints the JSON and a markdown table on stdout; writes DIR/latency.{json,md} (default docs/benchmarks);
// --readme also puts the table into README.md between the bench:latency markers.
// Needs root; brings up its own testbed (DPUO_TESTBED_PREFIX, default dpuo) and takes it down.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BINARY, CNI_PATH, container, envFor, hostLocal, netConf, type NetnsRun, PREFIX, removeContainers, ROOT, runInNetns, type Site, site, type Testbed, testbedDown, testbedUp } from '../test/testkit/testbed';

interface Options {
  quick: boolean;
  cycles: number;
  bursts: number[];
  out: string;
  readme: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, cycles: 50, bursts: [1, 2, 5, 10, 20, 40], out: join(ROOT, 'docs', 'benchmarks'), readme: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') Object.assign(o, { quick: true, cycles: 8, bursts: [1, 5, 20] });
    else if (a === '--cycles') o.cycles = Number(argv[++i]);
    else if (a === '--bursts') o.bursts = String(argv[++i]).split(',').map(Number);
    else if (a === '--out') o.out = String(argv[++i]);
    else if (a === '--readme') o.readme = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.cycles >= 1) || o.bursts.some((n) => !(n >= 1 && n <= 40))) throw new Error('--cycles >= 1, bursts between 1 and 40');
  return o;
}

const HOST_DEVICE = join(CNI_PATH.split(':')[0] as string, 'host-device');
const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

type Run = NetnsRun;

function cniEnv(command: string, containerId: string, netns: string): Record<string, string> {
  return envFor({ command, containerId, netns });
}

async function must(what: string, r: Promise<Run>): Promise<Run> {
  const out = await r;
  if (out.status !== 0) throw new Error(`${what} failed (exit ${out.status}): ${out.stdout.trim()} ${out.stderr.trim()}`.slice(0, 800));
  return out;
}

// ---- statistics ----

interface Stats {
  n: number;
  p50: number;
  p95: number;
  max: number;
}

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(at(0.5)), p95: r(at(0.95)), max: r(s[s.length - 1] ?? NaN) };
}

function median(xs: number[]): number {
  return stats(xs).p50;
}

// ---- the plugin's own step timings, from its closing log line ----

interface Closing {
  pid: number;
  msg: string;
  steps: Record<string, number>;
  totalMs: number;
  dpuConnectMs?: number;
}

function closingLines(logFile: string): Map<number, Closing> {
  const out = new Map<number, Closing>();
  if (!existsSync(logFile)) return out;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"totalMs"')) continue;
    const j = JSON.parse(line) as Closing;
    out.set(j.pid, j);
  }
  return out;
}

/** Per-step medians; "process start, module loading, exit" is what the wall clock saw beyond the plugin's own timer. */
function breakdown(runs: Run[], logFile: string): Record<string, number> {
  const lines = closingLines(logFile);
  const cols: Record<string, number[]> = {};
  const add = (k: string, v: number) => (cols[k] ??= []).push(v);
  for (const r of runs) {
    const c = lines.get(r.pid);
    if (!c) continue;
    add('process start, module loading, exit', r.ms - c.totalMs);
    const s = c.steps;
    add('VF allocation and move', (s.hostLinks ?? 0) + (s.allocate ?? 0) + (s.moveVf ?? 0) + (s.returnVf ?? 0) + (s.configure ?? 0));
    add('IPAM', s.ipam ?? 0);
    add('DPU step (rest of the connect + OVS transaction)', s.dpu ?? 0);
    if (c.dpuConnectMs !== undefined) add('DPU connect (SSH handshake or daemon socket; overlaps the host steps)', c.dpuConnectMs);
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
  daemon?: ChildProcess;
}

function pluginConf(b: Bench, warm: boolean): Record<string, unknown> {
  return netConf(b.tb, b.s, {
    name: 'bench',
    ipam: hostLocal(b.tb, b.s, '10.77.0.0/16', '10.77.0.10', '10.77.255.200', 'bench'),
    extra: { logLevel: 'info', logFile: b.logFile, stateDir: join(b.tb.stateDir, 'plugin-bench') },
    dpu: { daemonSocket: warm ? b.socket : '', timeoutMs: 20000 },
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

async function plugin(b: Bench, command: string, id: string, netns: string, warm: boolean): Promise<Run> {
  return must(`dpu-overlay ${command} ${id}`, runInNetns(b.s.hostNetns, BINARY, [], cniEnv(command, id, netns), JSON.stringify(pluginConf(b, warm))));
}

async function hostDevice(b: Bench, command: string, id: string, netns: string, vf: number): Promise<Run> {
  return must(`host-device ${command}`, runInNetns(b.s.hostNetns, HOST_DEVICE, [], cniEnv(command, id, netns), hostDeviceConf(b, vf)));
}

async function hostDeviceSsh(b: Bench, command: string, id: string, netns: string, vf: number): Promise<Run> {
  const t0 = process.hrtime.bigint();
  const hd = await hostDevice(b, command, id, netns, vf);
  const remote = command === 'ADD' ? opsAddPort(vf, b) : `ovs-vsctl --if-exists del-port br-bench ${b.s.vfs[vf]?.representor}`;
  await must('ssh ovs-vsctl', runInNetns(b.s.hostNetns, 'ssh', [...sshArgs(b), remote], {}));
  return { ...hd, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

type Cycle = (command: 'ADD' | 'DEL', id: string, netns: string) => Promise<Run>;

async function cycles(n: number, name: string, fn: Cycle): Promise<{ add: Run[]; del: Run[] }> {
  const netns = container('bench-seq');
  const add: Run[] = [];
  const del: Run[] = [];
  for (let i = 0; i < n; i++) {
    add.push(await fn('ADD', `seq-${name.replace(/[^A-Za-z0-9]+/g, "-")}-${i}`, netns));
    del.push(await fn('DEL', `seq-${name.replace(/[^A-Za-z0-9]+/g, "-")}-${i}`, netns));
  }
  progress(`${name}: ${n} ADD/DEL cycles, ADD p50 ${median(add.map((r) => r.ms))} ms`);
  return { add, del };
}

interface BurstResult {
  n: number;
  addWallMs: number;
  addPerCall: Stats;
  delWallMs: number;
  delPerCall: Stats;
}

async function burst(b: Bench, n: number, warm: boolean): Promise<BurstResult> {
  const nets = Array.from({ length: n }, (_, i) => container(`bench-b${i}`));
  const wall = async (command: string) => {
    const t0 = process.hrtime.bigint();
    const runs = await Promise.all(nets.map((ns, i) => plugin(b, command, `burst-${n}-${i}`, ns, warm)));
    return { wallMs: Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10, per: stats(runs.map((r) => r.ms)) };
  };
  const add = await wall('ADD');
  const del = await wall('DEL');
  return { n, addWallMs: add.wallMs, addPerCall: add.per, delWallMs: del.wallMs, delPerCall: del.per };
}

function version(file: string, n: number): Stats {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(file, [], { env: { CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${file} VERSION failed: ${r.stdout}${r.stderr}`);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(ms);
}

/** Peak RSS (KiB) of one ADD of the plugin, from GNU time inside the host namespace. */
async function peakRssKb(b: Bench, netns: string): Promise<number> {
  const out = join(b.tb.stateDir, 'bench-rss.txt');
  await must('ADD under /usr/bin/time', runInNetns(b.s.hostNetns, '/usr/bin/time', ['-f', '%M', '-o', out, BINARY], cniEnv('ADD', 'rss', netns), JSON.stringify(pluginConf(b, false))));
  await plugin(b, 'DEL', 'rss', netns, false);
  return Number(readFileSync(out, 'utf8').trim().split('\n').pop());
}

async function startDaemon(b: Bench): Promise<void> {
  rmSync(join(b.tb.stateDir, 'bench-daemon'), { recursive: true, force: true });
  b.daemon = spawn('ip', ['netns', 'exec', b.s.hostNetns, BINARY, 'daemon', '--socket', b.socket, '--log-file', join(b.tb.stateDir, 'bench-daemon.log'), '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100 && !existsSync(b.socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(b.socket)) throw new Error('the daemon did not create its socket');
}

function stopDaemon(b: Bench): void {
  b.daemon?.kill('SIGTERM');
  b.daemon = undefined;
}

// ---- report ----

const README_START = '<!-- bench:latency:start -->';
const README_END = '<!-- bench:latency:end -->';

function updateReadme(md: string): void {
  const file = join(ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start === -1 || end < start) throw new Error(`README.md has no ${README_START} ... ${README_END} section`);
  writeFileSync(file, `${text.slice(0, start + README_START.length)}\n${md}${text.slice(end)}`);
  progress('README.md figures updated');
}

const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

function markdown(r: Report): string {
  const row = (name: string, s: Stats) => `| ${name} | ${s.p50} | ${s.p95} | ${s.max} |`;
  const lines = [
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${r.cycles} cycles per row, ${r.date}.`,
    `Command: \`${r.command}\``,
    '',
    '| sequential, ms | p50 | p95 | max |',
    '| --- | ---: | ---: | ---: |',
    ...Object.entries(r.sequential).flatMap(([name, v]) => [row(`${name} ADD`, v.add), row(`${name} DEL`, v.del)]),
    row('dpu-overlay VERSION (cold start)', r.version.dpuOverlay),
    row('host-device VERSION', r.version.hostDevice),
    '',
    `Peak RSS of one ADD: ${Math.round(r.peakRssKb / 1024)} MiB.`,
    '',
    '| ADD step breakdown (p50 ms) | cold | warm |',
    '| --- | ---: | ---: |',
    ...Object.keys(r.breakdown.cold).map((k) => `| ${k} | ${r.breakdown.cold[k]} | ${r.breakdown.warm[k] ?? ''} |`),
    '',
    '| burst (concurrent on one host) | ADD wall ms | ADD p50 / max | DEL wall ms | DEL p50 / max |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...(['warm', 'cold'] as const).flatMap((mode) =>
      r.bursts[mode].map((x) => `| ${mode} ${x.n} | ${x.addWallMs} | ${x.addPerCall.p50} / ${x.addPerCall.max} | ${x.delWallMs} | ${x.delPerCall.p50} / ${x.delPerCall.max} |`),
    ),
    '',
    '| target | ratio | goal | met |',
    '| --- | ---: | ---: | --- |',
    ...r.targets.map((t) => `| ${t.name} | ${t.ratio} | ${t.op} ${t.goal} | ${t.met ? 'yes' : 'no'} |`),
  ];
  return lines.join('\n') + '\n';
}

interface Report {
  date: string;
  command: string;
  machine: { cores: number; cpu: string; node: string };
  cycles: number;
  sequential: Record<string, { add: Stats; del: Stats }>;
  breakdown: { cold: Record<string, number>; warm: Record<string, number> };
  bursts: { warm: BurstResult[]; cold: BurstResult[] };
  version: { dpuOverlay: Stats; hostDevice: Stats };
  peakRssKb: number;
  targets: Array<{ name: string; ratio: number; op: '<=' | '<'; goal: number; met: boolean }>;
}

function targets(r: Omit<Report, 'targets'>): Report['targets'] {
  const seq = r.sequential;
  const p50 = (k: string, w: 'add' | 'del' = 'add') => seq[k]?.[w].p50 ?? NaN;
  const burst20 = r.bursts.warm.find((x) => x.n === 20);
  const t = (name: string, value: number, op: '<=' | '<', goal: number) => ({ name, ratio: value, op, goal, met: op === '<=' ? value <= goal : value < goal });
  return [
    t('warm ADD p50 / host-device ADD p50', ratio(p50('dpu-overlay warm'), p50('host-device')), '<=', 2),
    t('cold ADD p50 / (host-device + ssh ovs-vsctl) ADD p50', ratio(p50('dpu-overlay cold'), p50('host-device + ssh')), '<', 1),
    ...(burst20 ? [t('warm burst of 20 ADDs wall / warm ADD p50', ratio(burst20.addWallMs, p50('dpu-overlay warm')), '<=', 3)] : []),
    t('VERSION p50 / host-device VERSION p50', ratio(r.version.dpuOverlay.p50, r.version.hostDevice.p50), '<=', 3),
  ];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const o = parseArgs(args);
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
  if (!existsSync(HOST_DEVICE)) throw new Error(`${HOST_DEVICE} is missing: install containernetworking-plugins (./install.sh)`);
  progress(`testbed ${PREFIX}: up`);
  const tb = testbedUp(Math.max(...o.bursts, 2), 'a,b');
  const s = site(tb, 'a');
  const b: Bench = { tb, s, logFile: join(tb.stateDir, 'plugin-bench.log'), socket: join(tb.stateDir, 'bench-daemon', 'dpu.sock') };
  rmSync(b.logFile, { force: true });
  const stop = () => stopDaemon(b);
  process.once('exit', stop);
  try {
    const sequential: Report['sequential'] = {};
    const keep = (name: string, c: { add: Run[]; del: Run[] }) => (sequential[name] = { add: stats(c.add.map((r) => r.ms)), del: stats(c.del.map((r) => r.ms)) });
    // Warm-up: first executions pay for page cache and the DPU's first bridge.
    await cycles(2, 'warm-up', (cmd, id, ns) => plugin(b, cmd, id, ns, false));
    keep('host-device', await cycles(o.cycles, 'host-device', (cmd, id, ns) => hostDevice(b, cmd, id, ns, 0)));
    keep('host-device + ssh', await cycles(o.cycles, 'host-device + ssh', (cmd, id, ns) => hostDeviceSsh(b, cmd, id, ns, 0)));
    const cold = await cycles(o.cycles, 'dpu-overlay cold', (cmd, id, ns) => plugin(b, cmd, id, ns, false));
    keep('dpu-overlay cold', cold);
    await startDaemon(b);
    const warm = await cycles(o.cycles, 'dpu-overlay warm', (cmd, id, ns) => plugin(b, cmd, id, ns, true));
    keep('dpu-overlay warm', warm);
    const bursts: Report['bursts'] = { warm: [], cold: [] };
    for (const n of o.bursts) bursts.warm.push(await burst(b, n, true));
    stopDaemon(b);
    for (const n of o.bursts) bursts.cold.push(await burst(b, n, false));
    progress(`bursts: ${o.bursts.join(', ')} done`);
    const partial = {
      date: new Date().toISOString(),
      command: ['npm run bench', ...(args.length ? ['--', ...args] : [])].join(' '),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      cycles: o.cycles,
      sequential,
      breakdown: { cold: breakdown(cold.add, b.logFile), warm: breakdown(warm.add, b.logFile) },
      bursts,
      version: { dpuOverlay: version(BINARY, o.cycles), hostDevice: version(HOST_DEVICE, o.cycles) },
      peakRssKb: await peakRssKb(b, container('bench-rss')),
    };
    const report: Report = { ...partial, targets: targets(partial) };
    const md = markdown(report);
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'latency.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(join(o.out, 'latency.md'), md);
    if (o.readme) updateReadme(md);
    process.stdout.write(JSON.stringify(report) + '\n\n' + md);
  } finally {
    stopDaemon(b);
    removeContainers();
    testbedDown();
    progress(`testbed ${PREFIX}: down`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
