/**
 * End-to-end: the warm DPU channel. The packaged binary in daemon mode inside an emulated host's netns keeps
 * one SSH connection to the DPU; the plugin uses it over a unix socket and falls back to direct SSH when the
 * daemon is absent or dies, with the same results and errors.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  cni, cniAsync, type CniOutcome, container, dpuExec, hostLocal, netConf, readJsonLines, removeContainers, requireBinary, ROOT, sh, type Site, site, spawnDaemon,
  stopDaemon as stopSpawnedDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(180000);

let tb: Testbed;
let A: Site;
let socketDir: string;
let socket: string;
let daemonLog: string;
let daemon: ChildProcess | undefined;

// This suite's own daemon (not the testbed's per-host ones): it kills and restarts it.
const startDaemon = () => spawnDaemon(A, { socket, logFile: daemonLog });

async function stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const p = daemon;
  daemon = undefined;
  await stopSpawnedDaemon(p, signal);
}

function conf(o: { daemon?: boolean; dpu?: Record<string, unknown> } = {}): Record<string, unknown> {
  return netConf(tb, A, { ipam: hostLocal(tb, A, '10.101.0.0/24', '10.101.0.10', '10.101.0.250'), dpu: { daemonSocket: o.daemon === false ? '' : socket, ...o.dpu } });
}

const requests = () => readJsonLines(daemonLog).filter((l) => l.msg === 'request').map((l) => l.op);
const transactions = () => readJsonLines(daemonLog).filter((l) => l.msg === 'ovs-vsctl transaction');
const containerPorts = () => dpuExec('a', 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=container').split('\n').filter(Boolean);
const allocations = () => {
  const dir = join(tb.stateDir, 'plugin-a', 'allocations');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
};
const withoutIps = (r: CniOutcome) => ({ ...r.json, ips: undefined, interfaces: (r.json?.interfaces as Array<Record<string, unknown>>).map((i) => ({ ...i, pciID: undefined, mac: undefined })) });

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(64, 'a,b');
  A = site(tb, 'a');
  socketDir = join(tb.stateDir, 'daemon');
  socket = join(socketDir, 'dpu.sock');
  daemonLog = join(tb.stateDir, 'daemon.log');
  rmSync(socketDir, { recursive: true, force: true });
  rmSync(daemonLog, { force: true });
  daemon = await startDaemon();
});

afterAll(async () => {
  await stopDaemon();
  removeContainers();
  testbedDown();
});

describe('dpu-overlay daemon', () => {
  test('the socket is 0600 in a 0700 directory; a non-root user cannot connect', () => {
    expect(statSync(socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const probe = `require('net').connect(${JSON.stringify(socket)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(0)})`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('EACCES');
  });

  test('ADD, CHECK and DEL through the daemon give the results of the direct path', () => {
    const ns = container('d1');
    const before = transactions().length;
    const requestsBefore = requests().length;
    const viaDaemon = cni(A, conf(), { command: 'ADD', containerId: 'd1', netns: ns });
    expect(viaDaemon.status).toBe(0);
    expect(transactions().length).toBe(before + 1);
    expect(containerPorts()).toHaveLength(1);
    expect(cni(A, { ...conf(), prevResult: viaDaemon.json }, { command: 'CHECK', containerId: 'd1', netns: ns }).status).toBe(0);
    expect(cni(A, conf(), { command: 'DEL', containerId: 'd1', netns: ns }).status).toBe(0);
    expect(containerPorts()).toEqual([]);
    expect(requests().slice(requestsBefore)).toEqual(['facts', 'plug', 'check', 'unplug']);

    const direct = cni(A, conf({ daemon: false }), { command: 'ADD', containerId: 'd1', netns: ns });
    expect(direct.status).toBe(0);
    expect(withoutIps(viaDaemon)).toEqual(withoutIps(direct));
    expect(cni(A, conf({ daemon: false }), { command: 'DEL', containerId: 'd1', netns: ns }).status).toBe(0);
    expect(allocations()).toEqual([]);
  });

  test('DPU-side VF MAC through the daemon: set on the DPU at ADD, held by CHECK, restored at DEL', () => {
    const MAC = '02:aa:dd:00:00:01';
    const c = { ...conf(), mac: MAC };
    const hwAddr = () => (JSON.parse(dpuExec('a', 'devlink', '-j', 'port', 'show', 'pci/0000:03:00.0/1')) as { port: Record<string, { function: { hw_addr: string } }> }).port['pci/0000:03:00.0/1']?.function.hw_addr;
    const ns = container('dmac');
    const requestsBefore = requests().length;
    const add = cni(A, c, { command: 'ADD', containerId: 'dmac', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    expect(hwAddr()).toBe(MAC);
    const check = cni(A, { ...c, prevResult: add.json }, { command: 'CHECK', containerId: 'dmac', netns: ns });
    expect([check.status, check.json?.msg]).toEqual([0, undefined]);
    expect(cni(A, c, { command: 'DEL', containerId: 'dmac', netns: ns }).status).toBe(0);
    expect(hwAddr()).toBe('00:00:00:00:00:00');
    expect(requests().slice(requestsBefore)).toEqual(['facts', 'setVfFunction', 'plug', 'check', 'facts', 'setVfFunction', 'unplug']);
  });

  test.each([
    ['a representor the DPU does not have (112)', { representorTemplate: 'nope{vf}' }, 112],
    ['a pinned host key the DPU does not present (111)', { knownHostsFile: undefined, hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` }, 111],
  ])('the same CNI error both ways: %s', (_name, dpu, code) => {
    const ns = container('d2');
    const viaDaemon = cni(A, conf({ dpu }), { command: 'ADD', containerId: 'd2', netns: ns });
    const direct = cni(A, conf({ daemon: false, dpu }), { command: 'ADD', containerId: 'd2', netns: ns });
    expect(viaDaemon.json?.code).toBe(code);
    expect(viaDaemon.status).toBe(1);
    expect(viaDaemon.json).toEqual(direct.json);
    expect(allocations()).toEqual([]);
    expect(containerPorts()).toEqual([]);
  });

  test('with no daemon at dpu.daemonSocket the plugin connects directly', () => {
    const ns = container('d3');
    const c = conf({ dpu: { daemonSocket: join(tb.stateDir, 'no-daemon', 'dpu.sock') } });
    const before = transactions().length;
    expect(cni(A, c, { command: 'ADD', containerId: 'd3', netns: ns }).status).toBe(0);
    expect(containerPorts()).toHaveLength(1);
    expect(cni(A, c, { command: 'DEL', containerId: 'd3', netns: ns }).status).toBe(0);
    expect(transactions().length).toBe(before);
    expect(containerPorts()).toEqual([]);
  });

  test('concurrent ADDs, then DELs, are batched: fewer ovs-vsctl transactions than requests', async () => {
    const n = 16;
    const nets = Array.from({ length: n }, (_, i) => container(`b${i}`));
    const before = transactions().length;
    const adds = await Promise.all(nets.map((ns, i) => cniAsync(A, conf(), { command: 'ADD', containerId: `b${i}`, netns: ns })));
    expect(adds.map((r) => r.status)).toEqual(nets.map(() => 0));
    const plugs = transactions().slice(before).filter((l) => l.op === 'plug');
    expect(plugs.reduce((sum, l) => sum + Number(l.requests), 0)).toBe(n);
    expect(plugs.length).toBeLessThan(n);
    expect(containerPorts()).toHaveLength(n);
    const beforeDels = transactions().length;
    const dels = await Promise.all(nets.map((ns, i) => cniAsync(A, conf(), { command: 'DEL', containerId: `b${i}`, netns: ns })));
    expect(dels.map((r) => r.status)).toEqual(nets.map(() => 0));
    const unplugs = transactions().slice(beforeDels).filter((l) => l.op === 'unplug');
    expect(unplugs.reduce((sum, l) => sum + Number(l.requests), 0)).toBe(n);
    expect(unplugs.length).toBeLessThan(n);
    expect(containerPorts()).toEqual([]);
    expect(dpuExec('a', 'ovs-vsctl', 'list-br').split('\n')).not.toContain('br-vni100');
    expect(allocations()).toEqual([]);
  });

  test('batched transactions pass the DPU forced-command guard (guard/dpu-guard.sh of this tree)', async () => {
    const key = join(tb.stateDir, 'daemon-guarded_ed25519');
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'daemon-guarded', '-f', key]);
    const [type, blob] = readFileSync(`${key}.pub`, 'utf8').split(' ');
    appendFileSync(join(tb.stateDir, 'authorized_keys'), `command="${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding ${type} ${blob} daemon-guarded\n`);
    const guarded = conf({ dpu: { privateKeyFile: key } });
    const n = 10;
    const nets = Array.from({ length: n }, (_, i) => container(`g${i}`));
    const before = transactions().length;
    const adds = await Promise.all(nets.map((ns, i) => cniAsync(A, guarded, { command: 'ADD', containerId: `g${i}`, netns: ns })));
    expect(adds.map((r) => [r.status, r.json?.msg])).toEqual(nets.map(() => [0, undefined]));
    expect(containerPorts()).toHaveLength(n);
    const dels = await Promise.all(nets.map((ns, i) => cniAsync(A, guarded, { command: 'DEL', containerId: `g${i}`, netns: ns })));
    expect(dels.map((r) => r.status)).toEqual(nets.map(() => 0));
    expect(containerPorts()).toEqual([]);
    const merged = transactions().slice(before).filter((l) => Number(l.requests) > 1).map((l) => l.op);
    expect(merged).toContain('plug');
    expect(readJsonLines(daemonLog).filter((l) => l.msg === 'batched transaction failed; retrying each request alone')).toEqual([]);
  });

  test('a burst of 64 ADDs with 10 remoteVteps each, then 64 DELs, through the guard: all succeed, batched, nothing left behind', async () => {
    const key = join(tb.stateDir, 'daemon-burst_ed25519');
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'daemon-burst', '-f', key]);
    const [type, blob] = readFileSync(`${key}.pub`, 'utf8').split(' ');
    appendFileSync(join(tb.stateDir, 'authorized_keys'), `command="${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding ${type} ${blob} daemon-burst\n`);
    const remoteVteps = [...A.remoteVteps, ...Array.from({ length: 10 - A.remoteVteps.length }, (_, i) => `10.210.0.${i + 1}`)];
    const burst = conf({ dpu: { privateKeyFile: key, remoteVteps, timeoutMs: 60000 } });
    const n = 64;
    const nets = Array.from({ length: n }, (_, i) => container(`m${i}`));
    const before = transactions().length;
    // 64 plugin processes at once on a small, shared machine: a generous kill limit (no timing is asserted)
    const limit = 600000;
    const adds = await Promise.all(nets.map((ns, i) => cniAsync(A, burst, { command: 'ADD', containerId: `m${i}`, netns: ns }, limit)));
    expect(adds.map((r) => [r.status, r.json?.msg])).toEqual(nets.map(() => [0, undefined]));
    expect(containerPorts()).toHaveLength(n);
    const plugs = transactions().slice(before).filter((l) => l.op === 'plug');
    expect(plugs.reduce((sum, l) => sum + Number(l.requests), 0)).toBe(n);
    expect(plugs.length).toBeLessThan(n);
    const dels = await Promise.all(nets.map((ns, i) => cniAsync(A, burst, { command: 'DEL', containerId: `m${i}`, netns: ns }, limit)));
    expect(dels.map((r) => [r.status, r.json?.msg])).toEqual(nets.map(() => [0, undefined]));
    expect(containerPorts()).toEqual([]);
    expect(dpuExec('a', 'ovs-vsctl', 'list-br').split('\n')).not.toContain('br-vni100');
    expect(allocations()).toEqual([]);
    const log = readJsonLines(daemonLog);
    expect(log.filter((l) => l.msg === 'batched transaction failed; retrying each request alone' || l.msg === 'DPU connection dropped; reconnecting')).toEqual([]);
  }, 1500000);

  test('the daemon killed mid-burst: every ADD still succeeds (direct fallback), nothing leaks; a new daemon replaces the stale socket', async () => {
    const n = 16;
    const nets = Array.from({ length: n }, (_, i) => container(`k${i}`));
    const before = transactions().length;
    // 16 plugins falling back to their own SSH handshakes at once on 2 shared cores: the testbed's 5 s DPU deadline
    // (meant to make failure tests quick) would turn CPU contention into code 11. This test is about the fallback.
    const burstConf = conf({ dpu: { timeoutMs: 30000 } });
    // A plugin whose daemon died mid-ADD runs the whole ADD again itself (cleaning up the interrupted one first):
    // 16 of them at once on 2 shared cores need more than cniAsync's default 60 s kill limit (no timing is asserted).
    const adds = nets.map((ns, i) => cniAsync(A, burstConf, { command: 'ADD', containerId: `k${i}`, netns: ns }, 300000));
    const deadline = Date.now() + 20000;
    while (transactions().length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await stopDaemon('SIGKILL');
    const results = await Promise.all(adds);
    expect(results.map((r) => [r.status, r.json?.code, r.json?.msg])).toEqual(nets.map(() => [0, undefined, undefined]));
    expect(containerPorts()).toHaveLength(n);
    expect(existsSync(socket)).toBe(true); // stale, refused: the DELs go direct
    const dels = await Promise.all(nets.map((ns, i) => cniAsync(A, burstConf, { command: 'DEL', containerId: `k${i}`, netns: ns })));
    expect(dels.map((r) => [r.status, r.json?.msg])).toEqual(nets.map(() => [0, undefined]));
    expect(containerPorts()).toEqual([]);
    expect(allocations()).toEqual([]);

    daemon = await startDaemon();
    const ns = container('k-after');
    const again = transactions().length;
    expect(cni(A, conf(), { command: 'ADD', containerId: 'k-after', netns: ns }).status).toBe(0);
    expect(transactions().length).toBe(again + 1);
    expect(cni(A, conf(), { command: 'DEL', containerId: 'k-after', netns: ns }).status).toBe(0);
  });

  test('the daemon reconnects after the DPU drops its SSH connection', async () => {
    daemon ??= await startDaemon();
    const warmUp = container('r0');
    expect(cni(A, conf(), { command: 'DEL', containerId: 'r0', netns: warmUp }).status).toBe(0);
    // Only this testbed's DPU sshd's children (the sessions), never another sshd on the machine.
    const sshdPid = readFileSync(join(tb.stateDir, 'dpu-a', 'sshd.pid'), 'utf8').trim();
    expect(spawnSync('pkill', ['-P', sshdPid]).status).toBe(0);
    const ns = container('r1');
    expect(cni(A, conf(), { command: 'ADD', containerId: 'r1', netns: ns }).status).toBe(0);
    expect(cni(A, conf(), { command: 'DEL', containerId: 'r1', netns: ns }).status).toBe(0);
    expect(readJsonLines(daemonLog).some((l) => l.msg === 'DPU connection dropped; reconnecting')).toBe(true);
  });
});
