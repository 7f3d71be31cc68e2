// The scale bench's results: statistics, the 100 / 1,000-host arithmetic, markdown and the docs/benchmarks.md block.
import { updateBenchmarksSection } from '../docs-section';
import type { Mode } from './dpu';

export interface Stats { n: number; p50: number; p99: number; max: number }

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? NaN) };
}

export interface DpuFigures {
  dpu: string;
  tunnelPorts: number;
  flows: number;
  /** OVN mode only: ovn-controller's CPU over the ADD phase and over the idle window, ms and % of one core */
  ovnControllerCpu?: { addPhaseMs: number; addPhasePct: number; idleMs: number; idlePct: number; idleWindowS: number };
}

export interface Phase {
  mode: Mode;
  vnis: number;
  /** VNIs that got ports: the VFs per site are spread over the VNIs round-robin */
  vnisWithPorts: number;
  adds: number;
  addWallMs: number;
  add: Stats;
  del: Stats;
  /** the DPU step of each ADD (daemon round trip; in OVN mode it includes the wait for ovn-installed) */
  dpuStep: Stats;
  /** OVN mode: ovn-controller's "Claiming lport" to "Setting lport ... ovn-installed", from its log */
  claimToInstalled?: Stats;
  perDpu: DpuFigures[];
}

export interface Projection {
  hosts: number;
  vnisPerHost: number;
  staticTunnelPortsPerDpu: number;
  ovnTunnelPortsPerDpu: number;
  staticArpCopies: number;
  ovnArpCopiesVniOnAllHosts: number;
  ovnArpCopiesVniOn10Hosts: number;
}

export interface Report {
  date: string;
  command: string;
  machine: { cores: number; cpu: string; node: string };
  path: string;
  sites: string[];
  vfsPerSite: number;
  phases: Phase[];
  ratios: Array<{ vnis: number; ovnWarmAddP50: number; staticWarmAddP50: number; ratio: number; goal: 1.5; met: boolean }>;
  projections: { formulas: string[]; rows: Projection[] };
  leftovers: Record<string, number>;
  notes: string[];
}

export const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export const FORMULAS = [
  'static tunnel ports per DPU = (hosts - 1) x VNIs with a port on the DPU (one VXLAN port per remote VTEP on every VNI bridge)',
  'OVN tunnel ports per DPU = hosts - 1 (one Geneve port per remote chassis, whatever the number of switches)',
  'static broadcast copies per ARP = hosts - 1 (head-end replication to every remote VTEP of the VNI mesh, port or not)',
  'OVN broadcast copies per ARP = chassis with a port on that switch - 1 (the sender excluded)',
];

export function projections(vnisPerHost: number): Projection[] {
  return [3, 100, 1000].map((hosts) => ({
    hosts,
    vnisPerHost,
    staticTunnelPortsPerDpu: (hosts - 1) * vnisPerHost,
    ovnTunnelPortsPerDpu: hosts - 1,
    staticArpCopies: hosts - 1,
    ovnArpCopiesVniOnAllHosts: hosts - 1,
    ovnArpCopiesVniOn10Hosts: Math.min(hosts, 10) - 1,
  }));
}

const avg = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)) * 10) / 10;

export function markdown(r: Report): string {
  const find = (mode: Mode, vnis: number) => r.phases.find((p) => p.mode === mode && p.vnis === vnis);
  const vniCounts = [...new Set(r.phases.map((p) => p.vnis))];
  const out = [
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, ${r.date}. Emulated: ${r.sites.length} DPUs (sites ${r.sites.join(', ')}) x ${r.vfsPerSite} VFs, all on this machine.`,
    `Command: \`${r.command}\`. ADD path: ${r.path}.`,
    '',
    '| VNIs (with ports) | mode | ADD p50 / p99 ms | DPU step p50 / p99 ms | claim to ovn-installed p50 / p99 ms | DEL p50 / p99 ms | tunnel ports per DPU | OpenFlow flows per DPU | ovn-controller CPU, ADD phase / idle |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const n of vniCounts) {
    for (const mode of ['ovn', 'static'] as const) {
      const p = find(mode, n);
      if (!p) continue;
      const cpu = p.perDpu.map((d) => d.ovnControllerCpu).filter((c) => c !== undefined);
      const cpuCell = cpu.length ? `${avg(cpu.map((c) => c.addPhasePct))} % / ${avg(cpu.map((c) => c.idlePct))} %` : '';
      const c2i = p.claimToInstalled && p.claimToInstalled.n ? `${p.claimToInstalled.p50} / ${p.claimToInstalled.p99}` : '';
      out.push(`| ${n} (${p.vnisWithPorts}) | ${mode} | ${p.add.p50} / ${p.add.p99} | ${p.dpuStep.p50} / ${p.dpuStep.p99} | ${c2i} | ${p.del.p50} / ${p.del.p99} | ${p.perDpu.map((d) => d.tunnelPorts).join(', ')} | ${p.perDpu.map((d) => d.flows).join(', ')} | ${cpuCell} |`);
    }
  }
  out.push('', '| VNIs | OVN warm ADD p50 / static warm ADD p50 | goal | met |', '| --- | ---: | ---: | --- |');
  for (const x of r.ratios) out.push(`| ${x.vnis} | ${x.ovnWarmAddP50} / ${x.staticWarmAddP50} = ${x.ratio} | <= ${x.goal} | ${x.met ? 'yes' : 'no'} |`);
  out.push('', `At scale, by arithmetic (${r.projections.rows[0]?.vnisPerHost} VNIs with a port on every host, as in the largest run above):`, '');
  out.push('| hosts | tunnel ports per DPU, static / OVN | broadcast copies per ARP, static / OVN (VNI on every host) / OVN (VNI on 10 hosts) |', '| ---: | ---: | ---: |');
  for (const p of r.projections.rows) out.push(`| ${p.hosts} | ${p.staticTunnelPortsPerDpu} / ${p.ovnTunnelPortsPerDpu} | ${p.staticArpCopies} / ${p.ovnArpCopiesVniOnAllHosts} / ${p.ovnArpCopiesVniOn10Hosts} |`);
  out.push('', ...r.projections.formulas.map((f) => `- ${f}`));
  if (r.notes.length) out.push('', ...r.notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}

export function updateBenchmarksDoc(md: string): void {
  updateBenchmarksSection('scale', md);
}
