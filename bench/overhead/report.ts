/** Results: the JSON document, a markdown table and the Fig. 4 chart (vega-lite, rendered to SVG headlessly). */
import type { ModeName } from './modes';
import type { Sample } from './measure';

export interface Results {
  tool: 'dpu-overlay bench overhead';
  command: string;
  environment: {
    kind: 'emulated' | 'real';
    description: string;
    notes: string[];
    /** how each mode was built in this environment */
    realisation: Partial<Record<ModeName, string>>;
    hostCores: number[];
    dpuCores: number[];
  };
  params: { modes: ModeName[]; pairs: number[]; seconds: number; iperfBuffer: string };
  startedAt: string;
  finishedAt: string;
  samples: Sample[];
}

export const MODE_LABEL: Record<ModeName, string> = {
  host: 'host-to-host',
  'host-overlay': 'host overlay (bridge+VXLAN on host)',
  dpu: 'DPU offload (dpu-overlay)',
};

const fmt = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function markdownTable(r: Results): string {
  const lines = [
    `Environment: ${r.environment.description}`,
    '',
    ...Object.entries(r.environment.realisation).map(([m, how]) => `- ${m}: ${how}`),
    ...r.environment.notes.map((n) => `- ${n}`),
    '',
    `iperf3 ${r.params.seconds} s per sample, ${r.params.iperfBuffer} buffers; counters of host core(s) ${r.environment.hostCores.join(',')} only.`,
    '',
    '| mode | pairs | throughput (Gbit/s) | hogs\' user CPU (%) | host %usr | interrupts / Gbit | ctx switches / Gbit | NET_RX / Gbit | NET_TX / Gbit |' +
      (r.environment.dpuCores.length ? ' DPU core busy (%) |' : ''),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|' + (r.environment.dpuCores.length ? '---:|' : ''),
  ];
  for (const s of r.samples) {
    lines.push(
      `| ${s.mode} | ${s.pairs} | ${fmt(s.throughputGbps, 2)} | ${fmt(s.host.hogShare * 100, 1)} | ${fmt(s.host.userShare * 100, 1)} | ` +
        `${fmt(s.perGbit.interrupts, 0)} | ${fmt(s.perGbit.contextSwitches, 0)} | ${fmt(s.perGbit.netRxSoftirqs, 0)} | ${fmt(s.perGbit.netTxSoftirqs, 0)} |` +
        (s.dpuCores ? ` ${fmt(s.dpuCores.busyShare * 100, 1)} |` : ''),
    );
  }
  return `${lines.join('\n')}\n`;
}

const PANELS = [
  { field: 'userCpu', title: '(a) User CPU left to the hogs (%)' },
  { field: 'interruptsPerGbit', title: '(b) Interrupts per Gbit' },
  { field: 'throughputGbps', title: '(c) Throughput (Gbit/s)' },
  { field: 'contextSwitchesPerGbit', title: '(d) Context switches per Gbit' },
] as const;

/** The vega-lite spec of the paper's Fig. 4: four panels against container pairs, one line per mode. */
export function fig4Spec(r: Results): Record<string, unknown> {
  const values = r.samples.map((s) => ({
    mode: MODE_LABEL[s.mode],
    pairs: s.pairs,
    userCpu: s.host.hogShare * 100,
    interruptsPerGbit: s.perGbit.interrupts,
    throughputGbps: s.throughputGbps,
    contextSwitchesPerGbit: s.perGbit.contextSwitches,
  }));
  const env = r.environment.kind === 'emulated' ? 'EMULATED testbed (netns, one host core)' : 'real hosts';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Host overhead of container overlay networking (cf. paper Fig. 4)', subtitle: `${env}; iperf3 ${r.params.seconds} s, ${r.params.iperfBuffer} buffers, stress on every host core` },
    data: { values },
    columns: 2,
    concat: PANELS.map((p) => ({
      title: p.title,
      width: 260,
      height: 170,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'pairs', type: 'ordinal', title: 'container pairs', sort: 'ascending', axis: { labelAngle: 0 } },
        y: { field: p.field, type: 'quantitative', aggregate: 'mean', title: null, scale: { zero: true } },
        color: { field: 'mode', type: 'nominal', title: null, sort: Object.values(MODE_LABEL) },
      },
    })),
    config: { legend: { orient: 'bottom', labelLimit: 0 }, font: 'sans-serif' },
  };
}

interface VegaLite {
  compile(spec: unknown): { spec: unknown };
}
interface Vega {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, opts: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}

/** vega 6 and vega-lite 6 are ES modules only: import() them (the esbuild bundle keeps import() as is). */
function importEsm(name: string): Promise<unknown> {
  return import(name);
}

export async function fig4Svg(r: Results): Promise<string> {
  const vl = (await importEsm('vega-lite')) as VegaLite;
  const vega = (await importEsm('vega')) as Vega;
  const view = new vega.View(vega.parse(vl.compile(fig4Spec(r)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export const README_BEGIN = '<!-- overhead-results:begin (written by npm run bench:overhead -- --readme docs/benchmarks.md) -->';
export const README_END = '<!-- overhead-results:end -->';

/** Replaces the results block of a README with this run's command, table and chart (`chartPath` relative to the README). */
export function readmeWithResults(readme: string, r: Results, chartPath: string): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) throw new Error(`the README has no results block (${README_BEGIN} ... ${README_END})`);
  const block = [
    README_BEGIN,
    '',
    `Made by \`${r.command}\` (${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC):`,
    '',
    markdownTable(r).trimEnd(),
    '',
    `![Host overhead, four panels as the paper's Fig. 4](${chartPath})`,
    '',
    README_END,
  ].join('\n');
  return readme.slice(0, begin) + block + readme.slice(end + README_END.length);
}
