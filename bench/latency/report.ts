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

const signed = (x: number) => (x >= 0 ? `+ ${x}` : `- ${-x}`);

export const median = (xs: number[]) => stats(xs).p50;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export interface BurstResult {
  n: number;
  addWallMs: number;
  addPerCall: Stats;
  delWallMs: number;
  delPerCall: Stats;
  /** the same burst of host-device, run beside it */
  hostDevice?: { addWallMs: number; delWallMs: number };
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
  /** per-step medians from the closing log lines: cold and warm ADD, and warm DEL (warmDel) */
  breakdown: { cold: Record<string, number>; warm: Record<string, number>; warmDel?: Record<string, number> };
  bursts: { warm: BurstResult[]; cold: BurstResult[] };
  /** one warm round trip of a fixed command: the plugin's transport beside OpenSSH with ControlMaster */
  dpuRoundTrip?: { command: string; transport: Stats; openssh: Stats };
  version: { dpuOverlay: Stats; helloSea: Stats; hostDevice: Stats; helloSeaKey: string };
  envEffects: Array<{ name: string; p50: number; addedMs: number }>;
  /** VERSION of the V8-snapshot variant (--snapshot only; its ADD is the "cold, V8 snapshot" sequential row) */
  snapshotVersion?: Stats;
  peakRssKb: number;
  daemon: { attachments: number; rssKbBefore: number; rssKb: number; idleSeconds: number; idleCpuPercent: number };
  /** warm ADD/DEL of an OVN network beside a static one, interleaved on the testbed brought up with OVN; breakdown: the OVN ADDs' steps */
  ovn?: { static: { add: Stats; del: Stats }; ovn: { add: Stats; del: Stats }; breakdown: Record<string, number>; staticBreakdown?: Record<string, number> };
  /**
   * The DPU's own work for a warm ADD and DEL: the command lines the plugin sent (recorded at the DPU's sshd; `lines`:
   * how many execs), replayed locally on the DPU through the guard or without it, interleaved with the warm rows.
   * Keys: DPU_LINES.
   */
  dpuLines?: Record<string, { lines: { add: number; del: number }; add: Stats; del: Stats }>;
  /** the packaged plugin's warm ADD/DEL against a stand-in daemon that answers at once: the forwarding process's own cost */
  forwarder?: { add: Stats; del: Stats };
  targets: Target[];
}

/** The names of the OVN testbed's rows (bench/latency.ts ovnRows). */
export const OVN_ROWS = { static: 'dpu-overlay warm, static (OVN testbed)', ovn: 'dpu-overlay warm, OVN' } as const;

/** The rows of Report.dpuLines: the static testbed (no forced command, as the plugin's rows there run) and the OVN testbed (the guard forced). */
export const DPU_LINES = {
  plain: "a warm static ADD/DEL's DPU lines, run locally without the guard (as this testbed's sshd runs them)",
  guard: "a warm static ADD/DEL's DPU lines, run locally through the guard",
  ovnStatic: "a warm static ADD/DEL's DPU lines on the OVN testbed, run locally through the guard",
  ovn: "a warm OVN ADD/DEL's DPU lines, run locally through the guard",
} as const;

export const FORWARDER_ROW = 'dpu-overlay warm, forwarding only (to a stand-in daemon that answers at once)';

const DPU_STEP = 'DPU step (rest of the connect + OVS transaction)';
const PROCESS = 'process start, module loading, exit';

export const DPU_CONNECT = 'DPU connect (SSH handshake or daemon socket; overlaps the host steps)';

/**
 * What is left of a measured time once its unavoidable parts are taken out, named by the steps that take it: each
 * step of the closing log line, less its own measured floor where it has one (the DPU step less the same lines run
 * locally, the process start less the hello-world SEA). The two largest, for the floor text.
 */
function gapText(total: number, floor: number, steps: Record<string, number> | undefined, floors: Record<string, number>, against = 'measured alone'): string {
  const gap = r1(total - floor);
  // The plugin runs some of these parts side by side (the daemon overlaps DPU work with host steps): no single gap then.
  if (gap <= 0) return `the command took ${r1(-gap)} ms less than this sum: the plugin overlaps part of it with its other steps`;
  const timed = Object.entries(steps ?? {}).filter(([k]) => k !== DPU_CONNECT);
  if (timed.length === 0) return `the remaining ${gap} ms: no step timings in this run`;
  const parts = timed
    .map(([k, v]) => (floors[k] === undefined ? { k, over: v, text: `${k} ${v} ms` } : { k, over: r1(v - (floors[k] as number)), text: `${k} ${v} ms against ${floors[k]} ms ${against} (${v >= (floors[k] as number) ? '+' : ''}${r1(v - (floors[k] as number))})` }))
    .sort((a, b) => b.over - a.over)
    .slice(0, 2);
  return `the remaining ${gap} ms is mostly ${parts.map((p) => p.text).join(', then ')}`;
}

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
  const warmDel = r.sequential['dpu-overlay warm']?.del.p50 ?? NaN;
  const hdDel = r.sequential['host-device']?.del.p50 ?? NaN;
  const plain = r.dpuLines?.[DPU_LINES.plain];
  const guard = r.dpuLines?.[DPU_LINES.guard];
  const nodeText = `Node start ${node} ms (hello-world SEA)`;
  /** Node start + the DPU's own lines (as this testbed runs them: no guard), the sum over the baseline, and what else the command took. */
  const warmFloor = (op: 'add' | 'del', total: number, base: number, baseName: string, steps: Record<string, number> | undefined): string => {
    if (!plain || !guard) return `${nodeText} = ${ratio(node, base)} x ${baseName} (no DPU line measurement in this run)`;
    const line = plain[op].p50;
    const sum = r1(node + line);
    const what = op === 'add' ? 'plug' : 'unplug';
    return `${nodeText} + the DPU's own ${what} ${line} ms (the plugin's ${plain.lines[op]} recorded line(s) run locally on the DPU without the guard, as this testbed's sshd runs them; ${guard[op].p50} ms through the guard) = ${sum} ms = ${ratio(sum, base)} x ${baseName}; ` +
      gapText(total, sum, steps, { [DPU_STEP]: line, [PROCESS]: node }) +
      (r.forwarder ? `; forwarding alone (to a daemon that answers at once) takes ${r.forwarder[op].p50} ms = Node start ${signed(r1(r.forwarder[op].p50 - node))} ms` : '');
  };
  const out = [
    t('warm ADD p50 / host-device ADD p50 (same IPAM)', `${warm} / ${hd} ms`, ratio(warm, hd), '<=', 2, warmFloor('add', warm, hd, 'host-device ADD', r.breakdown.warm)),
    t('warm DEL p50 / host-device DEL p50 (same IPAM)', `${warmDel} / ${hdDel} ms`, ratio(warmDel, hdDel), '<=', 2, warmFloor('del', warmDel, hdDel, 'host-device DEL', r.breakdown.warmDel)),
  ];
  const connect = r.breakdown.cold[DPU_CONNECT];
  const coldFloor = (): string => {
    if (connect === undefined) return `${nodeText} = ${ratio(node, hdSsh)} x the baseline (no SSH connect timing in this run)`;
    const line = plain?.add.p50 ?? 0;
    const sum = r1(node + connect + line);
    return `${nodeText} + ssh2 connect ${connect} ms${plain ? ` + the DPU's own plug ${line} ms (a warm ADD's recorded lines run locally)` : ''} = ${sum} ms = ${ratio(sum, hdSsh)} x the baseline; ` +
      gapText(cold, sum, r.breakdown.cold, { [DPU_STEP]: line, [PROCESS]: node });
  };
  out.push(t('cold ADD p50 / (host-device + OpenSSH ovs-vsctl) ADD p50', `${cold} / ${hdSsh} ms`, ratio(cold, hdSsh), '<', 1, coldFloor()));
  const b16 = r.bursts.warm.find((x) => x.n === 16);
  if (b16?.hostDevice) {
    const starts = (16 * node) / r.machine.cores;
    out.push(t('wall time of 16 concurrent warm ADDs / the same 16 with host-device', `${b16.addWallMs} / ${b16.hostDevice.addWallMs} ms`, ratio(b16.addWallMs, b16.hostDevice.addWallMs), '<=', 2,
      `16 Node starts on ${r.machine.cores} cores take ${r1(starts)} ms = ${ratio(starts, b16.hostDevice.addWallMs)} x the host-device burst`));
  }
  const rt = r.dpuRoundTrip;
  if (rt) {
    out.push(t('DPU round trip p50, plugin transport (warm) / OpenSSH ControlMaster', `${rt.transport.p50} / ${rt.openssh.p50} ms`, ratio(rt.transport.p50, rt.openssh.p50), '<=', 1,
      `a step ${r1(rt.transport.p50 - rt.openssh.p50)} ms slower than OpenSSH: look for 40 ms quanta (Nagle and the DPU's delayed ACK)`));
  }
  if (r.ovn) {
    const [o, st] = [r.ovn.ovn.add.p50, r.ovn.static.add.p50];
    const ovnSteps = r.ovn.breakdown;
    const dpu = ovnSteps[DPU_STEP];
    const [ovnLine, staticLine] = [r.dpuLines?.[DPU_LINES.ovn]?.add.p50, r.dpuLines?.[DPU_LINES.ovnStatic]?.add.p50];
    const ovnFloor = (): string => {
      if (ovnLine === undefined || staticLine === undefined) {
        return `OVN mode's ADD plugs after IPAM and waits for ovn-controller to install the port${dpu === undefined ? '' : `: its DPU step alone takes ${dpu} ms = ${ratio(dpu, st)} x the static ADD`}`;
      }
      const sum = r1(st - staticLine + ovnLine);
      // Each OVN step against the static ADD's same step, its DPU step moved by the difference of the lines run locally.
      const stSteps = r.ovn?.staticBreakdown ?? {};
      const expected = Object.fromEntries(Object.entries(stSteps).map(([k, v]) => [k, k === DPU_STEP ? r1(v - staticLine + ovnLine) : v]));
      return `the static ADD with its DPU lines (${staticLine} ms run locally through the guard) swapped for the OVN ADD's (${ovnLine} ms, the same way, ovn-controller's install included) = ${sum} ms = ${ratio(sum, st)} x the static ADD; ` +
        gapText(o, sum, ovnSteps, Object.keys(expected).length ? expected : { [DPU_STEP]: ovnLine, [PROCESS]: node }, Object.keys(expected).length ? 'expected from the static ADD' : undefined);
    };
    out.push(t('OVN warm ADD p50 / static warm ADD p50 (same OVN testbed, interleaved)', `${o} / ${st} ms`, ratio(o, st), '<=', 1.5, ovnFloor()));
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
    ...(r.ovn ? [row(`${OVN_ROWS.static} ADD`, r.ovn.static.add), row(`${OVN_ROWS.static} DEL`, r.ovn.static.del), row(`${OVN_ROWS.ovn} ADD`, r.ovn.ovn.add), row(`${OVN_ROWS.ovn} DEL`, r.ovn.ovn.del)] : []),
    ...(r.forwarder ? [row(`${FORWARDER_ROW} ADD`, r.forwarder.add), row(`${FORWARDER_ROW} DEL`, r.forwarder.del)] : []),
    ...Object.entries(r.dpuLines ?? {}).flatMap(([name, v]) => [row(`${name}: ADD (${v.lines.add} line(s))`, v.add), row(`${name}: DEL (${v.lines.del} line(s))`, v.del)]),
    ...(r.dpuRoundTrip ? [row(`DPU round trip, plugin transport (\`${r.dpuRoundTrip.command}\`)`, r.dpuRoundTrip.transport), row('DPU round trip, OpenSSH ControlMaster (same command)', r.dpuRoundTrip.openssh)] : []),
    row('dpu-overlay VERSION (cold start)', r.version.dpuOverlay),
    ...(r.snapshotVersion ? [row('dpu-overlay VERSION, V8 snapshot', r.snapshotVersion)] : []),
    row('hello-world SEA VERSION (same build)', r.version.helloSea),
    row('host-device VERSION', r.version.hostDevice),
    '',
    `Peak RSS of one standalone ADD: ${Math.round(r.peakRssKb / 1024)} MiB.`,
    '',
    '| step breakdown (p50 ms) | cold ADD | warm ADD | warm DEL |',
    '| --- | ---: | ---: | ---: |',
    ...Object.keys({ ...r.breakdown.cold, ...r.breakdown.warm, ...r.breakdown.warmDel }).map((k) => `| ${k} | ${r.breakdown.cold[k] ?? ''} | ${r.breakdown.warm[k] ?? ''} | ${r.breakdown.warmDel?.[k] ?? ''} |`),
    '',
    '| burst (concurrent on one host) | ADD wall ms | ADD p50 / max | DEL wall ms | DEL p50 / max | host-device ADD / DEL wall ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...(['warm', 'cold'] as const).flatMap((mode) =>
      r.bursts[mode].map((x) => `| ${mode} ${x.n} | ${x.addWallMs} | ${x.addPerCall.p50} / ${x.addPerCall.max} | ${x.delWallMs} | ${x.delPerCall.p50} / ${x.delPerCall.max} | ${x.hostDevice ? `${x.hostDevice.addWallMs} / ${x.hostDevice.delWallMs}` : ''} |`),
    ),
  ].join('\n') + '\n';
}

export function updateBenchmarksDoc(md: string): void {
  updateBenchmarksSection('latency', md);
}
