/**
 * Shared pieces of the stress scenarios (fuzz, concurrency, faults, security): the testbed, seeded randomness,
 * forced-command wrappers on the emulated DPUs, host and DPU snapshots, the per-scenario tally with one row
 * per input shape, and the violation file.
 * Used by the jest e2e suite (short, seeded) and by `npm run stress` (full size, prints the summary table).
 *
 * Adding a probe (a self-contained check group) is one line. Write
 *
 *   async function probeDecoyVeth(tb: Testbed, t: Tally): Promise<void> {
 *     const out = await runPlugin(site(tb, 'a'), conf, { command: 'ADD', containerId: 'decoy-1', netns });
 *     timed(t, 'ADD (decoy veth)', out.ms);   // one operation; tracks the slowest
 *     t.faults += 1;                           // plain counters: inputs, operations, faults
 *     expectCniError(t, 'decoy veth', out, 7); // or expectSuccess(t, what, out), or violation(t, msg)
 *   }
 *
 * and add `['decoy veth', probeDecoyVeth],` to SECURITY_PROBES (security.ts) or FAULT_PROBES (faults.ts).
 * runProbes gives each entry its own Tally, printed as its own row under the scenario; a probe that throws is
 * a violation of that row and the next probe still runs. A new fuzz input shape is a new Mutation kind in
 * fuzz.ts (union member, arbitrary, buildCase branch); every kind gets its own row by itself.
 *
 * Violations: violation(t, msg, evidence) also counts in every enclosing tally (so a scenario's `violations`
 * lists its rows' too) and, under npm run stress, appends one JSON line to the violation file (see
 * recordViolationsTo). expectCniError and expectSuccess attach the plugin run (env, stdin, start, duration,
 * timeouts, load, exit, stdout, stderr and the replay tag given to runPlugin), so a flake can be diagnosed and
 * replayed (`npm run stress -- --replay=FILE`).
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BINARY, type CniOutcome, dpuExec, envFor, nodeEnv, outcome, PREFIX, runInNetns, sh, type Site, TESTBED, type Testbed } from '../testkit/testbed';

/** What one scenario, or one shape row of it, found; `violations` must stay empty. */
export interface Tally {
  scenario: string;
  inputs: number;
  operations: number;
  faults: number;
  violations: string[];
  slowestMs: number;
  slowestOp: string;
  /** One row per input shape (probe group, mutation kind), in order of first use. */
  shapes: Tally[];
}

/** A self-contained check group; see the top of this file. */
export type Probe = (tb: Testbed, t: Tally) => Promise<void>;

const parents = new WeakMap<Tally, Tally>();

export function newTally(scenario: string): Tally {
  return { scenario, inputs: 0, operations: 0, faults: 0, violations: [], slowestMs: 0, slowestOp: '', shapes: [] };
}

/** The row of `t` for one input shape, created on first use. */
export function shape(t: Tally, name: string): Tally {
  const found = t.shapes.find((x) => x.scenario === name);
  if (found) return found;
  const row = newTally(name);
  parents.set(row, t);
  t.shapes.push(row);
  return row;
}

/** `t` with its shape rows added in (violations already are: violation() records them in every enclosing tally). */
export function rollup(t: Tally): Tally {
  const rows = t.shapes.map(rollup);
  const slowest = rows.reduce((a, b) => (b.slowestMs > a.slowestMs ? b : a), t);
  const sum = (k: 'inputs' | 'operations' | 'faults') => rows.reduce((n, r) => n + r[k], t[k]);
  return { ...t, inputs: sum('inputs'), operations: sum('operations'), faults: sum('faults'), slowestMs: slowest.slowestMs, slowestOp: slowest.slowestOp, shapes: rows };
}

/** Runs each probe on its own row of `t`; a probe that throws is a violation of its row. */
export async function runProbes(tb: Testbed, t: Tally, probes: ReadonlyArray<readonly [string, Probe]>, progress?: (line: string) => void): Promise<void> {
  for (const [name, probe] of probes) {
    const row = shape(t, name);
    try {
      await probe(tb, row);
    } catch (err) {
      violation(row, `${name}: the probe threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
    progress?.(`${t.scenario}: ${name}: ${row.violations.length} violations`);
  }
}

export function timed(t: Tally, what: string, ms: number): void {
  t.operations += 1;
  if (ms > t.slowestMs) {
    t.slowestMs = ms;
    t.slowestOp = what;
  }
}

/** Everything known about one plugin run, written whole into a violation record. */
export interface RunRecord {
  hostNetns: string;
  binary: string;
  env: Record<string, string>;
  stdin: string;
  startedAt: string;
  ms: number;
  /** The harness kills the run (SIGKILL) after this long. */
  killAfterMs: number;
  /** The config's dpu.timeoutMs (SSH handshake and each DPU command), if stdin has one. */
  dpuTimeoutMs?: number;
  /** loadavg (1 min) at start and end. */
  load: [number, number];
  status: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** What the caller passed to runPlugin to find the input again (scenario, seed, index, expectation, ...). */
  tag?: Record<string, unknown>;
}

/** Extra facts for a violation record; `run` is attached by expectCniError/expectSuccess. */
export interface Evidence {
  run?: RunRecord;
  [key: string]: unknown;
}

let reportViolation: ((scenario: string, msg: string) => void) | undefined;
let violationFile: { path: string; seed: number; count: number } | undefined;

/** npm run stress prints each violation as it is found. */
export function onViolation(fn: (scenario: string, msg: string) => void): void {
  reportViolation = fn;
}

/** From now on every violation is appended, whole, as one JSON line to `path` (created on the first one). */
export function recordViolationsTo(path: string, seed: number): void {
  violationFile = { path, seed, count: 0 };
}

export function violationsRecorded(): { path: string; count: number } | undefined {
  return violationFile && { path: violationFile.path, count: violationFile.count };
}

/** stdin of more than 1 MiB goes to a file beside the violation file, so each record stays one readable line. */
const INLINE_STDIN = 1024 * 1024;

function writeRecord(scenario: string, row: string, msg: string, ev: Evidence): void {
  if (!violationFile) return;
  violationFile.count += 1;
  const run = ev.run && ev.run.stdin.length > INLINE_STDIN ? { ...ev.run, stdin: undefined, stdinFile: `${violationFile.path}.${violationFile.count}.stdin` } : ev.run;
  if (run && 'stdinFile' in run) writeFileSync(run.stdinFile, ev.run?.stdin ?? '');
  const record = { at: new Date().toISOString(), seed: violationFile.seed, scenario, row, msg, ...ev, run };
  appendFileSync(violationFile.path, JSON.stringify(record) + '\n');
}

export function violation(t: Tally, msg: string, ev: Evidence = {}): void {
  const chain: Tally[] = [];
  for (let x: Tally | undefined = t; x; x = parents.get(x)) chain.push(x);
  const root = chain.at(-1) as Tally;
  reportViolation?.(chain.map((x) => x.scenario).reverse().join(': '), msg);
  writeRecord(root.scenario, t.scenario, msg, ev);
  for (const x of chain) if (x.violations.length < 200) x.violations.push(msg);
}

/** mulberry32: small, fast, reproducible from a 32-bit seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

/** Everything a scenario creates lives under <testbed state>/stress and is removed by teardownStressDir. */
export function stressDir(tb: Testbed): string {
  const dir = join(tb.stateDir, 'stress');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function teardownStressDir(tb: Testbed): void {
  rmSync(join(tb.stateDir, 'stress'), { recursive: true, force: true });
}

/** A fresh ed25519 key pair in the stress dir. */
export function newKey(tb: Testbed, name: string): string {
  const key = join(stressDir(tb), name);
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${PREFIX}-${name}`, '-f', key]);
  return key;
}

/** Authorizes `key` on every emulated DPU with a forced command (sshd runs it with SSH_ORIGINAL_COMMAND set). */
export function authorizeForced(tb: Testbed, key: string, command: string): void {
  const [type, blob] = readFileSync(`${key}.pub`, 'utf8').trim().split(/\s+/);
  const file = join(tb.stateDir, 'authorized_keys');
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l && !l.includes(blob as string));
  lines.push(`command="${command}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${type} ${blob} ${PREFIX}-stress`);
  writeFileSync(file, lines.join('\n') + '\n');
}

function writeScript(path: string, body: string): string {
  writeFileSync(path, body);
  chmodSync(path, 0o755);
  return path;
}

/**
 * A recording forced command: appends each command line (NUL-terminated) to a log, then runs it.
 * `sleepSeconds` makes a slow DPU.
 */
export function forcedWrapper(tb: Testbed, name: string, sleepSeconds = 0): { key: string; log: string } {
  const dir = stressDir(tb);
  const log = join(dir, `${name}.commands`);
  writeFileSync(log, '');
  // The plugin asks for "sh -s" and sends its command line on stdin: record that line (printf is a builtin,
  // so a line longer than one execve argument still passes).
  const script = writeScript(join(dir, `${name}.sh`), [
    '#!/bin/sh',
    'line=$SSH_ORIGINAL_COMMAND',
    'if [ "$line" = "sh -s" ]; then line=$(cat); fi',
    `printf '%s\\0' "$line" >>'${log}'`,
    sleepSeconds > 0 ? `sleep ${sleepSeconds}` : '',
    `printf '%s\\n' "$line" | /bin/sh -s`,
    '',
  ].join('\n'));
  const key = newKey(tb, `${name}_ed25519`);
  authorizeForced(tb, key, script);
  return { key, log };
}

export function recordedCommands(log: string): string[] {
  return existsSync(log) ? readFileSync(log, 'utf8').split('\0').filter(Boolean) : [];
}

/** An env value meaning "leave this variable out" (NUL can be in no real environment value). */
export const UNSET = '\u0000unset';

export interface RunOptions {
  /** Overrides of the CNI_* variables; UNSET removes one. */
  env?: Record<string, string>;
  /** Raw stdin instead of JSON.stringify(conf). */
  stdin?: string;
  /** The harness kills the plugin after this long (default 60 s). */
  timeoutMs?: number;
  /** Kept in the run record: what a violation file reader needs to find this input again. */
  tag?: Record<string, unknown>;
}

export interface Outcome extends CniOutcome {
  signal: NodeJS.Signals | null;
  run: RunRecord;
}

/** The packaged plugin inside an emulated host's netns, asynchronously (scenarios run several at once). */
export async function runPlugin(s: Site, conf: unknown, call: { command: string; containerId?: string; netns?: string; ifname?: string; args?: string }, o: RunOptions = {}): Promise<Outcome> {
  const env = envFor({ ...call, env: o.env }, typeof conf === 'object' && conf !== null ? nodeEnv(s, conf as Record<string, unknown>) : nodeEnv(s));
  for (const [k, v] of Object.entries(env)) if (v === UNSET) delete env[k];
  return runRecorded(s.hostNetns, env, o.stdin ?? JSON.stringify(conf), o.timeoutMs ?? 60000, o.tag);
}

function dpuTimeout(stdin: string): number | undefined {
  const m = /"timeoutMs":(\d+)/.exec(stdin.slice(0, 64 * 1024));
  return m ? Number(m[1]) : undefined;
}

/** Runs the plugin with exactly this environment and stdin (also what --replay does with a recorded run). */
export async function runRecorded(hostNetns: string, env: Record<string, string>, stdin: string, killAfterMs: number, tag?: Record<string, unknown>): Promise<Outcome> {
  const startedAt = new Date().toISOString();
  const load0 = loadavg()[0] as number;
  const r = await runInNetns(hostNetns, BINARY, [], env, stdin, killAfterMs);
  const run: RunRecord = {
    hostNetns, binary: BINARY, env, stdin, startedAt, ms: Math.round(r.ms), killAfterMs, dpuTimeoutMs: dpuTimeout(stdin), load: [load0, loadavg()[0] as number],
    status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ...(tag ? { tag } : {}),
  };
  return { ...outcome(r), signal: r.signal, run };
}

/** CNI's "try again later": a DPU that does not answer within dpu.timeoutMs, which a loaded machine can cause. */
export const TRY_AGAIN = 11;

/**
 * Reruns `run` while it answers code 11, at most `tries` times in all, as a runtime would; `before` runs before
 * each retry (a DEL after a failed ADD). Only scenarios that do not inject DPU faults themselves use it.
 */
export async function retryTryAgain(run: () => Promise<Outcome>, before?: () => Promise<unknown>, tries = 3): Promise<Outcome> {
  let out = await run();
  for (let k = 1; k < tries && out.json?.code === TRY_AGAIN; k++) {
    await before?.();
    out = await run();
  }
  return out;
}

/** Runs `jobs` with at most `width` at once, in order of start; each job is told its worker (0..width-1), which runs one job at a time. */
export async function parallel<T>(width: number, jobs: Array<(worker: number) => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (_: unknown, w: number) => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await (jobs[i] as (worker: number) => Promise<T>)(w);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker));
  return results;
}

const STACK_TRACE = /\n\s+at [^\n]+\(|unexpected error|Error: [^\n]*\n\s+at /;

/** Checks that an outcome is exactly one CNI error object with `code`, and no stack trace anywhere. */
export function expectCniError(t: Tally, what: string, out: Outcome, code: number | readonly number[]): void {
  const codes = typeof code === 'number' ? [code] : code;
  const ev: Evidence = { expected: { codes }, run: out.run };
  const bad = (msg: string) => violation(t, msg, ev);
  const lines = out.stdout.split('\n').filter((l) => l !== '');
  if (out.signal) return bad(`${what}: killed by ${out.signal} after ${out.ms} ms`);
  if (lines.length !== 1 || !out.json) return bad(`${what}: stdout is not one JSON object: ${JSON.stringify(out.stdout.slice(0, 200))}`);
  const keys = Object.keys(out.json).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k));
  if (keys.length) bad(`${what}: error object has extra keys ${keys.join(',')}`);
  if (!codes.includes(out.json.code as number)) bad(`${what}: code ${String(out.json.code)} (want ${codes.join('|')}): ${String(out.json.msg).slice(0, 200)}`);
  if (typeof out.json.msg !== 'string' || out.json.msg === '') bad(`${what}: error without msg`);
  if (out.status !== 1) bad(`${what}: exit status ${out.status} for an error`);
  if (STACK_TRACE.test(out.stdout) || STACK_TRACE.test(out.stderr)) bad(`${what}: stack trace in output: ${out.stderr.slice(0, 300)}`);
}

export function expectSuccess(t: Tally, what: string, out: Outcome): boolean {
  if (out.status === 0 && !out.signal) return true;
  violation(t, `${what}: failed (${out.signal ?? out.status}): ${out.stdout.slice(0, 300)} ${out.stderr.slice(0, 300)}`, { expected: 'success', run: out.run });
  return false;
}

// ---------------------------------------------------------------- host and DPU state

interface IpLink { ifname: string; address?: string; mtu?: number; operstate?: string }

/** The host netns links (name, MAC, MTU) and the plugin's and IPAM's state files: must be equal before and after. */
export function hostSnapshot(s: Site, dirs: string[]): string {
  const links = (JSON.parse(sh('ip', ['-n', s.hostNetns, '-j', 'link', 'show'])) as IpLink[])
    .map((l) => `${l.ifname} ${l.address ?? ''} ${l.mtu ?? ''}`)
    .sort();
  const files = dirs.flatMap((d) => listTree(d).map((f) => `${d}/${f}`));
  return [...links, ...files].join('\n');
}

export function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => !/(^|\/)(\.|lock$|last_reserved_ip)/.test(f) && statSync(join(dir, f)).isFile())
    .sort();
}

export function diffLines(before: string, after: string): string {
  const a = new Set(before.split('\n'));
  const b = new Set(after.split('\n'));
  return [...[...a].filter((x) => !b.has(x)).map((x) => `-${x}`), ...[...b].filter((x) => !a.has(x)).map((x) => `+${x}`)].join(' ').slice(0, 600);
}

export interface OvsPort { uuid: string; name: string; bridge: string; ids: Record<string, string> }

/** Container ports (external_ids dpu-overlay.role=container) and bridges on one DPU. */
export function ovsState(site: string): { bridges: string[]; ports: OvsPort[] } {
  const bridges = dpuExec(site, 'ovs-vsctl', 'list-br').split('\n').filter(Boolean).sort();
  const rows = JSON.parse(dpuExec(site, 'ovs-vsctl', '-f', 'json', '--columns=_uuid,name,external_ids', 'find', 'Port', 'external_ids:dpu-overlay.role=container')) as { data: unknown[][] };
  const ports = rows.data.map((r) => {
    const ids = Object.fromEntries(((r[2] as [string, Array<[string, string]>])[1] ?? []) as Array<[string, string]>);
    const name = String(r[1]);
    return { uuid: (r[0] as [string, string])[1], name, bridge: portBridge(site, name), ids };
  });
  return { bridges, ports };
}

function portBridge(site: string, port: string): string {
  const r = spawnSync('bash', [TESTBED, 'dpu-exec', site, 'ovs-vsctl', 'port-to-br', port], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Every string anywhere in the DPU's OVS database, to look for hostile values. */
export function ovsDump(site: string): string {
  return dpuExec(site, 'ovsdb-client', 'dump');
}

export function seedFrom(argv: string[], env: NodeJS.ProcessEnv): number {
  const flag = argv.find((a) => a.startsWith('--seed='));
  const raw = flag ? flag.slice('--seed='.length) : env.DPUO_STRESS_SEED;
  const n = raw === undefined || raw === '' ? Math.floor(Math.random() * 2 ** 31) : Number(raw);
  if (!Number.isInteger(n)) throw new Error(`seed must be an integer, got ${raw}`);
  return n;
}
