/**
 * Smoke test of npm run bench:scale (bench/scale.ts): its --quick run on its own testbed (3 DPUs x 8 VFs, OVN)
 * must produce every figure the docs/benchmarks.md table shows, count the tunnel ports the two modes build, and leave nothing
 * behind. Timings are not asserted (they are for the benchmark).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, ROOT } from '../test/testkit/testbed';

jest.setTimeout(600000);

test('bench:scale --quick writes the JSON and the markdown table, and leaves nothing behind', () => {
  requireBinary();
  const out = mkdtempSync(join(tmpdir(), 'dpuo-bench-scale-'));
  try {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    delete env.NODE_EXTRA_CA_CERTS;
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'run-ts.js'), join(ROOT, 'bench', 'scale.ts'), '--quick', '--out', out], { encoding: 'utf8', timeout: 580000, env });
    expect(r.stderr).toContain('testbed');
    expect([r.status, r.stderr.split('\n').filter((l) => /failed|left behind/.test(l))]).toEqual([0, []]);
    const report = JSON.parse(readFileSync(join(out, 'scale.json'), 'utf8')) as Record<string, any>;
    expect(report.sites).toEqual(['a', 'b', 'c']);
    expect(report.vfsPerSite).toBe(8);
    expect(report.phases.map((p: { mode: string; vnis: number }) => `${p.mode} ${p.vnis}`)).toEqual(['ovn 1', 'static 1', 'ovn 10', 'static 10']);
    for (const p of report.phases) {
      expect([p.adds, p.add.n, p.del.n, p.dpuStep.n]).toEqual([24, 24, 24, 24]);
      expect(Number.isFinite(p.add.p50) && Number.isFinite(p.add.p99)).toBe(true);
      expect(p.perDpu.map((d: { dpu: string }) => d.dpu)).toEqual(['a', 'b', 'c']);
      for (const d of p.perDpu) {
        // one Geneve port per remote chassis in OVN mode; one VXLAN port per remote VTEP and VNI in static mode
        expect(d.tunnelPorts).toBe(p.mode === 'ovn' ? 2 : 2 * p.vnisWithPorts);
        expect(d.flows).toBeGreaterThan(0);
        if (p.mode === 'ovn') expect(Object.keys(d.ovnControllerCpu).sort()).toEqual(['addPhaseMs', 'addPhasePct', 'idleMs', 'idlePct', 'idleWindowS']);
      }
      if (p.mode === 'ovn') expect(p.claimToInstalled).toBeDefined();
    }
    expect(report.phases.map((p: { vnisWithPorts: number }) => p.vnisWithPorts)).toEqual([1, 1, 8, 8]);
    expect(report.ratios.map((x: { vnis: number; ratio: number }) => [x.vnis, Number.isFinite(x.ratio)])).toEqual([[1, true], [10, true]]);
    expect(report.projections.formulas).toHaveLength(4);
    expect(report.projections.rows.map((x: Record<string, number>) => [x.hosts, x.staticTunnelPortsPerDpu, x.ovnTunnelPortsPerDpu])).toEqual([[3, 16, 2], [100, 792, 99], [1000, 7992, 999]]);
    expect(report.leftovers).toEqual({ logicalSwitchPorts: 0, logicalSwitches: 0, brIntPorts: 0, staticBridges: 0, vxlanPorts: 0 });
    const md = readFileSync(join(out, 'scale.md'), 'utf8');
    expect(md).toContain('| 10 (8) | ovn |');
    expect(md).toContain('Command: `npm run bench:scale -- --quick');
    expect(r.stdout).toContain(md);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
