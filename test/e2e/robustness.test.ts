/**
 * End-to-end: what a network config or a fault can do to the plugin and the daemon, on both paths. A log path
 * that is a device or a FIFO is never opened; a full log filesystem fails no command and kills no daemon; a
 * silent socket at dpu.daemonSocket gets nothing and never hangs an ADD; evicted daemon loggers are closed; a
 * short deadline of one network does not become another's on the daemon's shared DPU connection.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  BINARY, cni, type CniOutcome, container, dpuExec, envFor, hostLocal, netConf, type NetConfig, nodeEnv, removeContainers, requireBinary, type Site, site, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(300000);

let tb: Testbed;
let A: Site;
const spawned: ChildProcess[] = [];
let fullMount: string | undefined;

interface OwnDaemon {
  proc: ChildProcess;
  socket: string;
}

/** Resolves once the socket says hello (the daemon's log may be unusable, so its "listening" line is not waited for). */
async function hello(socket: string, deadlineMs = 15000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(socket);
      s.once('data', (d) => {
        s.destroy();
        resolve(String(d).includes('dpu-overlay-daemon'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`no daemon hello on ${socket}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A daemon of the test's own; empty VNI bridges go with the DEL (grace 0), as with the testkit's spawnDaemon. */
async function ownDaemon(name: string, logFile: string, extra: string[] = []): Promise<OwnDaemon> {
  const socket = join(tb.stateDir, `rob-daemon-${name}`, 'dpu.sock');
  rmSync(join(tb.stateDir, `rob-daemon-${name}`), { recursive: true, force: true });
  const proc = spawn('ip', ['netns', 'exec', A.hostNetns, BINARY, 'daemon', '--socket', socket, '--log-file', logFile, '--log-level', 'debug', '--state-dir', join(tb.stateDir, 'plugin-a'), '--empty-bridge-grace-ms', '0', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.resume();
  spawned.push(proc);
  await hello(socket);
  return { proc, socket };
}


const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

/** A network config on host a; logFile, the daemon socket and dpu's node values go into a node file of their own (NODE_FILE). */
function conf(o: { socket?: string; logFile?: string; dpu?: Record<string, unknown>; name?: string } = {}): NetConfig {
  return netConf(tb, A, {
    name: o.name,
    ipam: hostLocal(tb, A, '10.103.0.0/24', '10.103.0.10', '10.103.0.250'),
    dpu: { daemonSocket: o.socket ?? '', ...o.dpu },
    extra: o.logFile === undefined ? {} : { logFile: o.logFile },
  });
}

const containerPorts = () => dpuExec('a', 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=container').split('\n').filter(Boolean);

/** ADD then DEL of one container: both must succeed and leave no port. */
function addDel(id: string, c: NetConfig): { add: CniOutcome; del: CniOutcome } {
  const ns = container(`rob-${id}`);
  const add = cni(A, c, { command: 'ADD', containerId: id, netns: ns });
  const del = cni(A, c, { command: 'DEL', containerId: id, netns: ns });
  return { add, del };
}

beforeAll(() => {
  requireBinary();
  tb = testbedUp(16, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
});

afterAll(async () => {
  for (const p of spawned) await stopDaemon(p);
  removeContainers();
  if (fullMount) spawnSync('umount', ['-l', fullMount]);
  testbedDown();
});

describe('a log path that is not a regular file is never opened; the command runs and warns once', () => {
  test('/dev/ptmx as logFile (standalone): ADD and DEL succeed, /dev/ptmx is never opened (strace)', () => {
    const trace = join(tb.stateDir, 'rob-ptmx.trace');
    const c = conf({ logFile: '/dev/ptmx' });
    const ns = container('rob-ptmx');
    const run = (command: string) => spawnSync('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace, 'ip', 'netns', 'exec', A.hostNetns, BINARY], { input: JSON.stringify(c), env: envFor({ command, containerId: 'ptmx', netns: ns }, nodeEnv(A, c)), encoding: 'utf8', timeout: 120000 });
    const add = run('ADD');
    expect([add.status, add.stderr]).toEqual([0, expect.stringMatching(/not logging to logFile \/dev\/ptmx: it is not a regular file \(a character device\); name a regular file/)]);
    expect(readFileSync(trace, 'utf8')).not.toMatch(/open[^\n]*"\/dev\/ptmx"/);
    const del = run('DEL');
    expect(del.status).toBe(0);
    expect(readFileSync(trace, 'utf8')).not.toMatch(/open[^\n]*"\/dev\/ptmx"/);
    expect(containerPorts()).toEqual([]);
  });

  test('a FIFO as logFile: ADD and DEL succeed and the FIFO\'s waiting reader is never unblocked', async () => {
    const fifo = join(tb.stateDir, 'rob-fifo.log');
    rmSync(fifo, { force: true });
    expect(spawnSync('mkfifo', ['-m', '600', fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo], { stdio: 'ignore' });
    spawned.push(reader);
    const { add, del } = addDel('fifo', conf({ logFile: fifo }));
    expect([add.status, del.status]).toEqual([0, 0]);
    expect(add.stderr).toMatch(/not a regular file \(a FIFO\)/);
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(reader)).toBe(true);
    reader.kill();
    rmSync(fifo, { force: true });
  });

  test('daemon path: a daemon whose --log-file is /dev/ptmx serves, and a command naming a FIFO log runs through it', async () => {
    const d = await ownDaemon('ptmx', '/dev/ptmx');
    const fifo = join(tb.stateDir, 'rob-fifo2.log');
    rmSync(fifo, { force: true });
    spawnSync('mkfifo', ['-m', '600', fifo]);
    const reader = spawn('cat', [fifo], { stdio: 'ignore' });
    spawned.push(reader);
    const { add, del } = addDel('dfifo', conf({ socket: d.socket, logFile: fifo }));
    expect([add.status, del.status, add.json?.msg]).toEqual([0, 0, undefined]);
    expect(add.stderr).toMatch(/not a regular file \(a FIFO\)/);
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(reader)).toBe(true);
    expect(alive(d.proc)).toBe(true);
    reader.kill();
    rmSync(fifo, { force: true });
    await stopDaemon(d.proc);
  });
});

describe('a full log filesystem fails no command and kills no daemon', () => {
  let logDir: string;

  beforeAll(() => {
    logDir = join(tb.stateDir, 'rob-full');
    mkdirSync(logDir, { recursive: true });
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'rob-full', logDir]).status).toBe(0);
    fullMount = logDir;
    for (const f of ['plugin.log', 'daemon.log']) writeFileSync(join(logDir, f), '', { mode: 0o640 });
    spawnSync('dd', ['if=/dev/zero', `of=${join(logDir, 'filler')}`, 'bs=4k', 'count=100'], { stdio: 'ignore' });
    expect(spawnSync('sh', ['-c', `echo x >> ${join(logDir, 'plugin.log')}`]).status).not.toBe(0);
  });

  afterAll(() => {
    spawnSync('umount', [logDir]);
    fullMount = undefined;
  });

  test('standalone: ADD and DEL succeed with the log file on a full filesystem (one warning)', () => {
    const { add, del } = addDel('full', conf({ logFile: join(logDir, 'plugin.log') }));
    expect([add.status, add.json?.msg, del.status]).toEqual([0, undefined, 0]);
    expect(add.stderr.match(/cannot write to log file .*plugin.log \(ENOSPC\)/g)).toHaveLength(1);
    expect(containerPorts()).toEqual([]);
  });

  test('daemon path: the daemon logging to a full filesystem runs ADD and DEL and survives its recovery polls', async () => {
    const d = await ownDaemon('full', join(logDir, 'daemon.log'), ['--poll-interval-ms', '200']);
    const { add, del } = addDel('dfull', conf({ socket: d.socket, logFile: join(logDir, 'plugin.log') }));
    expect([add.status, add.json?.msg, del.status]).toEqual([0, undefined, 0]);
    // With an attachment recorded, every recovery poll probes the DPU and logs (to the full filesystem).
    const ns = container('rob-dfull2');
    expect(cni(A, conf({ socket: d.socket }), { command: 'ADD', containerId: 'dfull2', netns: ns }).status).toBe(0);
    await new Promise((r) => setTimeout(r, 2000));
    expect(alive(d.proc)).toBe(true);
    expect(cni(A, conf({ socket: d.socket }), { command: 'DEL', containerId: 'dfull2', netns: ns }).status).toBe(0);
    expect(alive(d.proc)).toBe(true);
    await stopDaemon(d.proc);
    expect(d.proc.exitCode).toBe(0);
  });
});

describe('a silent socket at dpu.daemonSocket', () => {
  let server: Server;
  let received = 0;
  let socket: string;

  beforeAll(async () => {
    const dir = join(tb.stateDir, 'rob-silent');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    socket = join(dir, 'dpu.sock');
    server = createServer((s) => s.on('data', (d) => (received += d.length)));
    await new Promise<void>((r) => server.listen(socket, r));
    chmodSync(socket, 0o600);
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('gets nothing, and ADD, CHECK and DEL run standalone instead of hanging', () => {
    const c = conf({ socket });
    const ns = container('rob-silent');
    const add = cni(A, c, { command: 'ADD', containerId: 'silent', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    expect(cni(A, { ...c, prevResult: add.json }, { command: 'CHECK', containerId: 'silent', netns: ns }).status).toBe(0);
    expect(cni(A, c, { command: 'DEL', containerId: 'silent', netns: ns }).status).toBe(0);
    expect(received).toBe(0);
  });
});

describe('the daemon closes the log files it evicts', () => {
  test('45 STATUS calls naming 45 log files: the daemon holds at most 32 of them open', async () => {
    const d = await ownDaemon('fds', join(tb.stateDir, 'rob-daemon-fds.log'));
    const pid = d.proc.pid as number;
    const logsDir = join(tb.stateDir, 'rob-logs');
    rmSync(logsDir, { recursive: true, force: true });
    mkdirSync(logsDir, { mode: 0o700 });
    const openLogs = () => readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return spawnSync('readlink', [`/proc/${pid}/fd/${fd}`], { encoding: 'utf8' }).stdout.startsWith(logsDir);
      } catch {
        return false;
      }
    }).length;
    for (let i = 0; i < 45; i++) expect(cni(A, conf({ socket: d.socket, logFile: join(logsDir, `n${i}.log`) }), { command: 'STATUS' }).status).toBe(0);
    expect(existsSync(join(logsDir, 'n44.log'))).toBe(true);
    // Evicted files are closed after a grace period for commands still using them.
    await new Promise((r) => setTimeout(r, 12000));
    expect(openLogs()).toBeLessThanOrEqual(32);
    await stopDaemon(d.proc);
  });
});

describe('deadlines per request on the daemon\'s shared DPU connection', () => {
  test('a STATUS with timeoutMs 100 first, then an ADD with 300 VTEPs and the default deadline: ADD and DEL succeed, nothing left', async () => {
    const d = await ownDaemon('deadlines', join(tb.stateDir, 'rob-daemon-deadlines.log'));
    const hasty = conf({ socket: d.socket, name: 'hasty', dpu: { timeoutMs: 100 } });
    cni(A, hasty, { command: 'STATUS' });
    const vteps = Array.from({ length: 300 }, (_, i) => `10.250.${i >> 7}.${(i & 127) + 1}`);
    const big = conf({ socket: d.socket, dpu: { remoteVteps: vteps, timeoutMs: 60000 } });
    const { add, del } = addDel('vteps', big);
    expect([add.status, add.json?.msg, del.status]).toEqual([0, undefined, 0]);
    expect(containerPorts()).toEqual([]);
    expect(dpuExec('a', 'ovs-vsctl', 'list-br').split('\n').filter((b) => b.startsWith('br-vni'))).toEqual([]);
    await stopDaemon(d.proc);
  });
});
