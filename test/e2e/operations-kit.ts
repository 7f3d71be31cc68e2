/** Helpers of the operations suites: scrape the daemon's HTTP endpoint and run dpu-overlay's subcommands on an emulated host. */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { BINARY, type Site } from '../testkit/testbed';

export const METRICS_ADDRESS = '127.0.0.1:9741';

/** A node script printing "<status>\n<body>" of GET url (no curl needed on the machine). */
export function httpGetScript(url: string): string {
  return `require('http').get(${JSON.stringify(url)},(r)=>{let b='';r.setEncoding('utf8');r.on('data',(d)=>b+=d);r.on('end',()=>process.stdout.write(r.statusCode+'\\n'+b))}).on('error',(e)=>{process.stdout.write('0\\n'+e.message)})`;
}

export function parseHttpGet(stdout: string): { code: number; body: string } {
  const nl = stdout.indexOf('\n');
  return { code: Number(stdout.slice(0, nl)), body: stdout.slice(nl + 1) };
}

/** GET path from the daemon's metrics address inside the host's netns: status code and body. */
export function httpGet(s: Site, path: string, address = METRICS_ADDRESS): { code: number; body: string } {
  const r = spawnSync('ip', ['netns', 'exec', s.hostNetns, process.execPath, '-e', httpGetScript(`http://${address}${path}`)], { encoding: 'utf8', timeout: 30000 });
  return parseHttpGet(r.stdout);
}

/** Prometheus text format: 'name{a="x",b="y"}' (labels sorted) -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

/** The value of a series, labels given in any order; undefined when absent. */
export function series(metrics: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
  return metrics.get(key);
}

/** Series of name whose labels include these (e.g. every step of a command). */
export function seriesMatching(metrics: Map<string, number>, name: string, labels: Record<string, string>): Array<[string, number]> {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return [...metrics].filter(([k]) => k.startsWith(`${name}{`) && want.every((w) => k.includes(w)));
}

/** dpu-overlay with args in the host's netns. */
export function runBinary(s: Site, args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', s.hostNetns, BINARY, ...args], { encoding: 'utf8', timeout: 120000, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Writes a network config file (as /etc/cni/net.d holds it) for doctor. */
export function writeConfig(path: string, conf: Record<string, unknown>): string {
  writeFileSync(path, JSON.stringify(conf, null, 2), { mode: 0o644 });
  return path;
}

export interface DoctorOutcome {
  status: number;
  ok: boolean;
  checks: Array<{ level: 'PASS' | 'WARN' | 'FAIL'; check: string; detail: string; fix?: string }>;
}

export function doctorJson(s: Site, args: string[], env: Record<string, string> = {}): DoctorOutcome {
  const r = runBinary(s, ['doctor', '--json', ...args], env);
  const parsed = JSON.parse(r.stdout) as Omit<DoctorOutcome, 'status'>;
  return { status: r.status, ...parsed };
}

export const failures = (d: DoctorOutcome) => d.checks.filter((c) => c.level === 'FAIL');
