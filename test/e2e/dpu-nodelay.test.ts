/**
 * End-to-end: every SSH connection to a DPU has Nagle's algorithm off (TCP_NODELAY), seen at the system-call level
 * with strace on the packaged binary: the standalone plugin's own connection, and the daemon's. With Nagle on, each
 * small SSH request after the first waits for the DPU's delayed ACK (40 ms on Linux).
 * Both paths by itself (not in the e2e-daemon project).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BINARY, container, envFor, type NetConfig, netConf, NODE_FILE, nodeEnv, readJsonLines, removeContainers, requireBinary, runInNetns, type Site, site, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(180000);

let tb: Testbed;
let A: Site;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a', 1, { path: 'standalone' });
  A = site(tb, 'a');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

/**
 * The fds strace saw connect to the DPU's sshd, and those it set TCP_NODELAY=1 on, per process
 * (`strace -f` prefixes each line with the pid).
 */
function dpuSockets(trace: string, s: Site): { connected: string[]; nodelay: string[] } {
  const connected: string[] = [];
  const nodelay: string[] = [];
  for (const line of trace.split('\n')) {
    const m = /^(\d+)\s+(connect|setsockopt)\((\d+), (.*)$/.exec(line);
    if (!m) continue;
    const fd = `${m[1]}:${m[3]}`;
    if (m[2] === 'connect' && m[4]?.includes(`sin_port=htons(${s.dpuPort})`) && m[4].includes(`inet_addr("${s.dpuHost}")`)) connected.push(fd);
    if (m[2] === 'setsockopt' && /SOL_TCP, TCP_NODELAY, \[1\]/.test(m[4] ?? '')) nodelay.push(fd);
  }
  return { connected, nodelay };
}

/** The socket is the node owner's: it goes into the config's own node file, which nodeEnv names for the plugin. */
function conf(socket: string): NetConfig {
  return netConf(tb, A, { dpu: { daemonSocket: socket } });
}

const traceFile = (name: string) => join(tb.stateDir, `strace-${name}.txt`);
const strace = (out: string) => ['-f', '-qq', '-e', 'trace=connect,setsockopt', '-o', out];

it('standalone: the plugin sets TCP_NODELAY on its connection to the DPU', async () => {
  const out = traceFile('standalone');
  rmSync(out, { force: true });
  const ns = container('nodelay-s');
  const add = await runInNetns(A.hostNetns, 'strace', [...strace(out), BINARY], envFor({ command: 'ADD', containerId: 'nodelay-s', netns: ns }, nodeEnv(A, conf(''))), JSON.stringify(conf('')));
  expect(add.status).toBe(0);
  const del = await runInNetns(A.hostNetns, BINARY, [], envFor({ command: 'DEL', containerId: 'nodelay-s', netns: ns }, nodeEnv(A, conf(''))), JSON.stringify(conf('')));
  expect(del.status).toBe(0);
  const { connected, nodelay } = dpuSockets(readFileSync(out, 'utf8'), A);
  expect(connected.length).toBeGreaterThanOrEqual(1);
  for (const fd of connected) expect(nodelay).toContain(fd);
});

it('daemon: the daemon sets TCP_NODELAY on its connection to the DPU', async () => {
  const out = traceFile('daemon');
  rmSync(out, { force: true });
  const socket = join(tb.stateDir, 'daemon-nodelay', 'dpu.sock');
  const log = join(tb.stateDir, 'daemon-nodelay.log');
  const p: ChildProcess = spawn('ip', ['netns', 'exec', A.hostNetns, 'strace', ...strace(out), BINARY, 'daemon', '--socket', socket, '--log-file', log, '--state-dir', join(tb.stateDir, 'plugin-a'), '--node-config', conf(socket)[NODE_FILE] as string, '--empty-bridge-grace-ms', '0'], { stdio: 'ignore' });
  try {
    const deadline = Date.now() + 20000;
    while (!readJsonLines(log).some((l) => l.msg === 'dpu-overlay daemon listening')) {
      if (p.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon under strace did not start listening (see ${log})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ns = container('nodelay-d');
    const add = await runInNetns(A.hostNetns, BINARY, [], envFor({ command: 'ADD', containerId: 'nodelay-d', netns: ns }, nodeEnv(A, conf(socket))), JSON.stringify(conf(socket)));
    expect(add.status).toBe(0);
    const del = await runInNetns(A.hostNetns, BINARY, [], envFor({ command: 'DEL', containerId: 'nodelay-d', netns: ns }, nodeEnv(A, conf(socket))), JSON.stringify(conf(socket)));
    expect(del.status).toBe(0);
    // The daemon ran the commands (its log has their closing lines), so the connection in the trace is the daemon's.
    expect(readJsonLines(join(tb.stateDir, 'plugin-a.log')).some((l) => l.msg === 'ADD done' && l.containerId === 'nodelay-d' && l.via === 'daemon')).toBe(true);
  } finally {
    // strace blocks fatal signals while it traces a command (-o FILE PROG): stop the daemon itself, strace follows.
    const pid = readJsonLines(log).find((l) => l.msg === 'dpu-overlay daemon started')?.pid;
    const exited = new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r)));
    if (typeof pid === 'number') process.kill(pid, 'SIGTERM');
    else p.kill('SIGKILL');
    await exited;
  }
  expect(existsSync(out)).toBe(true);
  const { connected, nodelay } = dpuSockets(readFileSync(out, 'utf8'), A);
  expect(connected.length).toBeGreaterThanOrEqual(1);
  for (const fd of connected) expect(nodelay).toContain(fd);
});
