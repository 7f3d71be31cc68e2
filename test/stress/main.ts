/**
 * npm run stress: hostile input, concurrency, crashes and faults, and security against the packaged binary
 * on the emulated testbed, at full size; prints one summary table (and JSON with --json=FILE).
 *
 *   node scripts/run-ts.js test/stress/main.ts [--seed=N] [--inputs=N] [--ops=N]  [--only=fuzz,concurrency,faults,security] [--json=FILE] [--keep]
 *
 * --keep leaves the testbed up for inspection. The seed (DPUO_STRESS_SEED or --seed) is printed first: rerun with it to get the same inputs and operations.
 * Exit status 1 if any violation was found.
 */
import { writeFileSync } from 'node:fs';
import { removeContainers, requireBinary, site, testbedDown, testbedUp } from '../e2e/helpers';
import { onViolation, seedFrom, type Tally, teardownStressDir } from './common';
import { concurrency } from './concurrency';
import { faults } from './faults';
import { fuzz } from './fuzz';
import { security } from './security';

function flag(name: string, fallback: number): number {
  const f = process.argv.find((a) => a.startsWith(`--${name}=`));
  return f ? Number(f.slice(name.length + 3)) : fallback;
}

function table(tallies: Tally[]): string {
  const head = ['scenario', 'inputs', 'operations', 'faults', 'violations', 'slowest (ms)', 'slowest operation'];
  const rows = tallies.map((t) => [t.scenario, String(t.inputs), String(t.operations), String(t.faults), String(t.violations.length), String(t.slowestMs), t.slowestOp.slice(0, 48)]);
  const slowest = tallies.reduce((a, b) => (b.slowestMs > a.slowestMs ? b : a));
  rows.push(['total', ...[0, 1, 2, 3].map((i) => String(tallies.reduce((n, t) => n + [t.inputs, t.operations, t.faults, t.violations.length][i]!, 0))), String(slowest.slowestMs), slowest.slowestOp.slice(0, 48)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 || i === 6 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(0, -1).map(line), widths.map((w) => '-'.repeat(w)).join('  '), line(rows.at(-1)!)].join('\n');
}

async function main(): Promise<number> {
  requireBinary();
  const seed = seedFrom(process.argv, process.env);
  const only = (process.argv.find((a) => a.startsWith('--only='))?.slice(7) ?? 'fuzz,concurrency,faults,security').split(',');
  const log = (l: string) => process.stderr.write(`stress: ${l}\n`);
  log(`seed ${seed} (rerun with --seed=${seed})`);
  onViolation((scenario, msg) => log(`VIOLATION [${scenario}] ${msg}`));
  const t0 = Date.now();
  const tb = testbedUp(flag('vfs', 32), 'a,b,c');
  const tallies: Tally[] = [];
  const interrupted = () => {
    log('interrupted: tearing the testbed down');
    removeContainers();
    teardownStressDir(tb);
    testbedDown();
    process.exit(130);
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    const A = site(tb, 'a');
    if (only.includes('fuzz')) tallies.push(await fuzz(tb, A, { seed, inputs: flag('inputs', 10000), width: flag('width', 4), progress: log }));
    if (only.includes('concurrency')) tallies.push(await concurrency(tb, { seed, operations: flag('ops', 400), width: flag('cwidth', 6), progress: log }));
    if (only.includes('faults')) tallies.push(await faults(tb, { seed, progress: log }));
    if (only.includes('security')) tallies.push(await security(tb, { progress: log }));
  } finally {
    if (process.argv.includes('--keep')) {
      log(`--keep: testbed, containers and ${tb.stateDir} left up for inspection (test/e2e/testbed.sh down to remove)`);
    } else {
      removeContainers();
      teardownStressDir(tb);
      testbedDown();
    }
  }
  process.stdout.write(`\ndpu-overlay stress, seed ${seed}, ${Math.round((Date.now() - t0) / 1000)} s\n${table(tallies)}\n`);
  const json = process.argv.find((a) => a.startsWith('--json='))?.slice(7);
  if (json) writeFileSync(json, JSON.stringify({ seed, tallies }, null, 2) + '\n');
  return tallies.some((t) => t.violations.length > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`stress: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
