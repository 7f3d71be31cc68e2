/**
 * End-to-end: a host and DPU power cycle. The daemon is stopped (the host is off), one container's network
 * namespace is gone (its VF falls back to the host, as the kernel does with a physical device of a destroyed
 * namespace), the DPU's OVS database is wiped; the attachment records are kept. The daemon started again re-plugs
 * only the live container and releases the other as GC would: VF, IP, record; no port comes back for it.
 */
import { type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  cni, container, dpuCtl, dpuExec, firstIp, hostLocal, netConf, nsName, ping, NODE_FILE, readJsonLines, removeContainers, requireBinary, sh, type Site, site, spawnDaemon, stopDaemon,
  type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';
import { httpGet, METRICS_ADDRESS, parseMetrics, series } from './operations-kit';

jest.setTimeout(240000);

let tb: Testbed;
let A: Site;
let B: Site;
let socket: string;
let daemonLog: string;
let daemon: ChildProcess | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean, limitMs = 60000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(200);
  }
}

const confA = () => netConf(tb, A, { ipam: hostLocal(tb, A, '10.123.0.0/24', '10.123.0.10', '10.123.0.99'), dpu: { daemonSocket: socket } });
const confB = () => netConf(tb, B, { ipam: hostLocal(tb, B, '10.123.0.0/24', '10.123.0.110', '10.123.0.199') });
const containerPorts = () => dpuExec('a', 'ovs-vsctl', '--bare', '--columns=external_ids', 'find', 'Port', 'external_ids:dpu-overlay.role=container');
const records = () => {
  const dir = join(tb.stateDir, 'plugin-a', 'attachments');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')).sort() : [];
};
const allocations = () => readdirSync(join(tb.stateDir, 'plugin-a', 'allocations')).filter((f) => !f.startsWith('.'));
// --node-config: the node file A's commands use, which the daemon's own DEL of a gone container reads too
const start = () => spawnDaemon(A, { socket, logFile: daemonLog, stateDir: join(tb.stateDir, 'plugin-a'), nodeConfig: confA()[NODE_FILE], args: ['--metrics-address', METRICS_ADDRESS, '--poll-interval-ms', '500'] });

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(8, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
  B = site(tb, 'b');
  socket = join(tb.stateDir, 'pc-daemon', 'd.sock');
  daemonLog = join(tb.stateDir, 'pc-daemon.log');
  rmSync(daemonLog, { force: true });
  daemon = await start();
});

afterAll(async () => {
  await stopDaemon(daemon);
  removeContainers();
  testbedDown();
});

test('after a power cycle only the live container is re-plugged; the gone one is released as GC would', async () => {
  const live = container('pc-live');
  const dead = container('pc-dead');
  const peer = container('pc-peer');
  const results = ([[A, confA(), 'pc-live', live], [A, confA(), 'pc-dead', dead], [B, confB(), 'pc-peer', peer]] as const).map(([s, conf, id, ns]) => {
    const r = cni(s, conf, { command: 'ADD', containerId: id, netns: ns });
    expect([r.status, r.json?.msg]).toEqual([0, undefined]);
    return r;
  });
  const peerIp = firstIp(results[2]?.json);
  expect(ping(live, peerIp)).toBe(true);
  expect(records()).toHaveLength(2);
  expect(allocations()).toHaveLength(2);

  const deadVf = (JSON.parse(readFileSync(join(tb.stateDir, 'plugin-a', 'attachments', records().find((r) => r.includes('pc-dead')) ?? ''), 'utf8')) as { vf: { originalName: string; originalMtu: number } }).vf;

  // power off: the daemon stops, the dead container's namespace goes, the DPU's database is wiped. The kernel gives
  // a destroyed namespace's VF back to the host (the emulation's veth would die with it: moved back by hand, under the
  // name its sysfs tree gives it, with the container's settings still on it)
  await stopDaemon(daemon);
  daemon = undefined;
  sh('ip', ['-n', nsName(dead), 'link', 'set', 'dev', 'eth0', 'down']);
  sh('ip', ['-n', nsName(dead), 'link', 'set', 'dev', 'eth0', 'netns', A.hostNetns, 'name', deadVf.originalName]);
  sh('ip', ['netns', 'del', nsName(dead)]);
  dpuCtl('a', 'db-reset');
  expect(containerPorts()).toBe('');

  // power on: the daemon starts with the records kept
  daemon = await start();
  await until('the gone attachment released', () => records().length === 1);
  await until('the live attachment re-plugged', () => containerPorts().includes('pc-live'));
  expect(records()).toEqual([expect.stringContaining('pc-live')]);
  expect(allocations()).toHaveLength(1);
  const ports = containerPorts();
  expect(ports).toContain('pc-live');
  expect(ports).not.toContain('pc-dead');
  const lines = readJsonLines(daemonLog);
  expect(lines.filter((l) => l.msg === 're-plugged attachment').map((l) => l.containerId)).toEqual(['pc-live']);
  expect(lines.filter((l) => String(l.msg).startsWith('released an attachment whose container network namespace is gone')).map((l) => l.containerId)).toEqual(['pc-dead']);
  // the dead container's VF got its own settings back
  const vf = JSON.parse(sh('ip', ['-n', A.hostNetns, '-j', 'link', 'show', 'dev', deadVf.originalName])) as Array<{ mtu: number }>;
  expect(vf[0]?.mtu).toBe(deadVf.originalMtu);
  const m = parseMetrics(httpGet(A, '/metrics').body);
  expect(series(m, 'dpu_overlay_dpu_replugs_total', { dpu: `${A.dpuUser}@${A.dpuHost}:${A.dpuPort}` })).toBe(1);
  expect(series(m, 'dpu_overlay_attachments', { network: 'vni100', vni: '100' })).toBe(1);
  await until('the live container reaches its peer again', () => ping(live, peerIp));
});
