/**
 * Robustness shapes (on whichever plugin path the run uses): log paths that are devices or FIFOs, a log file on a
 * full filesystem, a silent socket at dpu.daemonSocket, and mixed deadlines of two networks on one DPU. Each must
 * leave the command's result as without it and nothing behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { container, hostLocal, netConf, type Site, site, type Testbed } from '../testkit/testbed';
import { expectSuccess, type Probe, runPlugin, stressDir, type Tally, timed, violation } from './common';

function conf(tb: Testbed, A: Site, dpu: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, name = 'rob'): Record<string, unknown> {
  return netConf(tb, A, { name, vni: 5100, ipam: hostLocal(tb, A, '10.151.0.0/24', '10.151.0.10', '10.151.0.99', name), dpu, extra });
}

async function addDel(t: Tally, A: Site, what: string, id: string, c: Record<string, unknown>): Promise<string> {
  const ns = container(id);
  const add = await runPlugin(A, c, { command: 'ADD', containerId: id, netns: ns });
  timed(t, 'ADD (robustness)', add.ms);
  expectSuccess(t, `${what}: ADD`, add);
  expectSuccess(t, `${what}: DEL`, await runPlugin(A, c, { command: 'DEL', containerId: id, netns: ns }));
  return add.stderr;
}

async function logPaths(tb: Testbed, t: Tally): Promise<void> {
  const A = site(tb, 'a');
  const dir = join(stressDir(tb), 'robust-logs');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  const fifo = join(dir, 'fifo.log');
  spawnSync('mkfifo', ['-m', '600', fifo]);
  const reader = spawn('cat', [fifo], { stdio: 'ignore' });
  try {
    for (const [label, path] of [['/dev/ptmx', '/dev/ptmx'], ['/dev/null', '/dev/null'], ['a FIFO with a waiting reader', fifo], ['a directory', dir]] as const) {
      t.operations += 1;
      const stderr = await addDel(t, A, `logFile ${label}`, `roblog-${t.operations}`, conf(tb, A, {}, { logFile: path }));
      if (!/not logging to logFile/.test(stderr)) violation(t, `logFile ${label}: no warning saying what to fix`);
    }
    await new Promise((r) => setTimeout(r, 200));
    if (reader.exitCode !== null) violation(t, 'logFile a FIFO: its waiting reader was unblocked (the FIFO was opened)');
  } finally {
    reader.kill();
  }
}

async function fullLogFilesystem(tb: Testbed, t: Tally): Promise<void> {
  const A = site(tb, 'a');
  const dir = join(stressDir(tb), 'robust-full');
  mkdirSync(dir, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'dpuo-stress-full', dir]).status !== 0) return violation(t, 'full filesystem: cannot mount a tmpfs');
  try {
    writeFileSync(join(dir, 'p.log'), '', { mode: 0o640 });
    spawnSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=4k', 'count=100'], { stdio: 'ignore' });
    t.operations += 1;
    await addDel(t, A, 'log file on a full filesystem', 'robfull', conf(tb, A, {}, { logFile: join(dir, 'p.log') }));
  } finally {
    spawnSync('umount', [dir]);
  }
}

async function silentSocket(tb: Testbed, t: Tally): Promise<void> {
  const A = site(tb, 'a');
  const dir = join(stressDir(tb), 'robust-silent');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  const socket = join(dir, 'dpu.sock');
  let received = 0;
  const server = createServer((s) => s.on('data', (d) => (received += d.length)));
  await new Promise<void>((r) => server.listen(socket, r));
  chmodSync(socket, 0o600);
  try {
    t.operations += 1;
    await addDel(t, A, 'a silent daemon socket', 'robsilent', conf(tb, A, { daemonSocket: socket }));
    if (received > 0) violation(t, `a silent daemon socket: the plugin sent it ${received} bytes before any hello`);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

async function mixedDeadlines(tb: Testbed, t: Tally): Promise<void> {
  const A = site(tb, 'a');
  t.operations += 1;
  // A network with a tiny deadline first (on the daemon path it may open the shared connection), then a large ADD.
  await runPlugin(A, conf(tb, A, { timeoutMs: 100 }, {}, 'robhasty'), { command: 'STATUS' });
  const vteps = Array.from({ length: 200 }, (_, i) => `10.252.${i >> 7}.${(i & 127) + 1}`);
  await addDel(t, A, 'a 200-VTEP ADD after a 100 ms STATUS', 'robdeadline', conf(tb, A, { remoteVteps: vteps, timeoutMs: 30000 }));
}

export const ROBUSTNESS_PROBES: ReadonlyArray<readonly [string, Probe]> = [
  ['log paths that are devices, FIFOs, directories', logPaths],
  ['a log file on a full filesystem', fullLogFilesystem],
  ['a silent daemon socket', silentSocket],
  ['mixed deadlines on one DPU', mixedDeadlines],
];
