// The bench's figures: statistics, issue 13's targets (ratios measured side by side in one run, with the measured
// floor for each one missed), the markdown table, and the docs/benchmarks.md section between the bench:latency markers.
import { updateBenchmarksSection } from '../docs-section';

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  max: number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return { n: s.length, p50: r1(at(0.5)), p95: r1(at(0.95)), max: r1(s[s.length - 1] ?? NaN) };
}

export const median = (xs: number[]) => stats(xs).p50;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export interface BurstResult {
  n: number;
  addWallMs: number;
  addPerCall: Stats;
  delWallMs: number;
  delPerCall: Stats;
}

export interface Target {
  name: string;
  measured: string;
  ratio: number;
  op: '<=' | '<';
  goal: number;
  met: boolean;
  /** for a missed target: the measured floor that stops it */
  floor?: string;
}

export interface Report {
  date: string;
  command: string;
  machine: { cores: number; cpu: string; node: string };
  cycles: number;
  /** the variable names every child got (the environment is scrubbed) */
  childEnv: string[];
  sequential: Record<string, { add: Stats; del: Stats }>;
  breakdown: { cold: Record<string, number>; warm: Record<string, number> };
  bursts: { warm: BurstResult[]; cold: BurstResult[] };
  version: { dpuOverlay: Stats; helloSea: Stats; hostDevice: Stats; helloSeaKey: string };
  envEffects: Array<{ name: string; p50: number; addedMs: number }>;
  /** VERSION of the V8-snapshot variant (--snapshot only; its ADD is the "cold, V8 snapshot" sequential row) */
  snapshotVersion?: Stats;
  peakRssKb: number;
  daemon: { attachments: number; rssKbBefore: number; rssKb: number; idleSeconds: number; idleCpuPercent: number };
  targets: Target[];
}

export const DPU_CONNECT = 'DPU connect (SSH handshake or daemon socket; overlaps the host steps)';

export function targets(r: Omit<Report, 'targets'>): Target[] {
  const p50 = (k: string) => r.sequential[k]?.add.p50 ?? NaN;
  const warm = p50('dpu-overlay warm');
  const cold = p50('dpu-overlay cold');
  const hd = p50('host-device');
  const hdSsh = p50('host-device + ssh');
  const node = r.version.helloSea.p50;
  const t = (name: string, measured: string, value: number, op: '<=' | '<', goal: number, floor: string): Target => {
    const met = op === '<=' ? value <= goal : value < goal;
    return { name, measured, ratio: value, op, goal, met, ...(met ? {} : { floor }) };
  };
  const out = [
    t('warm ADD p50 / host-device ADD p50 (same IPAM)', `${warm} / ${hd} ms`, ratio(warm, hd), '<=', 2,
      `a Node process (hello-world SEA) starts in ${node} ms = ${ratio(node, hd)} x host-device ADD`),
  ];
  const connect = r.breakdown.cold[DPU_CONNECT];
  out.push(t('cold ADD p50 / (host-device + OpenSSH ovs-vsctl) ADD p50', `${cold} / ${hdSsh} ms`, ratio(cold, hdSsh), '<', 1,
    connect === undefined ? `Node start ${node} ms` : `Node start ${node} ms + ssh2 connect ${connect} ms = ${ratio(node + connect, hdSsh)} x the baseline`));
  const b20 = r.bursts.warm.find((x) => x.n === 20);
  if (b20) {
    const starts = (20 * node) / r.machine.cores;
    out.push(t('wall time of 20 concurrent warm ADDs / warm ADD p50', `${b20.addWallMs} / ${warm} ms`, ratio(b20.addWallMs, warm), '<=', 3,
      `20 Node starts on ${r.machine.cores} cores take ${r1(starts)} ms = ${ratio(starts, warm)} x warm ADD p50`));
  }
  const v = r.version.dpuOverlay.p50;
  out.push(t('VERSION p50 / hello-world SEA VERSION p50 (the Node floor)', `${v} / ${node} ms`, ratio(v, node), '<=', 1.3,
    `the plugin's VERSION path costs ${r1(v - node)} ms more than an empty SEA`));
  return out;
}

export function markdown(r: Report): string {
  const row = (name: string, s: Stats) => `| ${name} | ${s.p50} | ${s.p95} | ${s.max} |`;
  const d = r.daemon;
  return [
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${r.cycles} cycles per row, ${r.date}.`,
    `Command: \`${r.command}\`. Children get only ${r.childEnv.join(', ')}.`,
    '',
    '| target | measured | ratio | goal | met, or the measured floor that stops it |',
    '| --- | ---: | ---: | ---: | --- |',
    ...r.targets.map((t) => `| ${t.name} | ${t.measured} | ${t.ratio} | ${t.op} ${t.goal} | ${t.met ? 'met' : `no: ${t.floor}`} |`),
    `| daemon RSS with ${d.attachments} attachments | ${Math.round(d.rssKb / 1024)} MiB (${Math.round(d.rssKbBefore / 1024)} MiB before them) | | reported | |`,
    `| daemon CPU at idle over ${d.idleSeconds} s, ${d.attachments} attachments | ${d.idleCpuPercent} % of a core | | reported | |`,
    ...r.envEffects.map((e) => `| VERSION p50 with ${e.name} inherited | ${e.p50} ms (${e.addedMs >= 0 ? '+' : ''}${e.addedMs} ms) | | reported | |`),
    '',
    '| sequential, ms | p50 | p95 | max |',
    '| --- | ---: | ---: | ---: |',
    ...Object.entries(r.sequential).flatMap(([name, v]) => [row(`${name} ADD`, v.add), row(`${name} DEL`, v.del)]),
    row('dpu-overlay VERSION (cold start)', r.version.dpuOverlay),
    ...(r.snapshotVersion ? [row('dpu-overlay VERSION, V8 snapshot', r.snapshotVersion)] : []),
    row('hello-world SEA VERSION (same build)', r.version.helloSea),
    row('host-device VERSION', r.version.hostDevice),
    '',
    `Peak RSS of one standalone ADD: ${Math.round(r.peakRssKb / 1024)} MiB.`,
    '',
    '| ADD step breakdown (p50 ms) | cold | warm |',
    '| --- | ---: | ---: |',
    ...Object.keys({ ...r.breakdown.cold, ...r.breakdown.warm }).map((k) => `| ${k} | ${r.breakdown.cold[k] ?? ''} | ${r.breakdown.warm[k] ?? ''} |`),
    '',
    '| burst (concurrent on one host) | ADD wall ms | ADD p50 / max | DEL wall ms | DEL p50 / max |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...(['warm', 'cold'] as const).flatMap((mode) =>
      r.bursts[mode].map((x) => `| ${mode} ${x.n} | ${x.addWallMs} | ${x.addPerCall.p50} / ${x.addPerCall.max} | ${x.delWallMs} | ${x.delPerCall.p50} / ${x.delPerCall.max} |`),
    ),
  ].join('\n') + '\n';
}

export function updateBenchmarksDoc(md: string): void {
  updateBenchmarksSection('latency', md);
}
