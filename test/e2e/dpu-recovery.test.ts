/**
 * End-to-end: recovery after an OVS database reset on a DPU. The packaged binary runs as the node's daemon
 * (inside site a's host netns, watching site a's stateDir, default poll interval); containers on sites a and b
 * ping each other. Site a's emulated DPU loses ovsdb-server and ovs-vswitchd, then comes back with a new,
 * empty database: STATUS is code 50 meanwhile, a DEL made during the outage is finished and not re-plugged,
 * and the remaining container's pings recover with no CNI call from any runtime.
 *
 * The emulated DPU shares the machine's kernel, so its boot id cannot change: this exercises the database
 * identity (Open_vSwitch row UUID) path of the probe; the boot id path is covered by the unit tests.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY, cni, type CniOutcome, container, dpuExec, firstIp, hostLocal, netConf, ping, readJsonLines, removeContainers, requireBinary, type Site, site, spawnDaemon, stopDaemon, TESTBED,
  type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(240000);

let tb: Testbed;
let A: Site;
let B: Site;
let socket: string;
let daemonLog: string;
let daemon: ChildProcess | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, limitMs = 30000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(200);
  }
}

const log = () => readJsonLines(daemonLog);
const confA = () => netConf(tb, A, { ipam: hostLocal(tb, A, '10.102.0.0/24', '10.102.0.10', '10.102.0.99'), dpu: { daemonSocket: socket } });
const confB = () => netConf(tb, B, { ipam: hostLocal(tb, B, '10.102.0.0/24', '10.102.0.110', '10.102.0.199') });
const containerPorts = () => dpuExec('a', 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=container').split('\n').filter(Boolean).sort();
const records = () => {
  const dir = join(tb.stateDir, 'plugin-a', 'attachments');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')).sort() : [];
};
const dpuCtl = (action: string) => spawnSync('bash', [TESTBED, 'dpu-ctl', 'a', action], { encoding: 'utf8' });

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(8, 'a,b');
  A = site(tb, 'a');
  B = site(tb, 'b');
  const socketDir = join(tb.stateDir, 'recovery-daemon');
  socket = join(socketDir, 'dpu.sock');
  daemonLog = join(tb.stateDir, 'recovery-daemon.log');
  rmSync(socketDir, { recursive: true, force: true });
  rmSync(daemonLog, { force: true });
  // As the product runs it: the daemon with the plugin's stateDir, the default poll interval.
  daemon = await spawnDaemon(A, { socket, logFile: daemonLog, stateDir: join(tb.stateDir, 'plugin-a') });
});

afterAll(async () => {
  await stopDaemon(daemon);
  removeContainers();
  testbedDown();
});

describe('DPU database reset under running containers', () => {
  test('pings recover without any CNI call; STATUS is 50 meanwhile; a DEL made during the outage is finished, not re-plugged', async () => {
    const a1 = container('ra1');
    const a2 = container('ra2');
    const b1 = container('rb1');
    const addA1 = cni(A, confA(), { command: 'ADD', containerId: 'ra1', netns: a1 });
    const addA2 = cni(A, confA(), { command: 'ADD', containerId: 'ra2', netns: a2 });
    const addB1 = cni(B, confB(), { command: 'ADD', containerId: 'rb1', netns: b1 });
    for (const r of [addA1, addA2, addB1]) expect([r.status, r.json?.msg]).toEqual([0, undefined]);
    const ipB1 = firstIp(addB1.json);
    expect(ping(a1, ipB1)).toBe(true);
    expect(ping(a2, ipB1)).toBe(true);
    const [portA1, portA2] = containerPorts();
    expect(cni(A, confA(), { command: 'STATUS' }).status).toBe(0);
    // the daemon has seen the DPU and its database before the fault
    await until('a first probe', () => log().some((l) => l.msg === 'watching DPU identity'));

    expect(dpuCtl('ovs-stop').status).toBe(0);
    await until('the daemon noticing', () => log().some((l) => l.msg === 'DPU does not answer the recovery probe; STATUS reports it unavailable'));
    const status: CniOutcome = cni(A, confA(), { command: 'STATUS' });
    expect(status.status).toBe(1);
    expect(status.json?.code).toBe(50);
    expect(String(status.json?.msg)).toMatch(new RegExp(`^DPU root@${A.dpuHost.replace(/\./g, '\\.')}:${A.dpuPort} is not available`));
    expect(ping(a1, ipB1, 1)).toBe(false);

    // DEL during the outage: the host side is given back, the DPU part fails and is left for later
    const del = cni(A, confA(), { command: 'DEL', containerId: 'ra2', netns: a2 });
    expect(del.status).toBe(1);
    expect(String(del.json?.msg)).toMatch(/host side released, but unplugging .* failed; retry DEL/);
    const requestsBefore = log().filter((l) => l.msg === 'request').length;

    expect(dpuCtl('db-reset').status).toBe(0); // a new, empty database: only the uplink bridge
    await until('pings from a1 to b1', () => ping(a1, ipB1, 1));

    // nothing but the daemon did it: no plug request from any plugin since the fault
    expect(log().filter((l) => l.msg === 'request').slice(requestsBefore).map((l) => l.op)).not.toContain('plug');
    const pass = log().filter((l) => l.msg === 'DPU recovery pass');
    expect(pass.some((l) => /OVS database was created again/.test(String(l.reason)) && Number(l.replugged) === 1)).toBe(true);
    expect(log().some((l) => l.msg === 'finished a DEL the DPU outage had interrupted' && l.containerId === 'ra2')).toBe(true);
    // a1 is back with the same representor and owner; a2's port is not
    expect(containerPorts()).toEqual([portA1]);
    expect(dpuExec('a', 'ovs-vsctl', 'get', 'Port', portA1 as string, 'external_ids')).toContain('dpu-overlay.container=ra1');
    expect(containerPorts()).not.toContain(portA2);
    expect(records()).toEqual(['ra1:eth0']);
    await until('STATUS available again', () => cni(A, confA(), { command: 'STATUS' }).status === 0, 10000);
    expect(cni(A, { ...confA(), prevResult: addA1.json }, { command: 'CHECK', containerId: 'ra1', netns: a1 }).status).toBe(0);

    // the runtime's DEL retry finds nothing left and succeeds; the last DEL leaves nothing
    expect(cni(A, confA(), { command: 'DEL', containerId: 'ra2', netns: a2 }).status).toBe(0);
    expect(cni(A, confA(), { command: 'DEL', containerId: 'ra1', netns: a1 }).status).toBe(0);
    expect(cni(B, confB(), { command: 'DEL', containerId: 'rb1', netns: b1 }).status).toBe(0);
    expect(containerPorts()).toEqual([]);
    expect(records()).toEqual([]);
  });

  test('without the daemon: the pings stay down after a database reset until the operator runs dpu-overlay replug', async () => {
    const p = daemon;
    daemon = undefined;
    await stopDaemon(p);
    const direct = () => netConf(tb, A, { ipam: hostLocal(tb, A, '10.102.0.0/24', '10.102.0.10', '10.102.0.99'), dpu: { daemonSocket: '' } });
    const a1 = container('sa1');
    const b1 = container('sb1');
    const addA1 = cni(A, direct(), { command: 'ADD', containerId: 'sa1', netns: a1 });
    const addB1 = cni(B, confB(), { command: 'ADD', containerId: 'sb1', netns: b1 });
    for (const r of [addA1, addB1]) expect([r.status, r.json?.msg]).toEqual([0, undefined]);
    const ipB1 = firstIp(addB1.json);
    expect(ping(a1, ipB1)).toBe(true);

    expect(dpuCtl('db-reset').status).toBe(0);
    expect(containerPorts()).toEqual([]);
    expect(ping(a1, ipB1, 3)).toBe(false);

    const replugLog = join(tb.stateDir, 'replug.log');
    rmSync(replugLog, { force: true });
    const r = spawnSync('ip', ['netns', 'exec', A.hostNetns, BINARY, 'replug', '--state-dir', join(tb.stateDir, 'plugin-a'), '--log-file', replugLog], { encoding: 'utf8', timeout: 60000 });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/dpu-overlay replug:/); // (the fresh database's hw-offload warning may be there)
    expect(r.stdout).toMatch(/1 DPU\(s\) checked, 0 with problems/);
    expect(readJsonLines(replugLog).filter((l) => l.msg === 're-plugged attachment').map((l) => l.containerId)).toEqual(['sa1']);
    await until('pings from a1 to b1', () => ping(a1, ipB1, 1));
    expect(cni(A, { ...direct(), prevResult: addA1.json }, { command: 'CHECK', containerId: 'sa1', netns: a1 }).status).toBe(0);

    expect(cni(A, direct(), { command: 'DEL', containerId: 'sa1', netns: a1 }).status).toBe(0);
    expect(cni(B, confB(), { command: 'DEL', containerId: 'sb1', netns: b1 }).status).toBe(0);
    expect(containerPorts()).toEqual([]);
  });
});
