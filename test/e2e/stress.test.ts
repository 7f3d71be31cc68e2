/**
 * The stress scenarios (test/stress/*) at CI size, seeded: hostile input, concurrency, crashes and faults,
 * security. `npm run stress` runs them at full size and prints the summary table.
 * DPUO_STRESS_SEED picks the seed (default fixed, so CI is reproducible); it is printed either way. Violations
 * are also written whole to a JSONL file (path printed), replayable with `npm run stress -- --replay=FILE`.
 */
import { pluginPath, removeContainers, requireBinary, site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordViolationsTo, rollup, teardownStressDir, type Tally } from '../stress/common';
import { concurrency } from '../stress/concurrency';
import { faults } from '../stress/faults';
import { fuzz } from '../stress/fuzz';
import { security } from '../stress/security';

jest.setTimeout(600000);

// Run by both jest projects (e2e standalone, e2e-daemon through the daemon path). The second pass is smaller where
// the path changes little (input validation comes first on both) to keep CI within its time.
const daemonPass = pluginPath() === 'daemon';
const INPUTS = daemonPass ? 100 : 300;
const OPERATIONS = daemonPass ? 100 : 150;

const seed = Number(process.env.DPUO_STRESS_SEED ?? 20261126);
const violationFile = join(tmpdir(), `dpu-overlay-stress-e2e-${seed}-${process.pid}.jsonl`);
let tb: Testbed;

beforeAll(() => {
  requireBinary();
  process.stderr.write(`stress suite: seed ${seed} (DPUO_STRESS_SEED=${seed} to reproduce); violations, if any, in ${violationFile}\n`);
  recordViolationsTo(violationFile, seed);
  tb = testbedUp(8, 'a,b,c');
});

afterAll(() => {
  removeContainers();
  if (tb) teardownStressDir(tb);
  testbedDown();
});

function report(tally: Tally): void {
  const t = rollup(tally);
  const rows = t.shapes.map((r) => `${r.scenario} ${r.inputs || r.operations}${r.violations.length ? ` (${r.violations.length} violations)` : ''}`).join(', ');
  process.stderr.write(`${t.scenario}: ${t.inputs} inputs, ${t.operations} operations, ${t.faults} faults, ${t.violations.length} violations, slowest ${t.slowestMs} ms (${t.slowestOp}); ${rows}\n`);
}

test(`hostile input (${pluginPath()}): ${INPUTS} generated inputs end in the right CNI error, change nothing and reach neither shell nor OVS`, async () => {
  const t = await fuzz(tb, site(tb, 'a'), { seed, inputs: INPUTS, width: 3 });
  report(t);
  expect(rollup(t).inputs).toBe(INPUTS);
  expect(t.violations).toEqual([]);
});

test(`concurrency (${pluginPath()}): ${OPERATIONS} seeded parallel ADD/DEL/CHECK keep VFs, cache and OVS consistent and containers reachable`, async () => {
  const t = await concurrency(tb, { seed, operations: OPERATIONS, width: 6, pings: 6 });
  report(t);
  expect(rollup(t).operations).toBeGreaterThanOrEqual(OPERATIONS);
  expect(t.violations).toEqual([]);
});

test(`crashes and faults (${pluginPath()}): SIGKILL at every step, DPU and OVS faults, lost netns and state, slow DPU; all recovered`, async () => {
  const t = await faults(tb, { seed });
  report(t);
  expect(rollup(t).faults).toBeGreaterThanOrEqual(17);
  expect(t.shapes.length).toBeGreaterThanOrEqual(7);
  expect(t.violations).toEqual([]);
});

test(`security (${pluginPath()}): host key pinning, key and state modes, no keys in logs, forced-command guard`, async () => {
  const t = await security(tb, {});
  report(t);
  expect(t.violations).toEqual([]);
});
