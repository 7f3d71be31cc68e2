/**
 * Per-CPU kernel counters, read from procfs on the machine under test, and the per-core deltas the harness
 * reports. Pure parsing and arithmetic: the reading itself goes through a Node (see exec.ts).
 */

export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

/** Everything the harness counts for one CPU. */
export interface CoreCounters {
  times: CpuTimes;
  /** Sum of all per-CPU /proc/interrupts rows (device IRQs and LOC, RES, CAL, TLB, ...), as mpstat -I SUM. */
  interrupts: number;
  netRx: number;
  netTx: number;
}

export type Snapshot = Map<number, CoreCounters>;

const TIME_FIELDS: Array<keyof CpuTimes> = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];

export function parseProcStat(text: string): Map<number, CpuTimes> {
  const cpus = new Map<number, CpuTimes>();
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const values = (m[2] as string).trim().split(/\s+/).map(Number);
    const times = Object.fromEntries(TIME_FIELDS.map((f, i) => [f, values[i] ?? 0])) as unknown as CpuTimes;
    cpus.set(Number(m[1]), times);
  }
  return cpus;
}

/** Parses a per-CPU table (/proc/interrupts, /proc/softirqs): header "CPU0 CPU1 ...", then "NAME: n n ... [text]". */
function parsePerCpuTable(text: string): { cpus: number[]; rows: Array<{ name: string; counts: number[] }> } {
  const lines = text.split('\n');
  const cpus = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean).map((c) => Number(c.replace(/^CPU/, '')));
  const rows: Array<{ name: string; counts: number[] }> = [];
  for (const line of lines.slice(1)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const fields = (m[2] as string).trim().split(/\s+/);
    const counts: number[] = [];
    for (const f of fields.slice(0, cpus.length)) {
      if (!/^\d+$/.test(f)) break;
      counts.push(Number(f));
    }
    // ERR and MIS are machine-wide single numbers, not per-CPU columns
    if (counts.length === cpus.length) rows.push({ name: m[1] as string, counts });
  }
  return { cpus, rows };
}

export function parseInterrupts(text: string): Map<number, number> {
  const { cpus, rows } = parsePerCpuTable(text);
  return new Map(cpus.map((cpu, i) => [cpu, rows.reduce((sum, r) => sum + (r.counts[i] ?? 0), 0)]));
}

export function parseSoftirqs(text: string): Map<number, { netRx: number; netTx: number }> {
  const { cpus, rows } = parsePerCpuTable(text);
  const row = (name: string) => rows.find((r) => r.name === name)?.counts ?? [];
  const rx = row('NET_RX');
  const tx = row('NET_TX');
  return new Map(cpus.map((cpu, i) => [cpu, { netRx: rx[i] ?? 0, netTx: tx[i] ?? 0 }]));
}

export function snapshotFrom(stat: string, interrupts: string, softirqs: string): Snapshot {
  const times = parseProcStat(stat);
  const irqs = parseInterrupts(interrupts);
  const soft = parseSoftirqs(softirqs);
  const snap: Snapshot = new Map();
  for (const [cpu, t] of times) {
    const s = soft.get(cpu) ?? { netRx: 0, netTx: 0 };
    snap.set(cpu, { times: t, interrupts: irqs.get(cpu) ?? 0, netRx: s.netRx, netTx: s.netTx });
  }
  return snap;
}

/** Counter deltas summed over a set of cores. */
export interface CoreDelta {
  cores: number[];
  /** all CPU time of these cores in the window, in clock ticks */
  ticks: number;
  /** user+nice share of all CPU time of these cores (what mpstat calls %usr + %nice), 0..1 */
  userShare: number;
  /** non-idle share (everything but idle and iowait), 0..1 */
  busyShare: number;
  /** system+irq+softirq share, 0..1 */
  kernelShare: number;
  interrupts: number;
  netRx: number;
  netTx: number;
}

function total(t: CpuTimes): number {
  return TIME_FIELDS.reduce((s, f) => s + t[f], 0);
}

export function coreDelta(before: Snapshot, after: Snapshot, cores: number[]): CoreDelta {
  let all = 0;
  let user = 0;
  let idle = 0;
  let kernel = 0;
  let interrupts = 0;
  let netRx = 0;
  let netTx = 0;
  for (const cpu of cores) {
    const a = before.get(cpu);
    const b = after.get(cpu);
    if (!a || !b) throw new Error(`CPU ${cpu} is missing from /proc/stat`);
    const d = (f: keyof CpuTimes) => b.times[f] - a.times[f];
    all += total(b.times) - total(a.times);
    user += d('user') + d('nice');
    idle += d('idle') + d('iowait');
    kernel += d('system') + d('irq') + d('softirq');
    interrupts += b.interrupts - a.interrupts;
    netRx += b.netRx - a.netRx;
    netTx += b.netTx - a.netTx;
  }
  const share = (x: number) => (all > 0 ? x / all : 0);
  return { cores, ticks: all, userShare: share(user), busyShare: share(all - idle), kernelShare: share(kernel), interrupts, netRx, netTx };
}

/** Context switches from `perf stat -x, -e context-switches` output (CSV on stderr). */
export function parsePerfContextSwitches(text: string): number {
  for (const line of text.split('\n')) {
    const f = line.split(',');
    if (f[2] === 'context-switches' || f[2]?.startsWith('context-switches')) {
      const n = Number(f[0]);
      if (!Number.isFinite(n)) throw new Error(`perf could not count context switches: ${line}`);
      return n;
    }
  }
  throw new Error(`no context-switches line in perf output: ${text.trim().slice(0, 300)}`);
}

/** utime (clock ticks) from /proc/<pid>/stat; the command name may contain spaces and parentheses. */
export function parseUtime(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]); // field 14 overall: state is field 3 = rest[0]
}

/** "0-2,5" -> [0,1,2,5] (Cpus_allowed_list, taskset -c syntax) */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',').filter(Boolean)) {
    const [lo, hi] = part.split('-').map(Number) as [number, number | undefined];
    for (let c = lo; c <= (hi ?? lo); c++) cpus.push(c);
  }
  return cpus;
}
