/**
 * End-to-end: metrics, status and doctor on the OVN control plane (testbed.sh up --ovn: the key goes through
 * guard --ovn). /metrics counts ADD/CHECK/DEL; doctor passes, then names the fix when ovn-controller is down.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CNI_PATH, cni, container, dpuCtl, hostLocal, NODE_FILE, netConf, removeContainers, requireBinary, type Site, site, spawnDaemon, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';
import { doctorJson, failures, httpGet, METRICS_ADDRESS, parseMetrics, runBinary, series, writeConfig } from './operations-kit';

jest.setTimeout(240000);

let tb: Testbed;
let A: Site;
let socket: string;
let nodeFile: string;
let configFile: string;
let daemon: ChildProcess | undefined;

const ovnConf = () =>
  netConf(tb, A, { ipam: hostLocal(tb, A, '10.122.0.0/24', '10.122.0.10', '10.122.0.99'), dpu: { controlPlane: 'ovn', timeoutMs: 15000, daemonSocket: socket }, drop: ['dpu.localVtep', 'dpu.remoteVteps'], extra: { mtu: 1400 } });
const env = () => ({ DPU_OVERLAY_NODE_CONFIG: nodeFile });
const doctorArgs = () => ['--socket', socket, '--cni-path', CNI_PATH, '--node-config', nodeFile, configFile];

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(4, 'a,b', 1, { ovn: true, path: 'standalone' });
  A = site(tb, 'a');
  socket = join(tb.stateDir, 'ops-ovn-daemon', 'd.sock');
  const nodeDir = join(tb.stateDir, 'ops-ovn-node');
  nodeFile = join(nodeDir, 'node.json');
  mkdirSync(nodeDir, { recursive: true, mode: 0o755 });
  // this test's node file: the node values of ovnConf (DPU, PF, sysfs, state) with its own log level
  const host = JSON.parse(readFileSync(ovnConf()[NODE_FILE] as string, 'utf8')) as Record<string, unknown>;
  writeFileSync(nodeFile, JSON.stringify({ ...host, logLevel: 'debug' }), { mode: 0o644 });
  configFile = writeConfig(join(nodeDir, '10-ovn.conf'), ovnConf());
  const log = join(tb.stateDir, 'ops-ovn-daemon.log');
  rmSync(log, { force: true });
  daemon = await spawnDaemon(A, { socket, logFile: log, stateDir: join(tb.stateDir, 'plugin-a'), nodeConfig: nodeFile, args: ['--metrics-address', METRICS_ADDRESS], env: env() });
});

afterAll(async () => {
  await stopDaemon(daemon);
  removeContainers();
  testbedDown();
});

test('/metrics counts ADD, CHECK and DEL on the OVN control plane; status shows the DPU as ovn', () => {
  const n1 = container('o1');
  const n2 = container('o2');
  const a1 = cni(A, ovnConf(), { command: 'ADD', containerId: 'o1', netns: n1, env: env() });
  expect([a1.status, a1.json?.msg]).toEqual([0, undefined]);
  expect(cni(A, ovnConf(), { command: 'ADD', containerId: 'o2', netns: n2, env: env() }).status).toBe(0);
  expect(cni(A, { ...ovnConf(), prevResult: a1.json }, { command: 'CHECK', containerId: 'o1', netns: n1, env: env() }).status).toBe(0);
  expect(cni(A, ovnConf(), { command: 'DEL', containerId: 'o2', netns: n2, env: env() }).status).toBe(0);
  const m = parseMetrics(httpGet(A, '/metrics').body);
  const dpu = `${A.dpuUser}@${A.dpuHost}:${A.dpuPort}`;
  expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'ADD', code: '0' })).toBe(2);
  expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'CHECK', code: '0' })).toBe(1);
  expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'DEL', code: '0' })).toBe(1);
  expect(series(m, 'dpu_overlay_cni_step_duration_seconds_count', { command: 'ADD', step: 'dpu' })).toBe(2);
  expect(series(m, 'dpu_overlay_dpu_connected', { dpu })).toBe(1);
  expect(series(m, 'dpu_overlay_dpu_round_trip_seconds_count', { dpu, op: 'plug' })).toBe(2);
  expect(series(m, 'dpu_overlay_attachments', { network: 'vni100', vni: '100' })).toBe(1);
  const s = JSON.parse(runBinary(A, ['status', '--json', '--socket', socket]).stdout) as { dpus: Array<Record<string, unknown>>; attachments: Array<Record<string, unknown>> };
  expect(s.dpus).toEqual([expect.objectContaining({ dpu, controlPlane: 'ovn', connected: true })]);
  expect(s.attachments.map((a) => [a.containerId, a.state])).toEqual([['o1', 'ready']]);
});

test('doctor passes on the healthy OVN site and names the fix when ovn-controller is down', () => {
  const healthy = doctorJson(A, doctorArgs());
  expect(failures(healthy)).toEqual([]);
  expect(healthy.checks.map((c) => `${c.level} ${c.check.replace(/^DPU \S+: /, '')}`)).toEqual(expect.arrayContaining(['PASS guard', 'PASS ovn-controller', 'PASS OVN chassis', 'PASS uplink MTU']));
  dpuCtl('a', 'ovn-controller-stop');
  try {
    const down = doctorJson(A, doctorArgs());
    expect(down.status).toBe(1);
    expect(failures(down)).toEqual([expect.objectContaining({ check: expect.stringMatching(/: ovn-controller$/), detail: expect.stringContaining('ovn-controller'), fix: expect.stringContaining('start ovn-controller') })]);
  } finally {
    dpuCtl('a', 'ovn-controller-start');
  }
});
