/** The overhead harness's pure parts: procfs/perf parsing, per-core deltas, command construction, options, report. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup } from './cleanup';
import {
  coreDelta, parseCpuList, parseInterrupts, parsePerfContextSwitches, parseProcStat, parseSoftirqs, parseUtime, snapshotFrom,
} from './counters';
import { cpuMask, RealEnvironment, RealHostsConfig } from './env';
import { NetnsNode, Processes, shellQuote, SshNode } from './exec';
import type { Sample } from './measure';
import { parseArgs } from './options';
import { fig4Spec, markdownTable, README_BEGIN, README_END, readmeWithResults, type Results } from './report';

const STAT = (u0: number, u1: number, idle1: number) => `cpu  1 2 3 4 5 6 7 8 0 0
cpu0 100 0 50 1000 0 0 0 0 0 0
cpu1 ${u1} ${u0} 20 ${idle1} 1 2 3 0 0 0
intr 12345 0 0
ctxt 99999
`;

const INTERRUPTS = (loc1: number) => `           CPU0       CPU1
  1:          9          0  IO-APIC   1-edge      i8042
 24:          1          5  IO-APIC   5-edge      ACPI:Ged
LOC:        100    ${loc1}   Local timer interrupts
RES:         10         20   Rescheduling interrupts
ERR:          7
MIS:          0
`;

const SOFTIRQS = (rx1: number) => `                    CPU0       CPU1
          HI:          0          0
       TIMER:      89795      92319
      NET_TX:          3          4
      NET_RX:         10       ${rx1}
`;

describe('procfs parsing', () => {
  it('reads per-CPU times from /proc/stat, not the machine-wide line', () => {
    const cpus = parseProcStat(STAT(5, 300, 2000));
    expect([...cpus.keys()]).toEqual([0, 1]);
    expect(cpus.get(1)).toEqual({ user: 300, nice: 5, system: 20, idle: 2000, iowait: 1, irq: 2, softirq: 3, steal: 0 });
  });

  it('sums every per-CPU /proc/interrupts row for a CPU and skips the machine-wide ERR/MIS', () => {
    expect(parseInterrupts(INTERRUPTS(200))).toEqual(new Map([[0, 9 + 1 + 100 + 10], [1, 0 + 5 + 200 + 20]]));
  });

  it('reads NET_RX and NET_TX per CPU from /proc/softirqs', () => {
    expect(parseSoftirqs(SOFTIRQS(77)).get(1)).toEqual({ netRx: 77, netTx: 4 });
  });

  it('computes deltas of the given cores only', () => {
    const before = snapshotFrom(STAT(0, 100, 100), INTERRUPTS(200), SOFTIRQS(50));
    const after = snapshotFrom(STAT(10, 160, 120), INTERRUPTS(260), SOFTIRQS(80));
    const d = coreDelta(before, after, [1]);
    // 60 user + 10 nice + 20 idle = 90 ticks
    expect(d).toEqual({ cores: [1], ticks: 90, userShare: 70 / 90, busyShare: 70 / 90, kernelShare: 0, interrupts: 60, netRx: 30, netTx: 0 });
    expect(coreDelta(before, after, [0]).interrupts).toBe(0);
    expect(() => coreDelta(before, after, [5])).toThrow(/CPU 5/);
  });

  it('reads the context switches from perf stat CSV output and refuses a counter perf could not read', () => {
    expect(parsePerfContextSwitches('# started on Thu\n\n2889,,context-switches,502073668,100.00,,\n')).toBe(2889);
    expect(() => parsePerfContextSwitches('<not supported>,,context-switches,0,100.00,,\n')).toThrow(/could not count/);
    expect(() => parsePerfContextSwitches('perf: permission denied\n')).toThrow(/no context-switches/);
  });

  it('reads utime from /proc/<pid>/stat even when the command name has spaces and parentheses', () => {
    expect(parseUtime('1234 (my (odd) prog) R 1 1234 1234 0 -1 4194560 100 0 0 0 4321 17 0 0 20 0 1 0')).toBe(4321);
  });

  it('expands CPU lists and writes CPU masks', () => {
    expect(parseCpuList('0-2,5\n')).toEqual([0, 1, 2, 5]);
    expect(parseCpuList('1')).toEqual([1]);
    expect(cpuMask([1])).toBe('2');
    expect(cpuMask([0, 2, 3])).toBe('d');
    expect(cpuMask([40])).toBe('10000000000');
  });
});

describe('nodes (the executor boundary)', () => {
  it('runs emulated host commands in the host netns, a container netns or the root, pinned on request', () => {
    const n = new NetnsNode('a', 'p-host-a', [1]);
    expect(n.command(['iperf3', '-s'])).toEqual(['ip', 'netns', 'exec', 'p-host-a', 'iperf3', '-s']);
    expect(n.command(['iperf3', '-s'], { netns: 'p-ctr-1', pin: true })).toEqual(['ip', 'netns', 'exec', 'p-ctr-1', 'taskset', '-c', '1', 'iperf3', '-s']);
    expect(n.command(['stress'], { root: true, pin: true })).toEqual(['taskset', '-c', '1', 'stress']);
    expect(n.command(['plugin'], { env: { CNI_COMMAND: 'ADD' } })).toEqual(['ip', 'netns', 'exec', 'p-host-a', 'env', 'CNI_COMMAND=ADD', 'plugin']);
  });

  it('runs real host commands over ssh with one quoted remote command line', () => {
    const n = new SshNode('a', 'root@node-a', [0, 1], ['-p', '2222']);
    const argv = n.command(['sh', '-c', 'echo "$$"; exec "$@"', 'sh', 'iperf3'], { netns: 'ctr 1' });
    expect(argv.slice(0, 2)).toEqual(['ssh', '-tt']);
    expect(argv).toContain('root@node-a');
    expect(argv[argv.length - 1]).toBe(`ip netns exec 'ctr 1' sh -c 'echo "$$"; exec "$@"' sh iperf3`);
    expect(shellQuote(["it's"])).toBe(`'it'\\''s'`);
  });

  it('calls the plugin on a real host with its network config file on stdin', () => {
    const config = RealHostsConfig.parse({
      hosts: [
        { name: 'a', ssh: 'root@a', underlayDev: 'ens1', underlayIp: '192.0.2.1', netconf: '/etc/cni/net.d/ovl.conf' },
        { name: 'b', ssh: 'root@b', underlayDev: 'ens1', underlayIp: '192.0.2.2', netconf: '/etc/cni/net.d/ovl.conf' },
      ],
    });
    const env = new RealEnvironment(new Processes(), config, [[0, 1], [0, 1]]);
    const call = env.cni(env.nodes[0], { CNI_COMMAND: 'ADD' });
    expect(call.input).toBeUndefined();
    expect(call.argv[call.argv.length - 1]).toBe(`env CNI_COMMAND=ADD sh -c 'exec "$0" <"$1"' /opt/cni/bin/dpu-overlay /etc/cni/net.d/ovl.conf`);
    expect(env.underlayIp(env.nodes[1])).toBe('192.0.2.2');
    expect(() => RealHostsConfig.parse({ hosts: [config.hosts[0]] })).toThrow();
  });
});

function runningState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z' ? 'gone or zombie' : 'running';
  } catch {
    return 'gone or zombie';
  }
}

describe('processes', () => {
  it('reports the first line at once, and abort kills the process group and refuses new processes', async () => {
    const procs = new Processes();
    const p = procs.start(['sh', '-c', 'sleep 30 & echo "$!"; wait']);
    const grandchild = Number(await p.firstLine);
    expect(grandchild).toBeGreaterThan(0);
    const t0 = Date.now();
    await procs.abort();
    const r = await p.result;
    expect(r.code).toBe(128); // killed by a signal
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(procs.count).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(runningState(grandchild)).toBe('gone or zombie'); // the whole group went
    expect(await procs.run(['true'])).toEqual({ code: 130, stdout: '', stderr: 'aborted' });
  });
});

describe('command line', () => {
  it('defaults to the paper sweep on the emulated testbed', () => {
    const o = parseArgs([], 2);
    expect(o).toMatchObject({ modes: ['host', 'host-overlay', 'dpu'], pairs: [1, 2, 5, 10, 20], seconds: 10, hostCores: [1], dpuCores: [0], hostOverlay: 'auto' });
    expect(o.hosts).toBeUndefined();
  });

  it('takes modes, pairs, seconds and cores', () => {
    const o = parseArgs(['--modes', 'dpu,host', '--pairs', '1,3', '--seconds', '2', '--host-cores', '2,3', '--host-overlay', 'ovs'], 4);
    expect(o).toMatchObject({ modes: ['dpu', 'host'], pairs: [1, 3], seconds: 2, hostCores: [2, 3], hostOverlay: 'ovs' });
  });

  it.each([
    [['--modes', 'docker'], /unknown mode/],
    [['--pairs', '0'], /--pairs/],
    [['--seconds', '1.5'], /--seconds/],
    [['--seconds'], /needs a value/],
    [['--host-overlay', 'vpp'], /--host-overlay/],
    [['--frobnicate'], /unknown option/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv as string[], 2)).toThrow(message);
  });
});

function sample(mode: Sample['mode'], pairs: number, gbps: number): Sample {
  return {
    mode, pairs, seconds: 2, realisation: 'x', throughputGbps: gbps, bytes: gbps * 2.5e8, perPair: [],
    host: { cores: [1], userShare: 0.5, hogShare: 0.4, busyShare: 1, kernelShare: 0.5, contextSwitches: 100, interrupts: 200, netRxSoftirqs: 300, netTxSoftirqs: 0 },
    perGbit: { contextSwitches: 10, interrupts: 20, netRxSoftirqs: 30, netTxSoftirqs: 0 },
    affinity: [],
  };
}

const RESULTS: Results = {
  tool: 'dpu-overlay bench overhead',
  command: 'npm run bench:overhead',
  environment: { kind: 'emulated', description: 'EMULATED testbed', notes: ['a note'], realisation: { host: 'over the underlay' }, hostCores: [1], dpuCores: [0] },
  params: { modes: ['host', 'dpu'], pairs: [1, 2], seconds: 2, iperfBuffer: '8K' },
  startedAt: '',
  finishedAt: '',
  samples: [sample('host', 1, 2), sample('dpu', 1, 1.5)],
};

describe('report', () => {
  it('states the environment and has one table row per sample', () => {
    const md = markdownTable(RESULTS);
    expect(md).toMatch(/^Environment: EMULATED testbed/);
    expect(md).toContain('- host: over the underlay');
    expect(md).toContain('- a note');
    expect(md).toContain('| host | 1 | 2.00 | 40.0 | 50.0 | 20 | 10 | 30 | 0 |');
    expect(md.split('\n').filter((l) => /^\| (host|dpu) \|/.test(l))).toHaveLength(2);
  });

  it('charts the four panels of Fig. 4 against container pairs, one line per mode', () => {
    const spec = fig4Spec(RESULTS) as { concat: Array<{ title: string; encoding: { x: { field: string }; y: { field: string }; color: { field: string } } }>; data: { values: unknown[] } };
    expect(spec.concat.map((p) => p.encoding.y.field)).toEqual(['userCpu', 'interruptsPerGbit', 'throughputGbps', 'contextSwitchesPerGbit']);
    for (const p of spec.concat) expect([p.encoding.x.field, p.encoding.color.field]).toEqual(['pairs', 'mode']);
    expect(spec.data.values).toHaveLength(2);
    expect(JSON.stringify(spec)).toContain('EMULATED');
  });
});

describe('README results block', () => {
  it('replaces only the block, with the command, the table and the chart', () => {
    const readme = `# x\n\nbefore\n\n${README_BEGIN}\nold table\n${README_END}\n\nafter\n`;
    const out = readmeWithResults(readme, { ...RESULTS, finishedAt: '2026-11-26T03:00:00.000Z' }, 'docs/overhead/fig4.svg');
    expect(out.startsWith('# x\n\nbefore\n\n')).toBe(true);
    expect(out.endsWith(`${README_END}\n\nafter\n`)).toBe(true);
    expect(out).not.toContain('old table');
    expect(out).toContain('Made by `npm run bench:overhead` (2026-11-26 03:00 UTC)');
    expect(out).toContain('| host | 1 | 2.00 |');
    expect(out).toContain('](docs/overhead/fig4.svg)');
    expect(readmeWithResults(out, RESULTS, 'f.svg')).toContain('](f.svg)');
    expect(() => readmeWithResults('# no block\n', RESULTS, 'f.svg')).toThrow(/no results block/);
  });
});

describe('cleanup', () => {
  it('undoes last-first, down to a mark', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovh-cleanup-'));
    const file = join(dir, 'log');
    const lines: string[] = [];
    const c = new Cleanup((l) => lines.push(l));
    const step = (x: string) => ['sh', '-c', `echo ${x} >>"$0"`, file];
    c.push('one', step('one'));
    const mark = c.mark();
    c.push('two', step('two'));
    c.push('three', step('three'));
    c.push('failing', ['false'], { check: true });
    await c.runDownTo(mark);
    expect(readFileSync(file, 'utf8')).toBe('three\ntwo\n');
    expect(lines).toEqual([expect.stringMatching(/^teardown of failing failed \(exit 1\)/)]);
    expect(c.pending).toEqual(['one']);
    await c.runDownTo();
    expect(readFileSync(file, 'utf8')).toBe('three\ntwo\none\n');
    rmSync(dir, { recursive: true });
  });
});
