/**
 * End-to-end: the host-overhead harness (npm run bench:overhead) on the emulated testbed, short: one pair,
 * two seconds per mode. Every metric must be produced, non-negative and read from the right cores, and
 * teardown (at the end and on Ctrl-C) must leave nothing behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Results } from './report';
import { PREFIX, requireBinary, ROOT } from '../../test/testkit/testbed';

jest.setTimeout(300000);

const HARNESS = ['scripts/run-ts.js', 'bench/overhead/main.ts'];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** processes seen in our namespaces while it measured */
  seen: string[];
}

/**
 * Runs the harness; records the processes in our namespaces once stderr matches `snapshotWhen` (while it
 * measures), and then sends SIGINT (as Ctrl-C) if `interrupt`.
 */
function harness(args: string[], snapshotWhen: RegExp, interrupt = false): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...HARNESS, ...args], { cwd: ROOT, env: { ...process.env, DPUO_TESTBED_PREFIX: PREFIX } });
    let stdout = '';
    let stderr = '';
    let seen: string[] | undefined;
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (seen === undefined && snapshotWhen.test(stderr)) {
        setTimeout(() => {
          seen = processesInOurNetns();
          if (interrupt) p.kill('SIGINT');
        }, 1500);
        seen = [];
      }
    });
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, seen: seen ?? [] }));
  });
}

function ourNetns(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0] as string)
    .filter((n) => n.startsWith(`${PREFIX}-`));
}

/** Live processes in one of our network namespaces (hosts, DPUs, containers): iperf3, stress, OVS, sshd. */
function processesInOurNetns(): string[] {
  const inodes = new Set(ourNetns().map((n) => statSync(`/run/netns/${n}`).ino));
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (inodes.has(statSync(`/proc/${pid}/ns/net`).ino)) found.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Of these pids, the ones still alive (a pid reused meanwhile is told apart by its command line). */
function stillAlive(procs: string[]): string[] {
  return procs.filter((p) => {
    const [pid, cmd] = p.split(/: (.*)/s) as [string, string];
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') === cmd;
    } catch {
      return false;
    }
  });
}

function expectNothingLeft(procsSeenRunning: string[]): void {
  expect(ourNetns()).toEqual([]);
  expect(existsSync(`/run/${PREFIX}-overhead`)).toBe(false); // work dir, with the harness's testbed state
  expect(stillAlive(procsSeenRunning)).toEqual([]);
}

describe('short overhead run: 1 pair, 2 s per mode', () => {
  let out: string;
  let run: Run;
  let results: Results;

  beforeAll(async () => {
    requireBinary();
    out = mkdtempSync(join(tmpdir(), `${PREFIX}-overhead-`));
    run = await harness(['--pairs', '1', '--seconds', '2', '--out', out], /dpu, 1 pair\(s\): measuring/);
    if (run.code !== 0) throw new Error(`harness failed (${run.code}):\n${run.stderr}`);
    results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
  });

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test('reports progress on stderr and the results JSON on stdout', () => {
    expect(run.stderr).toMatch(/\[overhead \d+:\d\d\] \(1\/3\) host, 1 pair\(s\): setting up/);
    expect(run.stderr).toMatch(/dpu 1 pair\(s\): [\d.]+ Gbit\/s/);
    expect(JSON.parse(run.stdout)).toEqual(results);
  });

  test('states that the numbers come from the emulated testbed, and how each mode was built', () => {
    expect(results.environment.kind).toBe('emulated');
    expect(results.environment.description).toMatch(/^EMULATED testbed/);
    expect(Object.keys(results.environment.realisation).sort()).toEqual(['dpu', 'host', 'host-overlay']);
    expect(results.environment.realisation['host-overlay']).toMatch(/kernel VXLAN device|SUBSTITUTE/);
  });

  test('produces one sample per mode with every metric present and non-negative', () => {
    expect(results.samples.map((s) => [s.mode, s.pairs, s.seconds])).toEqual([['host', 1, 2], ['host-overlay', 1, 2], ['dpu', 1, 2]]);
    for (const s of results.samples) {
      expect(s.throughputGbps).toBeGreaterThan(0);
      expect(s.bytes).toBeGreaterThan(0);
      const metrics = { ...s.host, ...prefixed('perGbit', s.perGbit), ...prefixed('dpu', s.dpuCores ?? {}) };
      for (const key of ['userShare', 'hogShare', 'busyShare', 'kernelShare', 'contextSwitches', 'interrupts', 'netRxSoftirqs', 'netTxSoftirqs',
        'perGbit.contextSwitches', 'perGbit.interrupts', 'perGbit.netRxSoftirqs', 'perGbit.netTxSoftirqs', 'dpu.busyShare', 'dpu.interrupts', 'dpu.netRx']) {
        const v = (metrics as Record<string, unknown>)[key];
        expect([key, typeof v]).toEqual([key, 'number']);
        expect([key, Number.isFinite(v) && (v as number) >= 0]).toEqual([key, true]);
      }
      for (const share of [s.host.userShare, s.host.hogShare, s.host.busyShare]) expect(share).toBeLessThanOrEqual(1);
      // the hogs ran on the host core and got some of it; packets crossed it (timer interrupts alone would not do)
      expect(s.host.hogShare).toBeGreaterThan(0);
      expect(s.host.contextSwitches).toBeGreaterThan(0);
      expect(s.host.interrupts).toBeGreaterThan(0);
    }
  });

  test('reads the host figures on the host core only, and every process ran where it was pinned', () => {
    const { hostCores, dpuCores } = results.environment;
    expect(hostCores).toHaveLength(1);
    expect(dpuCores).toHaveLength(1);
    expect(hostCores).not.toEqual(dpuCores);
    for (const s of results.samples) {
      expect(s.host.cores).toEqual(hostCores);
      expect(s.dpuCores?.cores).toEqual(dpuCores);
      const what = s.affinity.map((a) => a.what);
      expect(what).toEqual(expect.arrayContaining(['iperf3 server 0', 'iperf3 client 0', 'stress hog']));
      for (const a of s.affinity) expect([a.what, a.cpus]).toEqual([a.what, a.role === 'host' ? hostCores : dpuCores]);
    }
    const dpu = results.samples.find((s) => s.mode === 'dpu');
    expect(dpu?.affinity.filter((a) => a.role === 'dpu').map((a) => a.what)).toEqual(
      expect.arrayContaining(['DPU a ovs-vswitchd', 'DPU b ovs-vswitchd', 'DPU a sshd', 'DPU b sshd']),
    );
  });

  test('writes the markdown table and the four-panel chart', () => {
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/^Environment: EMULATED/);
    expect(md.split('\n').filter((l) => /^\| (host|host-overlay|dpu) \| 1 \|/.test(l))).toHaveLength(3);
    const svg = readFileSync(join(out, 'fig4.svg'), 'utf8');
    expect(svg).toMatch(/^<svg /);
    for (const title of ['User CPU', 'Interrupts per Gbit', 'Throughput', 'Context switches per Gbit', 'DPU offload']) expect(svg).toContain(title);
  });

  test('tears everything down', () => {
    expect(run.seen.join('\n')).toMatch(/iperf3 -s/);
    expect(run.seen.join('\n')).toMatch(/stress/);
    expectNothingLeft(run.seen);
  });
});

test('Ctrl-C while measuring stops, tears everything down and exits non-zero', async () => {
  requireBinary();
  const out = mkdtempSync(join(tmpdir(), `${PREFIX}-overhead-int-`));
  try {
    const run = await harness(['--modes', 'host-overlay', '--host-overlay', 'ovs', '--pairs', '2', '--seconds', '60', '--out', out], /measuring for 60 s/, true);
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(/SIGINT: stopping and tearing everything down/);
    expect(run.stderr).toMatch(/torn down/);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
    expect(run.seen.join('\n')).toMatch(/ovs-vswitchd unix:\/run\//); // the host-overlay's own OVS ran
    expectNothingLeft(run.seen);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

function prefixed(prefix: string, o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}.${k}`, v]));
}
