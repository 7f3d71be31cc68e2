/**
 * End-to-end: how many processes a standalone ADD, CHECK and DEL start on the emulated host (static mode,
 * host-local IPAM), counted with strace (every process that made a successful execve), not by timing. The host
 * link steps run in-process (rtnetlink addon); its `ip` fallback is counted in daemon-netlink.test.ts.
 * docs/benchmarks.md's "Processes per command" table lists them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, container, envFor, nodeEnv, hostLocal, netConf, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp, type CniCall } from '../testkit/testbed';

jest.setTimeout(180000);

const hasStrace = spawnSync('strace', ['-V']).status === 0;
const maybe = hasStrace ? describe : describe.skip;

let tb: Testbed;
let A: Site;

beforeAll(() => {
  if (!hasStrace) return;
  requireBinary();
  tb = testbedUp(2, 'a,b');
  A = site(tb, 'a');
});

afterAll(() => {
  if (!hasStrace) return;
  removeContainers();
  testbedDown();
});

/** Runs the plugin under strace -f in the host's netns; returns its stdout and the programs its children ran. */
function traced(conf: Record<string, unknown>, call: CniCall): { stdout: string; status: number | null; children: string[] } {
  const out = join(tb.stateDir, `strace-${call.command}`);
  rmSync(out, { force: true });
  const r = spawnSync('ip', ['netns', 'exec', A.hostNetns, 'strace', '-f', '-qq', '-e', 'trace=execve', '-o', out, BINARY], { input: JSON.stringify(conf), env: envFor(call, nodeEnv(A, conf)), encoding: 'utf8', timeout: 60000 });
  // One entry per process: the first successful execve of each pid (nsenter then execs ip in the same process).
  const byPid = new Map<string, string>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^(\d+) +execve\("([^"]+)".*= 0$/.exec(line);
    if (m && !byPid.has(m[1] as string)) byPid.set(m[1] as string, (m[2] as string).split('/').pop() as string);
  }
  const [, ...children] = [...byPid.values()]; // the first is the plugin itself
  return { stdout: r.stdout, status: r.status, children };
}

const count = (names: string[], name: string) => names.filter((n) => n === name).length;

maybe('processes per command (static mode, host-local)', () => {
  test('in-process netlink: ADD and DEL start only the IPAM plugin (no ip, nsenter or tee); CHECK one nsenter ip -batch (the interface state) and the IPAM plugin', () => {
    const netns = container('procs');
    const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.93.0.0/24', '10.93.0.10', '10.93.0.20') });
    const call = { containerId: 'procs', netns, ifname: 'eth0' };

    const add = traced(conf, { command: 'ADD', ...call });
    expect(add.status).toBe(0);
    // host-local may be run up to three times: ADD, refused 1.1.0 (Debian's speak 1.0.0), VERSION, ADD again.
    const ipam = count(add.children, 'host-local');
    expect(ipam).toBeGreaterThanOrEqual(1);
    expect(ipam).toBeLessThanOrEqual(3);
    expect(add.children.filter((n) => n !== 'host-local')).toEqual([]);

    const check = traced({ ...conf, prevResult: JSON.parse(add.stdout) }, { command: 'CHECK', ...call });
    expect(check.status).toBe(0);
    expect(check.children.filter((n) => n !== 'host-local')).toEqual(['nsenter']);

    const del = traced(conf, { command: 'DEL', ...call });
    expect(del.status).toBe(0);
    expect(del.children.filter((n) => n !== 'host-local')).toEqual([]);
    expect(count(del.children, 'host-local')).toBeLessThanOrEqual(3);
  });
});
