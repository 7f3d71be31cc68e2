/**
 * One sample: with CPU hogs on every host core, iperf3 between the pairs for a fixed time, and the host cores'
 * counters (procfs, perf) around it. Counters are read once per machine: the emulated hosts share one.
 */
import { coreDelta, parseCpuList, parsePerfContextSwitches, parseUtime, snapshotFrom, type CoreDelta, type Snapshot } from './counters';
import type { Environment } from './env';
import { onNode, sleep, type Node, type Processes, type Started, type Where } from './exec';
import type { ModeName, ModeSetup, Pair, Place, PlumbingProcess } from './modes';

export interface Affinity {
  role: 'host' | 'dpu';
  node: string;
  what: string;
  pid: number;
  /** union of the CPUs allowed to any of the process's threads */
  cpus: number[];
}

export interface HostMetrics {
  cores: number[];
  /** user+nice share of the host cores (mpstat %usr+%nice), 0..1 */
  userShare: number;
  /** share of the host cores' time the stress hogs got in user mode, 0..1 */
  hogShare: number;
  busyShare: number;
  kernelShare: number;
  contextSwitches: number;
  interrupts: number;
  netRxSoftirqs: number;
  netTxSoftirqs: number;
}

export interface Sample {
  mode: ModeName;
  pairs: number;
  seconds: number;
  realisation: string;
  throughputGbps: number;
  bytes: number;
  perPair: Array<{ gbps: number; bytes: number; retransmits: number }>;
  host: HostMetrics;
  perGbit: { contextSwitches: number; interrupts: number; netRxSoftirqs: number; netTxSoftirqs: number };
  /** the emulated DPU cores over the same window (absent on real hosts) */
  dpuCores?: CoreDelta;
  affinity: Affinity[];
}

interface Machine {
  node: Node;
  cores: number[];
}

/** One Node per distinct machine (the emulated hosts share one). */
function machinesOf(env: Environment): Machine[] {
  const seen = new Map<string, Machine>();
  for (const node of env.nodes) if (!seen.has(node.machine)) seen.set(node.machine, { node, cores: node.hostCores });
  return [...seen.values()];
}

async function snapshot(procs: Processes, node: Node): Promise<Snapshot> {
  const out = await onNode(procs, node, ['sh', '-c', 'cat /proc/stat; echo @@; cat /proc/interrupts; echo @@; cat /proc/softirqs'], { root: true });
  const [stat, irq, soft] = out.replace(/\r/g, '').split('@@\n') as [string, string, string];
  return snapshotFrom(stat, irq ?? '', soft ?? '');
}

/** A process started through `sh -c 'echo $$; exec ...'`, so its pid on the node is known (also through ssh). */
interface Running {
  node: Node;
  started: Started;
  pid: number;
}

async function startReporting(procs: Processes, node: Node, argv: string[], where: Where): Promise<Running> {
  const started = procs.start(node.command(['sh', '-c', 'echo "$$"; exec "$@"', 'sh', ...argv], where));
  const line = (await started.firstLine).trim();
  const pid = Number(line);
  if (!(pid > 0)) throw new Error(`${argv[0]} did not start: ${line} ${(await started.result).stderr.slice(0, 300)}`);
  return { node, started, pid };
}

/** `stress --cpu N` pinned to the host cores (in the host's netns); the hogs are the children of the stress parent. */
function startHogs(procs: Processes, m: Machine, seconds: number): Promise<Running> {
  return startReporting(procs, m.node, ['stress', '--cpu', String(m.cores.length), '--timeout', `${Math.ceil(seconds)}s`, '--quiet'], { pin: true });
}

// Threads and children come and go between the glob and the read; only the process itself must exist.
const TOLERANT_TASK_STATUS = 'test -d /proc/"$0" || exit 1; for f in /proc/"$0"/task/*/status; do cat "$f" 2>/dev/null; done; exit 0';
const TOLERANT_CHILDREN = 'test -d /proc/"$0" || exit 1; cat /proc/"$0"/task/*/children 2>/dev/null; exit 0';
const TOLERANT_CHILD_STATS = 'test -d /proc/"$0" || exit 1; for c in $(cat /proc/"$0"/task/*/children 2>/dev/null); do cat /proc/"$c"/stat 2>/dev/null; done; exit 0';

async function hogTicks(procs: Processes, h: Running): Promise<number> {
  const out = await onNode(procs, h.node, ['sh', '-c', TOLERANT_CHILD_STATS, String(h.pid)], { root: true });
  return out.replace(/\r/g, '').split('\n').filter(Boolean).reduce((s, line) => s + parseUtime(line), 0);
}

async function affinityOf(procs: Processes, p: PlumbingProcess): Promise<Affinity> {
  const out = await onNode(procs, p.node, ['sh', '-c', TOLERANT_TASK_STATUS, String(p.pid)], { root: true });
  const cpus = new Set<number>();
  for (const m of out.matchAll(/^Cpus_allowed_list:\s*(\S+)/gm)) for (const c of parseCpuList(m[1] as string)) cpus.add(c);
  return { role: p.role, node: p.node.name, what: p.what, pid: p.pid, cpus: [...cpus].sort((x, y) => x - y) };
}

async function waitListening(procs: Processes, place: Place, port: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const r = await procs.run(place.node.command(['ss', '-Hltn', `sport = :${port}`], { netns: place.netns }));
    if (r.code === 0 && r.stdout.trim()) return;
    await sleep(20);
  }
  throw new Error(`iperf3 server on port ${port} did not start`);
}

async function checkReachable(procs: Processes, pair: Pair): Promise<void> {
  const r = await procs.run(pair.client.node.command(['ping', '-c', '3', '-i', '0.2', '-W', '2', pair.serverIp], { netns: pair.client.netns }));
  if (r.code !== 0) throw new Error(`${pair.serverIp} is not reachable from the client side (${pair.client.netns ?? pair.client.node.name}): ${r.stdout}${r.stderr}`);
}

interface IperfEnd {
  end?: { sum_received?: { bytes: number; bits_per_second: number }; sum_sent?: { retransmits?: number } };
  error?: string;
}

function parseIperf(stdout: string): { gbps: number; bytes: number; retransmits: number } {
  const text = stdout.replace(/\r/g, '');
  const j = JSON.parse(text.slice(text.indexOf('{'))) as IperfEnd;
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

const IPERF_BUFFER = '8K'; // the paper's 8 KB buffers

export async function measure(procs: Processes, env: Environment, mode: ModeName, setup: ModeSetup, seconds: number): Promise<Sample> {
  const machines = machinesOf(env);
  for (const pair of setup.pairs) await checkReachable(procs, pair);

  const hogs = await Promise.all(machines.map((m) => startHogs(procs, m, 2 * seconds + 60)));
  const servers: Running[] = [];
  try {
    for (const p of setup.pairs) servers.push(await startReporting(procs, p.server.node, ['iperf3', '-s', '-1', '-p', String(p.port)], { netns: p.server.netns, pin: true }));
    for (const p of setup.pairs) await waitListening(procs, p.server, p.port);
    await sleep(500); // hogs at full speed
    const before = await Promise.all(machines.map((m) => snapshot(procs, m.node)));
    const hogsBefore = await Promise.all(hogs.map((h) => hogTicks(procs, h)));
    const perf = machines.map((m) =>
      procs.start(m.node.command(['perf', 'stat', '-x', ',', '-e', 'context-switches', '-a', '-C', m.cores.join(','), '--', 'sleep', String(seconds)], { root: true })),
    );
    const clients = await Promise.all(
      setup.pairs.map((p) =>
        startReporting(procs, p.client.node, ['iperf3', '-c', p.serverIp, '-p', String(p.port), '-t', String(seconds), '-l', IPERF_BUFFER, '-J'], { netns: p.client.netns, pin: true }),
      ),
    );
    const affinity = await affinities(procs, setup, hogs, servers, clients);
    const results = await Promise.all(clients.map((c) => c.started.result));
    const after = await Promise.all(machines.map((m) => snapshot(procs, m.node)));
    const hogsAfter = await Promise.all(hogs.map((h) => hogTicks(procs, h)));
    const perfOut = await Promise.all(perf.map((p) => p.result));

    const perPair = results.map((r, i) => {
      if (r.code !== 0 && !r.stdout.includes('{')) throw new Error(`iperf3 client ${i} failed: ${r.stderr}`);
      return parseIperf(r.stdout);
    });
    const deltas = machines.map((m, i) => coreDelta(before[i] as Snapshot, after[i] as Snapshot, m.cores));
    const contextSwitches = perfOut.reduce((s, r) => s + parsePerfContextSwitches(r.stderr + r.stdout), 0);
    const hogShare = hogsAfter.reduce((s, t, i) => s + (t - (hogsBefore[i] as number)), 0) / Math.max(1, sum(deltas.map((d) => d.ticks)));
    const bytes = perPair.reduce((s, p) => s + p.bytes, 0);
    const host: HostMetrics = {
      cores: machines.flatMap((m) => m.cores),
      userShare: mean(deltas.map((d) => d.userShare)),
      hogShare,
      busyShare: mean(deltas.map((d) => d.busyShare)),
      kernelShare: mean(deltas.map((d) => d.kernelShare)),
      contextSwitches,
      interrupts: sum(deltas.map((d) => d.interrupts)),
      netRxSoftirqs: sum(deltas.map((d) => d.netRx)),
      netTxSoftirqs: sum(deltas.map((d) => d.netTx)),
    };
    const gbit = (bytes * 8) / 1e9;
    const per = (x: number) => (gbit > 0 ? x / gbit : 0);
    return {
      mode,
      pairs: setup.pairs.length,
      seconds,
      realisation: setup.realisation,
      throughputGbps: sum(perPair.map((p) => p.gbps)),
      bytes,
      perPair,
      host,
      perGbit: { contextSwitches: per(contextSwitches), interrupts: per(host.interrupts), netRxSoftirqs: per(host.netRxSoftirqs), netTxSoftirqs: per(host.netTxSoftirqs) },
      ...(env.dpuCores.length > 0 ? { dpuCores: coreDelta(before[0] as Snapshot, after[0] as Snapshot, env.dpuCores) } : {}),
      affinity,
    };
  } finally {
    for (const h of hogs) h.started.stop();
    for (const s of servers) s.started.stop();
    await Promise.all([...hogs, ...servers].map((p) => p.started.result));
  }
}

async function affinities(procs: Processes, setup: ModeSetup, hogs: Running[], servers: Running[], clients: Running[]): Promise<Affinity[]> {
  const list: PlumbingProcess[] = [...setup.processes];
  const add = (what: string, rs: Running[]) => rs.forEach((r, i) => list.push({ role: 'host', node: r.node, what: `${what} ${i}`, pid: r.pid }));
  add('iperf3 server', servers);
  add('iperf3 client', clients);
  for (const h of hogs) {
    const children = await onNode(procs, h.node, ['sh', '-c', TOLERANT_CHILDREN, String(h.pid)], { root: true });
    for (const c of children.trim().split(/\s+/).filter(Boolean)) list.push({ role: 'host', node: h.node, what: 'stress hog', pid: Number(c) });
  }
  return Promise.all(list.map((p) => affinityOf(procs, p)));
}

function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}

function mean(xs: number[]): number {
  return xs.length ? sum(xs) / xs.length : 0;
}
