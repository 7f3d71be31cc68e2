/**
 * End-to-end: the daemon runs whole CNI commands. The packaged binary in daemon mode inside each emulated host's
 * netns runs ADD/CHECK/DEL in-process for the plugin, which only forwards them (and runs them itself when the
 * daemon is absent, refuses, or dies before answering). Fault points in the request kill the daemon mid-command.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY, cni, CNI_PATH, type CniOutcome, container, dpuExec, envFor, firstIp, nodeEnv, hostLocal, inNetns, netConf, ping, readJsonLines, removeContainers, requireBinary, type Site, site,
  type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(180000);

let tb: Testbed;
let A: Site;
let B: Site;

interface Daemon {
  socket: string;
  log: string;
  proc?: ChildProcess;
  pid?: number;
}
const daemons: Record<string, Daemon> = {};

/** Starts the packaged daemon in s's host netns (or netnsOf's), on its own socket and log. */
function startDaemon(s: Site, key = s.name, netnsOf: Site = s): Daemon {
  const d = (daemons[key] ??= { socket: join(tb.stateDir, `daemon-${key}`, 'dpu.sock'), log: join(tb.stateDir, `daemon-${key}.log`) });
  const started = () => readJsonLines(d.log).filter((l) => l.msg === 'dpu-overlay daemon listening').length;
  const before = started();
  const proc = spawn('ip', ['netns', 'exec', netnsOf.hostNetns, BINARY, 'daemon', '--socket', d.socket, '--log-file', d.log, '--log-level', 'debug', '--state-dir', join(tb.stateDir, `plugin-${s.name}`)], { stdio: 'ignore' });
  const deadline = Date.now() + 10000;
  while (started() === before && Date.now() < deadline) spawnSync('sleep', ['0.05']);
  if (started() === before) throw new Error('daemon did not start listening');
  d.proc = proc;
  d.pid = proc.pid;
  return d;
}

async function stopDaemon(d: Daemon | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const p = d?.proc;
  if (!d || !p) return;
  d.proc = undefined;
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
  });
}

/** Waits for a daemon killed by a fault point (the signal is its own). */
async function exited(d: Daemon): Promise<void> {
  const p = d.proc;
  d.proc = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => p.once('exit', () => resolve()));
}

const SUBNET = '10.102.0.0/24';
function conf(s: Site, o: { socket?: string; ipam?: Record<string, unknown> } = {}): Record<string, unknown> {
  const range = s.name === 'a' ? ['10.102.0.10', '10.102.0.99'] : ['10.102.0.100', '10.102.0.199'];
  return netConf(tb, s, { ipam: o.ipam ?? hostLocal(tb, s, SUBNET, range[0] as string, range[1] as string), dpu: { daemonSocket: o.socket ?? daemons[s.name]?.socket ?? '' } });
}

const stateDirOf = (s: Site) => join(tb.stateDir, `plugin-${s.name}`);
const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : []);
const allocations = (s: Site) => filesIn(join(stateDirOf(s), 'allocations'));
const records = (s: Site) => filesIn(join(stateDirOf(s), 'attachments'));
const addresses = (s: Site) => filesIn(join(tb.stateDir, `ipam-${s.name}-vni100`, 'vni100')).filter((f) => /^\d/.test(f));
const containerPorts = (s: Site) => dpuExec(s.name, 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=container').split('\n').filter(Boolean);
const linksIn = (ns: string) => inNetns(ns, 'ip', ['-o', 'link', 'show']).stdout.split('\n').filter(Boolean).map((l) => l.split(': ')[1]?.split('@')[0]);
const pluginLog = (s: Site) => readJsonLines(join(tb.stateDir, `plugin-${s.name}.log`));
const doneLines = (s: Site, containerId: string, command = 'ADD') => pluginLog(s).filter((l) => l.msg === `${command} done` && l.containerId === containerId);
const shape = (r: CniOutcome) => ({ ...r.json, ips: (r.json?.ips as unknown[] | undefined)?.length, interfaces: (r.json?.interfaces as Array<Record<string, unknown>>).map((i) => ({ ...i, pciID: undefined, mac: undefined })) });

function nothingLeft(s: Site, ns: string): void {
  expect(linksIn(ns)).toEqual(['lo']);
  expect(records(s)).toEqual([]);
  expect(allocations(s)).toEqual([]);
  expect(addresses(s)).toEqual([]);
  expect(containerPorts(s)).toEqual([]);
}

beforeAll(() => {
  requireBinary();
  tb = testbedUp(8, 'a,b');
  A = site(tb, 'a');
  B = site(tb, 'b');
  for (const s of [A, B]) {
    rmSync(join(tb.stateDir, `daemon-${s.name}`), { recursive: true, force: true });
    rmSync(join(tb.stateDir, `daemon-${s.name}.log`), { force: true });
    startDaemon(s);
  }
});

afterAll(async () => {
  for (const d of Object.values(daemons)) await stopDaemon(d);
  removeContainers();
  testbedDown();
});

describe('the daemon runs whole CNI commands', () => {
  test('ADD, CHECK and DEL through the daemons: pods on two hosts ping over the overlay; records owned by the daemon; logged via daemon', () => {
    const nsA = container('x-a');
    const nsB = container('x-b');
    const addA = cni(A, conf(A), { command: 'ADD', containerId: 'xa', netns: nsA });
    const addB = cni(B, conf(B), { command: 'ADD', containerId: 'xb', netns: nsB });
    expect([addA.status, addA.json?.msg, addB.status, addB.json?.msg]).toEqual([0, undefined, 0, undefined]);
    expect(ping(nsA, firstIp(addB.json))).toBe(true);
    expect(ping(nsB, firstIp(addA.json))).toBe(true);

    const [alloc] = allocations(A);
    expect(JSON.parse(readFileSync(join(stateDirOf(A), 'allocations', alloc as string), 'utf8'))).toMatchObject({ containerId: 'xa', pid: daemons.a?.pid });
    expect(doneLines(A, 'xa')).toEqual([expect.objectContaining({ via: 'daemon', pid: daemons.a?.pid })]);

    expect(cni(A, { ...conf(A), prevResult: addA.json }, { command: 'CHECK', containerId: 'xa', netns: nsA }).status).toBe(0);
    expect(cni(A, conf(A), { command: 'DEL', containerId: 'xa', netns: nsA }).status).toBe(0);
    expect(cni(B, conf(B), { command: 'DEL', containerId: 'xb', netns: nsB }).status).toBe(0);
    expect(doneLines(A, 'xa', 'DEL')).toEqual([expect.objectContaining({ via: 'daemon' })]);
    nothingLeft(A, nsA);
    nothingLeft(B, nsB);

    // The same command standalone: a reply of the same shape.
    const direct = cni(A, conf(A, { socket: '' }), { command: 'ADD', containerId: 'xa', netns: nsA });
    expect(direct.status).toBe(0);
    expect(shape(addA)).toEqual(shape(direct));
    expect(doneLines(A, 'xa').at(-1)?.via).toBeUndefined();
    expect(cni(A, conf(A, { socket: '' }), { command: 'DEL', containerId: 'xa', netns: nsA }).status).toBe(0);
    nothingLeft(A, nsA);
  });

  test('a config error comes back from the daemon exactly as the standalone plugin gives it', () => {
    const ns = container('x-err');
    const bad: Record<string, unknown> = { ...conf(A), mtu: 10 };
    const viaDaemon = cni(A, bad, { command: 'ADD', containerId: 'xe', netns: ns });
    const direct = cni(A, { ...conf(A, { socket: '' }), mtu: 10 }, { command: 'ADD', containerId: 'xe', netns: ns });
    expect(viaDaemon.status).toBe(1);
    expect(viaDaemon.json?.code).toBe(7);
    expect(viaDaemon.json).toEqual(direct.json);
  });

  test('with the daemon stopped the plugin runs the command itself: same result', async () => {
    await stopDaemon(daemons.a);
    const ns = container('x-stop');
    const add = cni(A, conf(A), { command: 'ADD', containerId: 'xs', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    expect(doneLines(A, 'xs').at(-1)?.via).toBeUndefined();
    startDaemon(A);
    expect(cni(A, conf(A), { command: 'DEL', containerId: 'xs', netns: ns }).status).toBe(0);
    expect(doneLines(A, 'xs', 'DEL').at(-1)?.via).toBe('daemon');
    nothingLeft(A, ns);
  });

  test('a daemon in another network namespace refuses the command; the plugin runs it itself', async () => {
    const other = startDaemon(A, 'elsewhere', B);
    const ns = container('x-other');
    // The standalone run's DPU operations are refused by that daemon too (another netns): they go over SSH directly.
    const add = cni(A, conf(A, { socket: other.socket }), { command: 'ADD', containerId: 'xo', netns: ns });
    expect(add.status).toBe(0);
    const lines = pluginLog(A).filter((l) => l.containerId === 'xo' && l.command === 'ADD');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.via !== undefined || l.pid === other.pid)).toEqual([]);
    await stopDaemon(other);
    expect(cni(A, conf(A), { command: 'DEL', containerId: 'xo', netns: ns }).status).toBe(0);
    nothingLeft(A, ns);
  });

  test.each([
    ['add:vf-moved', 'ADD'],
    ['del:vf-returned', 'DEL'],
  ])('DPU_OVERLAY_FAULT=%s kills the daemon mid-%s; the runtime\'s DEL leaves nothing behind', async (point, command) => {
    const d = daemons.a as Daemon;
    const id = `xf-${command.toLowerCase()}`;
    const ns = container(id);
    if (command === 'DEL') expect(cni(A, conf(A), { command: 'ADD', containerId: id, netns: ns }).status).toBe(0);
    const crashed = cni(A, conf(A), { command, containerId: id, netns: ns, env: { DPU_OVERLAY_FAULT: point } });
    await exited(d);
    // The plugin then ran the command itself and reached the same fault point.
    expect(crashed.status).toBe(-1);
    expect(crashed.stdout).toBe('');
    // The runtime's DEL, standalone (no daemon), then once more through a new daemon.
    expect(cni(A, conf(A), { command: 'DEL', containerId: id, netns: ns }).status).toBe(0);
    nothingLeft(A, ns);
    startDaemon(A);
    expect(cni(A, conf(A), { command: 'DEL', containerId: id, netns: ns }).status).toBe(0);
    nothingLeft(A, ns);
  });

  test('the forwarding plugin SIGKILLed mid-ADD: the daemon finishes the ADD, DEL cleans up', async () => {
    const bin = join(tb.stateDir, 'slow-ipam');
    const marker = join(tb.stateDir, 'slow-ipam.started');
    rmSync(marker, { force: true });
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'slow-local'), `#!/bin/sh\ntouch ${marker}\nsleep 2\nexec ${join(CNI_PATH, 'host-local')} "$@"\n`);
    chmodSync(join(bin, 'slow-local'), 0o755);
    const ns = container('x-kill');
    const c = conf(A, { ipam: { ...hostLocal(tb, A, SUBNET, '10.102.0.10', '10.102.0.99'), type: 'slow-local' } });
    const env = envFor({ command: 'ADD', containerId: 'xk', netns: ns, env: { CNI_PATH: `${bin}:${CNI_PATH}` } }, nodeEnv(A, c));
    const plugin = spawn('ip', ['netns', 'exec', A.hostNetns, BINARY], { env, stdio: ['pipe', 'ignore', 'ignore'] });
    plugin.stdin.end(JSON.stringify(c));
    const deadline = Date.now() + 30000;
    while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(marker)).toBe(true);
    plugin.kill('SIGKILL');
    while (doneLines(A, 'xk').length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(doneLines(A, 'xk')).toEqual([expect.objectContaining({ via: 'daemon' })]);
    expect(linksIn(ns)).toContain('eth0');
    expect(containerPorts(A)).toHaveLength(1);
    expect(cni(A, c, { command: 'DEL', containerId: 'xk', netns: ns, env: { CNI_PATH: `${bin}:${CNI_PATH}` } }).status).toBe(0);
    nothingLeft(A, ns);
  });
});
