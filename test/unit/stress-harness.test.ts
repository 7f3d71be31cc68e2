/**
 * The stress harness's own bookkeeping (test/stress/common.ts, fuzz.ts): fuzz inputs depend on the seed alone,
 * per-shape rows roll up into their scenario, and a violation is written whole to the violation file with the
 * plugin run that showed it.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectCniError, expectSuccess, newTally, type Outcome, recordViolationsTo, rollup, type RunRecord, runProbes, shape, timed, violation } from '../stress/common';
import { buildCase, caseFromRecord, fuzzCases } from '../stress/fuzz';
import type { Testbed } from '../testkit/testbed';

const BASE = { cniVersion: '1.1.0', name: 'fuzz', type: 'dpu-overlay', vni: 4242, pf: 'pf0', dpu: { host: '192.0.2.1', timeoutMs: 30000 }, ipam: { type: 'host-local' } };

function run(over: Partial<RunRecord> = {}): RunRecord {
  return {
    hostNetns: 'x-host-a', binary: '/dist/dpu-overlay', env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'fz-7' }, stdin: '{"name":"\u0000\ud800"}', startedAt: '2026-12-01T00:00:00.000Z',
    ms: 12, killAfterMs: 240000, load: [1, 2], status: 1, signal: null, stdout: '{"code":11,"msg":"DPU timed out"}', stderr: 'log line', ...over,
  };
}

function outcome(r: RunRecord): Outcome {
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: JSON.parse(r.stdout) as Record<string, unknown>, ms: r.ms, signal: r.signal, run: r };
}

describe('fuzz inputs', () => {
  test('are a function of the seed alone: the same with anything run before, and a longer run starts with a shorter one', () => {
    const a = fuzzCases(105964338, 200, BASE, '/tmp/regular');
    for (let i = 0; i < 1000; i++) Math.random();
    const b = fuzzCases(105964338, 200, structuredClone(BASE), '/tmp/regular');
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(fuzzCases(105964338, 50, BASE, '/tmp/regular'))).toBe(JSON.stringify(a.slice(0, 50)));
    expect(JSON.stringify(fuzzCases(105964339, 200, BASE, '/tmp/regular'))).not.toBe(JSON.stringify(a));
    expect(new Set(a.map((c) => c.kind)).size).toBeGreaterThan(5);
  });

  test('a network config\'s dpu = {} (no settings of its own over the node file\'s) is a valid ADD that gets its DEL; dpu = [] is refused', () => {
    const empty = buildCase(98, { kind: 'wrong-type', field: 'dpu', value: {} }, BASE, 'DEL', '/tmp/regular');
    expect([empty.expect, empty.command]).toEqual(['ok', 'ADD']);
    expect(buildCase(99, { kind: 'wrong-type', field: 'dpu', value: [] }, BASE, 'ADD', '/tmp/regular').expect).toEqual([7]);
  });

  test('a recorded run comes back as a case with exactly its env and stdin', () => {
    const r = run({ tag: { scenario: 'fuzz', seed: 1, inputs: 10, index: 7, kind: 'env', label: 'env CNI_IFNAME hostile', expect: [4], width: 4, alongside: [] } });
    const c = caseFromRecord(JSON.parse(JSON.stringify(r)) as RunRecord);
    expect(c).toMatchObject({ id: 7, kind: 'env', command: 'ADD', env: r.env, stdin: r.stdin, expect: [4], marker: 'h6z7q' });
  });
});

describe('tally rows', () => {
  test('shape rows roll up into their scenario; their violations are in the scenario list too', async () => {
    const t = newTally('security');
    await runProbes({} as Testbed, t, [
      ['one', async (_tb, row) => { timed(row, 'ADD (one)', 5); row.faults += 2; }],
      ['two', async (_tb, row) => { row.inputs += 3; timed(row, 'ADD (two)', 9); violation(row, 'two broke'); }],
      ['three', async () => { throw new Error('probe bug'); }],
    ]);
    const r = rollup(t);
    expect(r.shapes.map((x) => [x.scenario, x.inputs, x.operations, x.faults, x.violations.length])).toEqual([['one', 0, 1, 2, 0], ['two', 3, 1, 0, 1], ['three', 0, 0, 0, 1]]);
    expect([r.inputs, r.operations, r.faults, r.slowestMs, r.slowestOp]).toEqual([3, 2, 2, 9, 'ADD (two)']);
    expect(t.violations).toEqual(['two broke', expect.stringContaining('three: the probe threw: Error: probe bug')]);
    expect(shape(t, 'two')).toBe(t.shapes[1]);
  });
});

describe('violation file', () => {
  test('holds each violation whole: input, timing, timeouts, output, expectation and replay tag; big stdin beside it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stress-unit-')), 'v.jsonl');
    recordViolationsTo(file, 105964338);
    const t = newTally('fuzz (hostile input)');
    const tag = { scenario: 'fuzz', seed: 105964338, inputs: 300, index: 7, kind: 'env', label: 'env', expect: [4], width: 4, alongside: [3, 5] };
    expectCniError(shape(t, 'env'), 'input 7', outcome(run({ tag })), 4);
    expectSuccess(t, 'input 8', outcome(run({ stdin: 'x'.repeat(2 * 1024 * 1024) })));
    violation(t, 'host state changed', { hostBefore: 'a', hostAfter: 'b' });
    const records = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { run?: RunRecord & { stdinFile?: string } });
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({ seed: 105964338, scenario: 'fuzz (hostile input)', row: 'env', expected: { codes: [4] }, run: { ...run({ tag }) } });
    expect(records[0]?.msg).toMatch(/^input 7: code 11 \(want 4\)/);
    expect(records[1]?.run?.stdin).toBeUndefined();
    expect(readFileSync(records[1]?.run?.stdinFile as string, 'utf8')).toHaveLength(2 * 1024 * 1024);
    expect(records[2]).toMatchObject({ msg: 'host state changed', hostBefore: 'a', hostAfter: 'b' });
    expect(t.violations).toHaveLength(3);
  });
});
