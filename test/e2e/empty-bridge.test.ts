/**
 * End-to-end: when an emptied VNI bridge goes. Through the daemon, the DEL of the last container answers without
 * removing it, and the daemon removes it once it has stayed empty for its grace period (--empty-bridge-grace-ms);
 * an ADD on the VNI in that time keeps it; a daemon stopped meanwhile removes it on its way out; GC removes one a
 * killed daemon left. The standalone plugin's DEL removes it before it answers. Both paths by itself.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  cni, container, dpuExec, hostLocal, netConf, readJsonLines, removeContainers, requireBinary, type Site, site, spawnDaemon, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(180000);

const GRACE_MS = 1500;
let tb: Testbed;
let A: Site;
let socket: string;
let daemonLog: string;
let daemon: ChildProcess | undefined;

const bridges = () => dpuExec('a', 'ovs-vsctl', 'list-br').split('\n').filter(Boolean);
const ports = (br: string) => dpuExec('a', 'ovs-vsctl', 'list-ports', br).split('\n').filter((p) => p.startsWith('pf0vf'));
const removals = () => readJsonLines(daemonLog).filter((l) => l.bridge === 'br-vni100' && typeof l.removed === 'boolean');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function conf(viaDaemon: boolean): Record<string, unknown> {
  return netConf(tb, A, { ipam: hostLocal(tb, A, '10.103.0.0/24', '10.103.0.10', '10.103.0.250'), dpu: { daemonSocket: viaDaemon ? socket : '' } });
}

function add(id: string, viaDaemon = true): void {
  const r = cni(A, conf(viaDaemon), { command: 'ADD', containerId: id, netns: container(id) });
  expect({ status: r.status, out: r.status === 0 ? '' : r.stdout }).toEqual({ status: 0, out: '' });
}

function del(id: string, viaDaemon = true): void {
  expect(cni(A, conf(viaDaemon), { command: 'DEL', containerId: id, netns: `/run/netns/${process.env.DPUO_TESTBED_PREFIX ?? 'dpuo'}-ctr-${id}` }).status).toBe(0);
}

/** Polls until the daemon logged n removal decisions for br-vni100 (removed or kept), within a few grace periods. */
async function decisions(n: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 10 * GRACE_MS + 10000;
  while (removals().length < n && Date.now() < deadline) await sleep(100);
  return removals();
}

async function startDaemon(): Promise<void> {
  daemon = await spawnDaemon(A, { socket, logFile: daemonLog, stateDir: join(tb.stateDir, 'plugin-a'), emptyBridgeGraceMs: GRACE_MS });
}

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(8, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
  socket = join(tb.stateDir, 'daemon-grace', 'dpu.sock');
  daemonLog = join(tb.stateDir, 'daemon-grace.log');
  rmSync(daemonLog, { force: true });
  await startDaemon();
});

afterAll(async () => {
  await stopDaemon(daemon);
  removeContainers();
  testbedDown();
});

test('daemon: the DEL of the last container leaves the bridge; it goes after the grace period', async () => {
  add('g1');
  expect(bridges()).toContain('br-vni100');
  del('g1');
  // Answered before the bridge went: it stays until the grace period is over.
  expect(bridges()).toContain('br-vni100');
  expect(removals()).toEqual([]);
  const [decision] = await decisions(1);
  expect(decision).toEqual(expect.objectContaining({ removed: true, msg: `removed VNI bridge empty for ${GRACE_MS} ms` }));
  expect(bridges()).not.toContain('br-vni100');
});

test('daemon: an ADD on the VNI during the grace period keeps the bridge (and its tunnels)', async () => {
  const before = removals().length;
  add('g2');
  del('g2');
  expect(bridges()).toContain('br-vni100');
  add('g3');
  await sleep(2 * GRACE_MS);
  const after = await decisions(before + 1);
  expect(after.slice(before)).toEqual([expect.objectContaining({ removed: false })]);
  expect(bridges()).toContain('br-vni100');
  expect(ports('br-vni100')).toHaveLength(1);
  // The container on it can be checked and removed as ever; its DEL starts a new grace period.
  del('g3');
  const last = await decisions(before + 2);
  expect(last.at(-1)).toEqual(expect.objectContaining({ removed: true }));
  expect(bridges()).not.toContain('br-vni100');
});

test('daemon: stopped during the grace period, it removes the bridge on its way out', async () => {
  add('g4');
  del('g4');
  expect(bridges()).toContain('br-vni100');
  await stopDaemon(daemon);
  daemon = undefined;
  expect(bridges()).not.toContain('br-vni100');
  await startDaemon();
});

test('daemon killed during the grace period: GC removes the bridge it left', async () => {
  add('g5');
  del('g5');
  await stopDaemon(daemon, 'SIGKILL');
  daemon = undefined;
  expect(bridges()).toContain('br-vni100');
  const gc = cni(A, { ...conf(false), 'cni.dev/valid-attachments': [] }, { command: 'GC' });
  expect(gc.status).toBe(0);
  expect(bridges()).not.toContain('br-vni100');
  await startDaemon();
});

test('standalone: the DEL of the last container removes the bridge before it answers', () => {
  add('g6', false);
  expect(bridges()).toContain('br-vni100');
  del('g6', false);
  expect(bridges()).not.toContain('br-vni100');
});
