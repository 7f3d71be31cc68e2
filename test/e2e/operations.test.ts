/**
 * End-to-end: what an operator sees of a node (static control plane). The packaged daemon with --metrics-address
 * serves /metrics and /healthz; `status` shows the daemon's view (and the records without a daemon); `doctor`
 * passes on a healthy emulated site and names the fix for a stopped sshd, a key without the guard and a missing
 * node file; config errors reach the node file's log file; SIGHUP reopens the daemon's log.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CNI_PATH, cni, ROOT, container, dpuCtl, hostLocal, NODE_FILE, netConf, readJsonLines, removeContainers, requireBinary, type Site, site, spawnDaemon, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';
import { doctorJson, failures, httpGet, METRICS_ADDRESS, parseMetrics, runBinary, series, seriesMatching, writeConfig } from './operations-kit';

jest.setTimeout(240000);

let tb: Testbed;
let A: Site;
let socket: string;
let daemonLog: string;
let nodeDir: string;
let nodeFile: string;
let nodeLog: string;
let configFile: string;
let daemon: ChildProcess | undefined;
let authorizedKeys: string;
let plainKeys: string;

const conf = (o: { vni?: number } = {}) =>
  netConf(tb, A, { ipam: hostLocal(tb, A, '10.121.0.0/24', '10.121.0.10', '10.121.0.250'), dpu: { daemonSocket: socket }, ...(o.vni === undefined ? {} : { vni: o.vni }) });
const env = () => ({ DPU_OVERLAY_NODE_CONFIG: nodeFile });
/** This test's node file: the host's node values for conf() (DPU, PF, sysfs, state) with this test's logFile and dpu changes. */
const writeNodeFile = (dpu: Record<string, unknown> = {}) => {
  const host = JSON.parse(readFileSync(conf()[NODE_FILE] as string, 'utf8')) as Record<string, unknown>;
  writeFileSync(nodeFile, JSON.stringify({ ...host, logFile: nodeLog, dpu: { ...(host.dpu as object), ...dpu } }), { mode: 0o644 });
};
const doctorArgs = () => ['--socket', socket, '--cni-path', CNI_PATH, '--node-config', nodeFile, configFile];

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(8, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
  socket = join(tb.stateDir, 'ops-daemon', 'd.sock');
  daemonLog = join(tb.stateDir, 'ops-daemon.log');
  nodeDir = join(tb.stateDir, 'ops-node');
  nodeFile = join(nodeDir, 'node.json');
  nodeLog = join(tb.stateDir, 'ops-node.log');
  for (const p of [daemonLog, nodeLog, `${daemonLog}.1`]) rmSync(p, { force: true });
  mkdirSync(nodeDir, { recursive: true, mode: 0o755 });
  writeNodeFile();
  configFile = writeConfig(join(nodeDir, '10-vni100.conf'), conf());
  // as install.sh --dpu writes it: the plugin's key reaches the DPU only through the guard
  authorizedKeys = join(tb.stateDir, 'authorized_keys');
  plainKeys = readFileSync(authorizedKeys, 'utf8');
  writeFileSync(authorizedKeys, `command="${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${readFileSync(`${tb.privateKeyFile}.pub`, 'utf8')}`);
  daemon = await spawnDaemon(A, { socket, logFile: daemonLog, stateDir: join(tb.stateDir, 'plugin-a'), nodeConfig: nodeFile, args: ['--metrics-address', METRICS_ADDRESS], env: env() });
});

afterAll(async () => {
  await stopDaemon(daemon);
  removeContainers();
  if (plainKeys !== undefined) writeFileSync(authorizedKeys, plainKeys);
  testbedDown();
});

describe('metrics', () => {
  test('ADD, CHECK, DEL and a refused ADD are counted by command and code, with durations, steps, the DPU and the attachments', () => {
    const before = parseMetrics(httpGet(A, '/metrics').body);
    expect(series(before, 'dpu_overlay_cni_requests_total', { command: 'ADD', code: '0' })).toBeUndefined();
    const n1 = container('m1');
    const n2 = container('m2');
    const a1 = cni(A, conf(), { command: 'ADD', containerId: 'm1', netns: n1, env: env() });
    expect([a1.status, a1.json?.msg]).toEqual([0, undefined]);
    expect(cni(A, conf(), { command: 'ADD', containerId: 'm2', netns: n2, env: env() }).status).toBe(0);
    expect(cni(A, { ...conf(), prevResult: a1.json }, { command: 'CHECK', containerId: 'm1', netns: n1, env: env() }).status).toBe(0);
    expect(cni(A, conf(), { command: 'DEL', containerId: 'm2', netns: n2, env: env() }).status).toBe(0);
    const bad = cni(A, { ...conf(), vni: 99999999 }, { command: 'ADD', containerId: 'm3', netns: n2, env: env() });
    expect(bad.json?.code).toBe(7);
    // every command went through this daemon
    const via = readJsonLines(nodeLog).filter((l) => l.via === 'daemon' && typeof l.msg === 'string' && / (done|failed)$/.test(l.msg as string));
    expect(via.length).toBeGreaterThanOrEqual(4);

    const res = httpGet(A, '/metrics');
    expect(res.code).toBe(200);
    const m = parseMetrics(res.body);
    expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'ADD', code: '0' })).toBe(2);
    expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'ADD', code: '7' })).toBe(1);
    expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'CHECK', code: '0' })).toBe(1);
    expect(series(m, 'dpu_overlay_cni_requests_total', { command: 'DEL', code: '0' })).toBe(1);
    expect(series(m, 'dpu_overlay_cni_request_duration_seconds_count', { command: 'ADD' })).toBe(3);
    expect(series(m, 'dpu_overlay_cni_request_duration_seconds_count', { command: 'DEL' })).toBe(1);
    for (const step of ['allocate', 'dpu', 'moveVf', 'ipam', 'configure']) {
      expect([step, series(m, 'dpu_overlay_cni_step_duration_seconds_count', { command: 'ADD', step })]).toEqual([step, 2]);
    }
    expect(series(m, 'dpu_overlay_cni_step_duration_seconds_count', { command: 'DEL', step: 'dpu' })).toBe(1);
    const dpu = `${A.dpuUser}@${A.dpuHost}:${A.dpuPort}`;
    expect(series(m, 'dpu_overlay_dpu_connected', { dpu })).toBe(1);
    expect(series(m, 'dpu_overlay_dpu_round_trip_seconds_count', { dpu, op: 'plug' })).toBe(2);
    expect(series(m, 'dpu_overlay_dpu_round_trip_seconds_count', { dpu, op: 'check' })).toBe(1);
    expect(series(m, 'dpu_overlay_dpu_round_trip_seconds_count', { dpu, op: 'unplug' })).toBe(1);
    expect(series(m, 'dpu_overlay_attachments', { network: 'vni100', vni: '100' })).toBe(1);
    expect(res.body).toContain('# TYPE dpu_overlay_dpu_replugs_total counter');
    expect(seriesMatching(m, 'dpu_overlay_cni_request_duration_seconds_bucket', { command: 'ADD', le: '+Inf' })[0]?.[1]).toBe(3);
  });

  test('/healthz is 200 while the daemon serves and 503 naming the node file when it is missing', () => {
    expect(httpGet(A, '/healthz')).toEqual({ code: 200, body: 'ok\n' });
    renameSync(nodeFile, `${nodeFile}.away`);
    try {
      const h = httpGet(A, '/healthz');
      expect(h.code).toBe(503);
      expect(h.body).toContain(`node file ${nodeFile} is missing`);
    } finally {
      renameSync(`${nodeFile}.away`, nodeFile);
    }
    // present but refused (writable by others): as bad as missing
    chmodSync(nodeFile, 0o666);
    try {
      const h = httpGet(A, '/healthz');
      expect(h.code).toBe(503);
      expect(h.body).toContain('writable by group or others');
    } finally {
      chmodSync(nodeFile, 0o644);
    }
    expect(httpGet(A, '/healthz').code).toBe(200);
    expect(httpGet(A, '/nope').code).toBe(404);
  });
});

describe('metrics endpoint against a local user', () => {
  test('300 held-open connections (half with unfinished headers): at most 64 kept, a probe still answered meanwhile, all cut off within the timeouts', () => {
    const [host, port] = METRICS_ADDRESS.split(':') as [string, string];
    const script = `const net=require('net');let closed=0;const n=300;
for(let i=0;i<n;i++){const s=net.connect(${port},${JSON.stringify(host)},()=>{if(i%2)s.write('GET /metrics HTTP/1.1\\r\\nX-Slow: ')});s.on('error',()=>{});s.on('close',()=>closed++);s.resume()}
setTimeout(()=>{const held=n-closed;require('http').get('http://${METRICS_ADDRESS}/healthz',(r)=>{process.stdout.write(r.statusCode+' ');r.resume()}).on('error',()=>process.stdout.write('0 '));const t0=Date.now();const poll=setInterval(()=>{if(closed===n||Date.now()-t0>40000){clearInterval(poll);process.stdout.write(held+' '+(n-closed));process.exit(0)}},200)},3000)`;
    const r = spawnSync('ip', ['netns', 'exec', A.hostNetns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 90000 });
    const [probe, held, left] = r.stdout.trim().split(' ').map(Number);
    // the probe (like the kubelet's, from 127.0.0.1) got in while they were held: the oldest made room
    expect(probe).toBe(200);
    expect(held).toBeLessThanOrEqual(64);
    expect(left).toBe(0);
    expect(httpGet(A, '/healthz')).toEqual({ code: 200, body: 'ok\n' });
  });
});

describe('status', () => {
  test('--json lists what was added, from the daemon and, without one, from the records', () => {
    const fromDaemon = runBinary(A, ['status', '--json', '--socket', socket]);
    expect(fromDaemon.status).toBe(0);
    const s = JSON.parse(fromDaemon.stdout) as { source: string; dpus: Array<Record<string, unknown>>; attachments: Array<Record<string, unknown>> };
    expect(s.source).toBe('daemon');
    expect(s.attachments).toEqual([expect.objectContaining({ containerId: 'm1', ifname: 'eth0', network: 'vni100', vni: 100, state: 'ready', representor: expect.stringMatching(/vf/) })]);
    expect(s.dpus).toEqual([expect.objectContaining({ dpu: `${A.dpuUser}@${A.dpuHost}:${A.dpuPort}`, connected: true, controlPlane: 'static', lastRoundTrip: expect.objectContaining({ op: expect.any(String) }) })]);
    const text = runBinary(A, ['status', '--socket', socket]);
    expect(text.stdout).toMatch(/^daemon: running/);
    expect(text.stdout).toContain('vni100');

    const records = runBinary(A, ['status', '--json', '--socket', join(tb.stateDir, 'no-daemon.sock'), '--state-dir', join(tb.stateDir, 'plugin-a')]);
    const r = JSON.parse(records.stdout) as { source: string; attachments: Array<Record<string, unknown>> };
    expect(r.source).toBe('records');
    expect(r.attachments.map((a) => a.containerId)).toEqual(['m1']);
  });
});

describe('doctor', () => {
  test('passes on a healthy site', () => {
    const d = doctorJson(A, doctorArgs());
    expect(failures(d)).toEqual([]);
    expect(d.status).toBe(0);
    const checks = d.checks.map((c) => `${c.level} ${c.check}`);
    for (const want of ['PASS node file', 'PASS network vni100: IPAM plugin', 'PASS daemon']) expect(checks).toContain(want);
    for (const want of [': SSH', ': guard', ': OVS', ': uplink MTU', `network vni100: PF ${A.pf}`]) expect(checks.some((c) => c.startsWith('PASS') && c.endsWith(want))).toBe(true);
    const human = runBinary(A, ['doctor', ...doctorArgs()]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^PASS {2}node file: /m);
  });

  test('names the fix when sshd on the DPU is stopped', () => {
    dpuCtl('a', 'sshd-stop');
    try {
      const d = doctorJson(A, doctorArgs());
      expect(d.status).toBe(1);
      expect(failures(d)).toEqual([expect.objectContaining({ check: expect.stringMatching(/: SSH$/), fix: expect.stringContaining('start ssh') })]);
    } finally {
      dpuCtl('a', 'sshd-start');
    }
  });

  test('names the fix when the key has no guard', () => {
    const guarded = readFileSync(authorizedKeys, 'utf8');
    writeFileSync(authorizedKeys, plainKeys);
    try {
      const d = doctorJson(A, doctorArgs());
      expect(d.status).toBe(1);
      expect(failures(d)).toContainEqual(expect.objectContaining({ check: expect.stringMatching(/: guard$/), detail: expect.stringContaining('opens a shell'), fix: expect.stringContaining('install.sh --dpu') }));
    } finally {
      writeFileSync(authorizedKeys, guarded);
    }
  });

  test('names the fix when the node file is absent', () => {
    renameSync(nodeFile, `${nodeFile}.away`);
    try {
      const d = doctorJson(A, doctorArgs());
      expect(d.status).toBe(1);
      expect(failures(d)).toContainEqual(expect.objectContaining({ check: 'node file', detail: expect.stringContaining('does not exist'), fix: expect.stringContaining(`write ${nodeFile}`) }));
    } finally {
      renameSync(`${nodeFile}.away`, nodeFile);
    }
  });
});

describe('logs', () => {
  test('a config error (code 7) is logged to the node file\'s logFile before the error is printed, on both paths', () => {
    // the standalone path: the node file names no daemon socket (the node owner's field)
    writeNodeFile({ daemonSocket: '' });
    let standalone: ReturnType<typeof cni>;
    try {
      standalone = cni(A, { ...conf(), vni: 99999999 }, { command: 'ADD', containerId: 'c7', netns: container('c7'), env: env() });
    } finally {
      writeNodeFile();
    }
    expect(standalone.json?.code).toBe(7);
    const lines = () => readJsonLines(nodeLog).filter((l) => l.code === 7 && l.containerId === 'c7');
    expect(lines()).toEqual([expect.objectContaining({ command: 'ADD', err: expect.stringContaining('vni'), nodeConfig: nodeFile })]);
    const viaDaemon = cni(A, { ...conf(), vni: 99999999 }, { command: 'ADD', containerId: 'c7', netns: container('c7'), env: env() });
    expect(viaDaemon.json?.code).toBe(7);
    expect(lines()).toHaveLength(2);
    expect(lines()[1]?.via).toBe('daemon');
  });

  test('SIGHUP makes the daemon open its log file again (logrotate)', async () => {
    renameSync(daemonLog, `${daemonLog}.1`);
    daemon?.kill('SIGHUP');
    const logged = async (msg: string) => {
      const deadline = Date.now() + 10000;
      while (!(existsSync(daemonLog) && readJsonLines(daemonLog).some((l) => l.msg === msg)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return existsSync(daemonLog) && readJsonLines(daemonLog).some((l) => l.msg === msg);
    };
    expect(await logged('SIGHUP: log files opened again')).toBe(true);
    const n = container('h1');
    expect(cni(A, conf(), { command: 'ADD', containerId: 'h1', netns: n, env: env() }).status).toBe(0);
    expect(await logged('ovs-vsctl transaction')).toBe(true);
    expect(cni(A, conf(), { command: 'DEL', containerId: 'h1', netns: n, env: env() }).status).toBe(0);
  });
});

describe('help', () => {
  const cases = [['--help'], ['-h'], ['help'], ['help', 'status'], ['daemon', '--help'], ['status', '--help'], ['doctor', '--help'], ['replug', '--help'], ['keygen', '--help'], ['doctor', 'help']];
  test.each(cases.map((args) => [args.join(' '), args] as const))('dpu-overlay %s prints usage and exits 0', (_name, args) => {
    const r = runBinary(A, [...args]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/usage: dpu-overlay/);
    expect(r.stdout).not.toMatch(/^\{/);
  });
});
