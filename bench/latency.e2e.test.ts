/**
 * Smoke test of npm run bench (bench/latency.ts): a tiny run on its own testbed must produce every
 * figure the docs/benchmarks.md table shows. The figures themselves are not asserted (timings are for the benchmark).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, ROOT } from '../test/testkit/testbed';
import { DPU_LINES, FORWARDER_ROW } from './latency/report';

jest.setTimeout(420000);

test('bench --cycles 2 --bursts 1,16 --attachments 3 writes the JSON and the markdown table', () => {
  requireBinary();
  const out = mkdtempSync(join(tmpdir(), 'dpuo-bench-'));
  try {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'run-ts.js'), join(ROOT, 'bench', 'latency.ts'), '--cycles', '2', '--bursts', '1,16', '--attachments', '3', '--idle-seconds', '1', '--out', out], { encoding: 'utf8', timeout: 400000 });
    expect(r.stderr).toContain('testbed');
    expect(r.status).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'latency.json'), 'utf8')) as Record<string, any>;
    expect(Object.keys(report.sequential)).toEqual(['host-device', 'host-device + ssh', 'dpu-overlay cold', 'dpu-overlay cold, first on its VNI', 'dpu-overlay warm', 'dpu-overlay warm, first on its VNI']);
    for (const v of Object.values(report.sequential) as Array<Record<string, { n: number; p50: number }>>) {
      expect([2, 4]).toContain(v.add?.n); // host-device runs beside both the cold and the warm rows
      expect(v.add?.p50).toBeGreaterThan(0);
    }
    expect(report.bursts.warm.map((b: { n: number }) => b.n)).toEqual([1, 16]);
    expect(report.bursts.warm[1].hostDevice.addWallMs).toBeGreaterThan(0);
    expect(report.dpuRoundTrip.transport.p50).toBeGreaterThan(0);
    expect(report.dpuRoundTrip.openssh.p50).toBeGreaterThan(0);
    // OVN mode beside static mode, interleaved on the testbed brought up again with OVN
    expect(report.ovn.ovn.add.n).toBe(2);
    expect(report.ovn.static.add.n).toBe(2);
    expect(report.ovn.ovn.del.p50).toBeGreaterThan(0);
    // the DPU's own lines of a warm ADD/DEL, recorded at sshd and replayed locally, interleaved with the warm rows
    expect(Object.keys(report.dpuLines)).toEqual([DPU_LINES.plain, DPU_LINES.guard, DPU_LINES.ovnStatic, DPU_LINES.ovn]);
    for (const v of Object.values(report.dpuLines) as Array<{ lines: { add: number; del: number }; add: { n: number; p50: number }; del: { n: number; p50: number } }>) {
      expect(v.lines.add).toBeGreaterThan(0);
      expect(v.lines.del).toBeGreaterThan(0);
      expect([v.add.n, v.del.n]).toEqual([2, 2]);
      expect(v.add.p50).toBeGreaterThan(0);
    }
    // the forwarder alone, against a stand-in daemon that answers at once
    expect([report.forwarder.add.n, report.forwarder.del.n]).toEqual([2, 2]);
    expect(report.forwarder.add.p50).toBeGreaterThan(0);
    expect(Object.keys(report.breakdown.warmDel)).toContain('DPU step (rest of the connect + OVS transaction)');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.peakRssKb).toBeGreaterThan(1000);
    expect(Object.keys(report.breakdown.cold)).toContain('DPU step (rest of the connect + OVS transaction)');
    expect(report.targets.map((t: { name: string; ratio: number }) => [t.name.split(' ').slice(0, 2).join(' '), Number.isFinite(t.ratio)])).toEqual([
      ['warm ADD', true], ['warm DEL', true], ['cold ADD', true], ['wall time', true], ['DPU round', true], ['OVN warm', true], ['VERSION p50', true],
    ]);
    expect(report.targets.every((t: { met: boolean; floor?: string }) => t.met || Boolean(t.floor))).toBe(true);
    expect(report.version.helloSea.p50).toBeGreaterThan(0);
    expect(report.childEnv).toEqual(['PATH', 'CNI_*']);
    expect(report.envEffects.map((e: { name: string }) => e.name.split('=')[0])).toEqual(['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS']);
    expect(report.daemon.attachments).toBe(3);
    expect(report.daemon.rssKb).toBeGreaterThan(1000);
    expect(Number.isFinite(report.daemon.idleCpuPercent)).toBe(true);
    const md = readFileSync(join(out, 'latency.md'), 'utf8');
    expect(md).toContain('| dpu-overlay warm ADD |');
    expect(md).toContain('| VERSION p50 / hello-world SEA VERSION p50 (the Node floor) |');
    expect(md).toContain('| daemon RSS with 3 attachments |');
    expect(md).toContain('| DPU round trip, OpenSSH ControlMaster (same command) |');
    expect(md).toContain('| dpu-overlay warm, OVN ADD |');
    expect(md).toContain(`| ${DPU_LINES.ovn}: ADD (`);
    expect(md).toContain(`| ${FORWARDER_ROW} ADD |`);
    expect(md).toContain('| step breakdown (p50 ms) | cold ADD | warm ADD | warm DEL |');
    expect(md).toContain('| OVN warm ADD p50 / static warm ADD p50 (same OVN testbed, interleaved) |');
    expect(md).toContain('Command: `npm run bench -- --cycles 2 --bursts 1,16 --attachments 3');
    expect(r.stdout).toContain(md);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
