/**
 * npm run stress: hostile input, concurrency, crashes and faults, and security against the packaged binary
 * on the emulated testbed, at full size; prints one summary table (and JSON with --json=FILE).
 *
 *   node scripts/run-ts.js test/stress/main.ts [--seed=N] [--inputs=N] [--ops=N]  [--only=fuzz,concurrency,faults,security] [--json=FILE] [--keep]
 *     [--path=both|daemon|standalone] [--violations=FILE] [--only=fuzz --index=N,M] [--replay=FILE[:LINE]]
 *
 * --path (default both): the scenarios run standalone (every config with dpu.daemonSocket "") and then through the
 * daemon path (a daemon per emulated host, every config naming its socket), each on a fresh testbed; the rows say which.
 *
 * --keep leaves the testbed up for inspection. The seed (DPUO_STRESS_SEED or --seed) is printed first: rerun with it to get the same inputs and operations.
 * Every violation is appended, whole (input, timing, timeouts, plugin output, replay tag), as one JSON line to the
 * violation file named in the summary. --replay reruns the recorded fuzz runs of such a file (or only its line LINE,
 * from 1) with exactly their env and stdin, one at a time (recorded runs can name the same container netns);
 * --index reruns generated fuzz inputs by number. Run both with the same
 * DPUO_TESTBED_PREFIX as the recording (the inputs name the testbed's paths).
 * Exit status 1 if any violation was found.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { type PluginPath, pluginPathFrom, PREFIX, removeContainers, requireBinary, site, testbedDown, testbedUp, usePluginPath } from '../testkit/testbed';
import { onViolation, recordViolationsTo, rollup, type RunRecord, seedFrom, type Tally, teardownStressDir, violationsRecorded } from './common';
import { concurrency } from './concurrency';
import { faults } from './faults';
import { fuzz } from './fuzz';
import { security } from './security';

function flag(name: string, fallback: number): number {
  const f = arg(name);
  return f ? Number(f) : fallback;
}

function arg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** One row per scenario (its shapes added in), then its shape rows indented under it. */
function table(tallies: Tally[]): string {
  const head = ['scenario', 'inputs', 'operations', 'faults', 'violations', 'slowest (ms)', 'slowest operation'];
  const cells = (t: Tally, name: string) => [name, String(t.inputs), String(t.operations), String(t.faults), String(t.violations.length), String(t.slowestMs), t.slowestOp.slice(0, 48)];
  const rolled = tallies.map(rollup);
  const rows = rolled.flatMap((t) => [cells(t, t.scenario), ...t.shapes.map((r) => cells(r, `  ${r.scenario}`))]);
  const slowest = rolled.reduce((a, b) => (b.slowestMs > a.slowestMs ? b : a));
  const total = ['total', ...[0, 1, 2, 3].map((i) => String(rolled.reduce((n, t) => n + [t.inputs, t.operations, t.faults, t.violations.length][i]!, 0))), String(slowest.slowestMs), slowest.slowestOp.slice(0, 48)];
  const widths = head.map((h, i) => Math.max(h.length, ...[...rows, total].map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === 6 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(head), rule, ...rows.map(line), rule, line(total)].join('\n');
}

/**
 * The fuzz runs of a violation file (all, or line LINE of FILE:LINE), one per input: recorded runs are rerun
 * verbatim; a failed clean-up DEL names its input, which is generated again from seed and index.
 */
function recordedRuns(spec: string): { seed: number; inputs: number; runs: RunRecord[]; indices: number[] } {
  const m = /^(.*?)(?::(\d+))?$/.exec(spec) as RegExpExecArray;
  const lines = readFileSync(m[1] as string, 'utf8').split('\n').filter(Boolean);
  const picked = m[2] ? [lines[Number(m[2]) - 1] ?? ''] : lines;
  const runs = new Map<number, RunRecord>();
  const indices = new Set<number>();
  let seed: number | undefined;
  let inputs = 0;
  for (const l of picked) {
    const r = JSON.parse(l) as { run?: RunRecord & { stdinFile?: string } };
    const tag = r.run?.tag as { scenario?: string; seed: number; inputs: number; index?: number; cleanup?: string } | undefined;
    if (!r.run || tag?.scenario !== 'fuzz' || tag.index === undefined) continue;
    seed = tag.seed;
    inputs = tag.inputs;
    if (tag.cleanup) indices.add(tag.index);
    else runs.set(tag.index, { ...r.run, stdin: r.run.stdinFile ? readFileSync(r.run.stdinFile, 'utf8') : r.run.stdin });
  }
  if (seed === undefined) throw new Error(`${spec}: no replayable fuzz run in it; the other scenarios replay as a whole: --seed=<its seed> --only=<scenario>`);
  return { seed, inputs, runs: [...runs.values()], indices: [...indices].filter((i) => !runs.has(i)) };
}

/**
 * `testbed.sh up` silently tears down a testbed with the same prefix: another run's (an e2e suite, a second
 * stress) would lose its namespaces and DPUs mid-operation and report violations that no rerun shows.
 */
function refuseSharedTestbed(): void {
  const names = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
  const taken = names.filter((n) => n.startsWith(`${PREFIX}-`));
  if (taken.length) {
    throw new Error(`a testbed with prefix ${PREFIX} is already up (${taken.length} namespaces, e.g. ${taken[0]}): another run is using it, or a killed run left it. Use another DPUO_TESTBED_PREFIX, or remove it with DPUO_TESTBED_PREFIX=${PREFIX} bash test/testkit/testbed.sh down`);
  }
}

async function main(): Promise<number> {
  requireBinary();
  refuseSharedTestbed();
  const replay = arg('replay') ? recordedRuns(arg('replay') as string) : undefined;
  const seed = replay?.seed ?? seedFrom(process.argv, process.env);
  const only = replay ? ['fuzz'] : (arg('only') ?? 'fuzz,concurrency,faults,security').split(',');
  const index = [...(arg('index')?.split(',').map(Number) ?? []), ...(replay?.indices ?? [])];
  const log = (l: string) => process.stderr.write(`stress: ${l}\n`);
  log(replay ? `replaying ${replay.runs.length} recorded fuzz run(s) and ${replay.indices.length} regenerated input(s) of seed ${seed}` : `seed ${seed} (rerun with --seed=${seed})`);
  const violationFile = arg('violations') ?? join(tmpdir(), `dpu-overlay-stress-${seed}-${new Date().toISOString().replace(/[:.]/g, '')}.jsonl`);
  recordViolationsTo(violationFile, seed);
  onViolation((scenario, msg) => log(`VIOLATION [${scenario}] ${msg}`));
  const t0 = Date.now();
  const tallies: Tally[] = [];
  for (const path of pathsFrom(arg('path') ?? (replay ? 'standalone' : 'both'))) {
    log(`--- ${path} path`);
    usePluginPath(path);
    await onePath(path, { seed, only, index, replay, log, tallies });
  }
  const recorded = violationsRecorded();
  const where = recorded?.count ? `violations written to ${recorded.path} (replay the fuzz ones with --replay=${recorded.path})` : 'no violations';
  process.stdout.write(`\ndpu-overlay stress, seed ${seed}, ${Math.round((Date.now() - t0) / 1000)} s\n${table(tallies)}\n${where}\n`);
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify({ seed, violationFile: recorded?.count ? recorded.path : null, tallies: tallies.map(rollup) }, null, 2) + '\n');
  return tallies.some((t) => t.violations.length > 0) ? 1 : 0;
}

function pathsFrom(value: string | undefined): PluginPath[] {
  if (value === undefined || value === 'both') return ['standalone', 'daemon'];
  return [pluginPathFrom(value)];
}

interface PathRun {
  seed: number; only: string[]; index: number[]; replay: ReturnType<typeof recordedRuns> | undefined;
  log: (l: string) => void; tallies: Tally[];
}

/** The chosen scenarios on a fresh testbed for one path; their rows named with it. */
async function onePath(path: PluginPath, o: PathRun): Promise<void> {
  const { seed, only, index, replay, log } = o;
  const tb = testbedUp(flag('vfs', 32), 'a,b,c', 1, { path });
  const tallies: Tally[] = [];
  // `timeout` signals the whole process group and run-ts.js forwards too: a second signal must not kill the teardown
  let tearingDown = false;
  const interrupted = () => {
    if (tearingDown) return;
    tearingDown = true;
    log('interrupted: tearing the testbed down');
    removeContainers();
    teardownStressDir(tb);
    testbedDown();
    process.exit(130);
  };
  process.on('SIGINT', interrupted).on('SIGTERM', interrupted);
  try {
    const A = site(tb, 'a');
    const inputs = replay?.inputs ?? flag('inputs', 10000);
    if (only.includes('fuzz')) tallies.push(await fuzz(tb, A, { seed, inputs, width: replay ? 1 : flag('width', 4), only: index.length ? index : undefined, replay: replay?.runs, progress: log }));
    if (only.includes('concurrency')) tallies.push(await concurrency(tb, { seed, operations: flag('ops', 400), width: flag('cwidth', 6), progress: log }));
    if (only.includes('faults')) tallies.push(await faults(tb, { seed, progress: log }));
    if (only.includes('security')) tallies.push(await security(tb, { progress: log }));
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    for (const t of tallies) o.tallies.push({ ...t, scenario: `${t.scenario} [${path}]` });
    if (process.argv.includes('--keep')) {
      log(`--keep: testbed, containers and ${tb.stateDir} left up for inspection (test/testkit/testbed.sh down to remove)`);
    } else {
      removeContainers();
      teardownStressDir(tb);
      testbedDown();
    }
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`stress: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
