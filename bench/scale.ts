// Scale of OVN mode next to the static mesh (issue 14): 3 emulated DPUs x N VFs over 1, 10 and 50 VNIs, warm ADDs
// (through one daemon per host) of every VF in each mode, then the DPUs' tunnel ports, OpenFlow flows and
// ovn-controller CPU, and by arithmetic the cost at 100 and 1,000 hosts.
//   node scripts/run-ts.js bench/scale.ts [--quick] [--vfs N] [--vnis 1,10,50] [--idle S] [--out DIR] [--docs]
// Writes DIR/scale.{json,md} (default build/benchmarks); --docs (formerly --readme) puts the table into docs/benchmarks.md between the
// bench:scale markers (and the JSON into docs/benchmarks/scale.json). Progress on stderr. Needs root; brings up its own testbed (DPUO_TESTBED_PREFIX) and takes it down.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  BINARY, container, envFor, hostLocal, netConf, ovnNbctl, PREFIX, removeContainers, ROOT, runInNetns, type NetnsRun,
  type Site, type Testbed, testbedDown, testbedUp,
} from '../test/testkit/testbed';
import { brIntPorts, claimToInstalledMs, flows, type Mode, ovnControllerCpuMs, ovnControllerLog, staticBridges, tunnelPorts } from './scale/dpu';
import { FORMULAS, markdown, type Phase, projections, ratio, type Report, stats, updateBenchmarksDoc } from './scale/report';

interface Options { quick: boolean; vfs: number; vnis: number[]; idleS: number; out: string; readme: boolean }

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, vfs: 32, vnis: [1, 10, 50], idleS: 10, out: join(ROOT, 'build', 'benchmarks'), readme: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') Object.assign(o, { quick: true, vfs: 8, vnis: [1, 10], idleS: 3 });
    else if (a === '--vfs') o.vfs = Number(argv[++i]);
    else if (a === '--vnis') o.vnis = String(argv[++i]).split(',').map(Number);
    else if (a === '--idle') o.idleS = Number(argv[++i]);
    else if (a === '--out') o.out = String(argv[++i]);
    else if (a === '--docs' || a === '--readme') o.readme = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.vfs >= 1 && o.vfs <= 64) || o.vnis.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 100)) || !(o.idleS >= 1)) {
    throw new Error('--vfs between 1 and 64, --vnis integers between 1 and 100, --idle >= 1');
  }
  return o;
}

const SITES = ['a', 'b', 'c'];
const VNI_BASE = 100;
const progress = (msg: string) => process.stderr.write(`bench:scale: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Children get PATH only: no NODE_OPTIONS / NODE_EXTRA_CA_CERTS of the caller's shell in the plugin or the daemon. */
const SCRUBBED = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };

interface Bench { tb: Testbed; sites: Site[]; daemons: ChildProcess[]; vfs: number }

const socketOf = (b: Bench, s: Site) => join(b.tb.stateDir, `scale-daemon-${s.name}`, 'dpu.sock');
const logOf = (b: Bench, mode: Mode, vnis: number) => join(b.tb.stateDir, `scale-${mode}-${vnis}.log`);

function conf(b: Bench, s: Site, mode: Mode, vni: number, logFile: string): Record<string, unknown> {
  const k = vni - VNI_BASE;
  const site = SITES.indexOf(s.name) + 1;
  const network = `scale-${mode}-${vni}`;
  const c = netConf(b.tb, s, {
    name: network, vni,
    ipam: hostLocal(b.tb, s, `10.${100 + k}.0.0/16`, `10.${100 + k}.${site}.10`, `10.${100 + k}.${site}.250`, network),
    extra: { logLevel: 'info', logFile, stateDir: join(b.tb.stateDir, `plugin-scale-${s.name}`) },
    dpu: { daemonSocket: socketOf(b, s), timeoutMs: 20000, ...(mode === 'ovn' ? { controlPlane: 'ovn' } : {}) },
  });
  if (mode === 'static') return c;
  const dpu = c.dpu as Record<string, unknown>;
  delete dpu.localVtep;
  delete dpu.remoteVteps;
  return { ...c, mtu: 1400 };
}

async function plugin(b: Bench, s: Site, command: 'ADD' | 'DEL', mode: Mode, vni: number, id: string, netns: string, logFile: string): Promise<NetnsRun> {
  const r = await runInNetns(s.hostNetns, BINARY, [], envFor({ command, containerId: id, netns }), JSON.stringify(conf(b, s, mode, vni, logFile)));
  if (r.status !== 0) throw new Error(`${command} ${id} (${mode}, VNI ${vni}) on host ${s.name} failed (exit ${r.status}): ${r.stdout.trim()} ${r.stderr.trim()}`.slice(0, 800));
  return r;
}

async function startDaemons(b: Bench): Promise<void> {
  for (const s of b.sites) {
    const socket = socketOf(b, s);
    rmSync(join(socket, '..'), { recursive: true, force: true });
    b.daemons.push(spawn('ip', ['netns', 'exec', s.hostNetns, BINARY, 'daemon', '--socket', socket, '--log-file', join(b.tb.stateDir, `scale-daemon-${s.name}.log`), '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'inherit'], env: SCRUBBED }));
    for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(50);
    if (!existsSync(socket)) throw new Error(`the daemon of host ${s.name} did not create its socket`);
  }
}

function stopDaemons(b: Bench): void {
  for (const d of b.daemons) d.kill('SIGTERM');
  b.daemons = [];
}

/** The DPU step (ms) of each ADD, from the closing log lines by container ID (the plugin or the daemon wrote them). */
function dpuSteps(logFile: string, containerIds: string[]): number[] {
  const byId = new Map<string, number>();
  if (existsSync(logFile)) {
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.includes('"totalMs"') || !line.includes('"ADD done"')) continue;
      const j = JSON.parse(line) as { containerId?: string; steps: Record<string, number> };
      if (j.steps.dpu !== undefined && j.containerId !== undefined) byId.set(j.containerId, j.steps.dpu);
    }
  }
  return containerIds.flatMap((id) => (byId.has(id) ? [byId.get(id) as number] : []));
}

interface Slot { s: Site; id: string; netns: string; vni: number }

async function phase(b: Bench, mode: Mode, vnis: number, netnsOf: (s: Site, i: number) => string, idleS: number): Promise<Phase> {
  const logFile = logOf(b, mode, vnis);
  rmSync(logFile, { force: true });
  const slots: Slot[] = [];
  for (let i = 0; i < b.vfs; i++) for (const s of b.sites) slots.push({ s, id: `scale-${mode}-${vnis}-${s.name}-${i}`, netns: netnsOf(s, i), vni: VNI_BASE + (i % vnis) });
  const logBefore = new Map(b.sites.map((s) => [s.name, ovnControllerLog(b.tb, s.name).length]));
  const cpu0 = mode === 'ovn' ? b.sites.map((s) => ovnControllerCpuMs(b.tb, s.name)) : [];
  const t0 = Date.now();
  const adds: NetnsRun[] = [];
  for (const x of slots) adds.push(await plugin(b, x.s, 'ADD', mode, x.vni, x.id, x.netns, logFile));
  const addWallMs = Date.now() - t0;
  progress(`${mode}, ${vnis} VNIs: ${adds.length} ADDs in ${addWallMs} ms, p50 ${stats(adds.map((r) => r.ms)).p50} ms`);
  const perDpu: Phase['perDpu'] = [];
  const cpu1 = mode === 'ovn' ? b.sites.map((s) => ovnControllerCpuMs(b.tb, s.name)) : [];
  if (mode === 'ovn') await sleep(idleS * 1000);
  const cpu2 = mode === 'ovn' ? b.sites.map((s) => ovnControllerCpuMs(b.tb, s.name)) : [];
  const claim: number[] = [];
  b.sites.forEach((s, k) => {
    const fig: Phase['perDpu'][number] = { dpu: s.name, tunnelPorts: tunnelPorts(s.name, mode), flows: flows(s.name, mode) };
    if (mode === 'ovn') {
      const addMs = (cpu1[k] as number) - (cpu0[k] as number);
      const idleMs = (cpu2[k] as number) - (cpu1[k] as number);
      fig.ovnControllerCpu = { addPhaseMs: addMs, addPhasePct: ratio(addMs * 100, addWallMs), idleMs, idlePct: ratio(idleMs * 100, idleS * 1000), idleWindowS: idleS };
      claim.push(...claimToInstalledMs(ovnControllerLog(b.tb, s.name).slice(logBefore.get(s.name)), () => true));
    }
    perDpu.push(fig);
  });
  const dels: NetnsRun[] = [];
  for (const x of slots) dels.push(await plugin(b, x.s, 'DEL', mode, x.vni, x.id, x.netns, logFile));
  progress(`${mode}, ${vnis} VNIs: per DPU ${perDpu.map((d) => `${d.dpu} ${d.tunnelPorts} tunnel ports, ${d.flows} flows`).join('; ')}; all DELs done`);
  return {
    mode, vnis, vnisWithPorts: Math.min(vnis, b.vfs), adds: adds.length, addWallMs,
    add: stats(adds.map((r) => r.ms)), del: stats(dels.map((r) => r.ms)), dpuStep: stats(dpuSteps(logFile, slots.map((x) => x.id))),
    ...(mode === 'ovn' ? { claimToInstalled: stats(claim) } : {}),
    perDpu,
  };
}

/** What is left on the DPUs and in the NB after every DEL: all zero when the plugin cleaned up. */
function leftovers(b: Bench): Record<string, number> {
  const count = (text: string) => text.split('\n').filter((l) => l.trim()).length;
  const sum = (f: (dpu: string) => number) => b.sites.reduce((n, s) => n + f(s.name), 0);
  return {
    logicalSwitchPorts: count(ovnNbctl(b.tb, '--bare', '--columns=name', 'list', 'Logical_Switch_Port')),
    logicalSwitches: count(ovnNbctl(b.tb, '--bare', '--columns=name', 'list', 'Logical_Switch')),
    brIntPorts: sum(brIntPorts),
    staticBridges: sum((d) => staticBridges(d).length),
    vxlanPorts: sum((d) => tunnelPorts(d, 'static')),
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const o = parseArgs(args);
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
  progress(`testbed ${PREFIX}: up (${SITES.length} sites x ${o.vfs} VFs, OVN)`);
  const tb = testbedUp(o.vfs, SITES.join(','), 1, { ovn: true });
  const b: Bench = { tb, sites: SITES.map((n) => tb.sites.find((s) => s.name === n) as Site), daemons: [], vfs: o.vfs };
  const teardown = () => {
    stopDaemons(b);
    removeContainers();
    testbedDown();
    progress(`testbed ${PREFIX}: down`);
  };
  process.once('exit', () => stopDaemons(b));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      teardown();
      process.exit(1);
    });
  }
  try {
    const nets = new Map<string, string>();
    const netnsOf = (s: Site, i: number) => {
      const key = `${s.name}${i}`;
      if (!nets.has(key)) nets.set(key, container(`scale-${key}`));
      return nets.get(key) as string;
    };
    await startDaemons(b);
    // warm-up: the daemons' first SSH connections, the DPUs' first bridge, switch and chassis look-up
    for (const mode of ['ovn', 'static'] as const) {
      const log = join(tb.stateDir, 'scale-warm-up.log');
      for (const s of b.sites) await plugin(b, s, 'ADD', mode, VNI_BASE, `scale-warm-${mode}-${s.name}`, netnsOf(s, 0), log);
      for (const s of b.sites) await plugin(b, s, 'DEL', mode, VNI_BASE, `scale-warm-${mode}-${s.name}`, netnsOf(s, 0), log);
    }
    const phases: Phase[] = [];
    for (const n of o.vnis) {
      phases.push(await phase(b, 'ovn', n, netnsOf, o.idleS));
      phases.push(await phase(b, 'static', n, netnsOf, o.idleS));
    }
    stopDaemons(b);
    const ratios: Report['ratios'] = o.vnis.map((n) => {
      const ovn = phases.find((p) => p.mode === 'ovn' && p.vnis === n)?.add.p50 ?? NaN;
      const st = phases.find((p) => p.mode === 'static' && p.vnis === n)?.add.p50 ?? NaN;
      return { vnis: n, ovnWarmAddP50: ovn, staticWarmAddP50: st, ratio: ratio(ovn, st), goal: 1.5, met: ratio(ovn, st) <= 1.5 };
    });
    const largest = Math.max(...phases.map((p) => p.vnisWithPorts));
    const report: Report = {
      date: new Date().toISOString(),
      command: ['npm run bench:scale', ...(args.length ? ['--', ...args] : [])].join(' '),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      path: 'warm: every ADD and DEL through a dpu-overlay daemon per host (one SSH connection per DPU kept open), sequential',
      sites: SITES,
      vfsPerSite: o.vfs,
      phases,
      ratios,
      projections: { formulas: FORMULAS, rows: projections(largest) },
      leftovers: leftovers(b),
      notes: [
        `The ${o.vfs} VFs of each host are spread round-robin over the VNIs, so with more VNIs than VFs only ${o.vfs} VNIs get ports ("with ports").`,
        'Emulation: hosts, DPUs and the OVN central are network namespaces on one machine, OVS is userspace (netdev), the DPUs share its cores with the hosts and the central; absolute times are this machine\'s, the ratios are the point.',
        'OVN mode\'s ADD includes waiting for ovn-controller to set ovn-installed (the port is up when the ADD returns); the static mode\'s ADD returns when the OVS transaction is done.',
        'ovn-controller CPU is utime + stime from /proc/<pid>/stat, as a percentage of one core over the ADD phase and over the idle window after it.',
      ],
    };
    const md = markdown(report);
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'scale.json'), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(join(o.out, 'scale.md'), md);
    if (o.readme) {
      updateBenchmarksDoc(md);
      writeFileSync(join(ROOT, 'docs', 'benchmarks', 'scale.json'), JSON.stringify(report, null, 2) + '\n');
      progress('docs/benchmarks.md table updated');
    }
    process.stdout.write(md);
    const left = Object.entries(report.leftovers).filter(([, v]) => v !== 0);
    if (left.length) throw new Error(`left behind after every DEL: ${left.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  } finally {
    teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scale: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
