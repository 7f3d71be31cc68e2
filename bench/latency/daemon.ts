// The node daemon as the warm rows use it: started in the emulated host's netns with a scrubbed environment, as
// the systemd unit runs it, and measured from /proc (resident memory, CPU time).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { BINARY } from '../../test/testkit/testbed';
import { scrubbedEnv } from './env';

export interface Daemon {
  child: ChildProcess;
  /** the daemon's own pid (`ip netns exec` execs it, but look past a forking `ip` all the same) */
  pid: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exeOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

function daemonPid(ipPid: number): number {
  if (exeOf(ipPid) === BINARY) return ipPid;
  for (const task of readdirSync(`/proc/${ipPid}/task`)) {
    for (const child of readFileSync(`/proc/${ipPid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
      if (exeOf(Number(child)) === BINARY) return Number(child);
    }
  }
  throw new Error(`no ${BINARY} process under pid ${ipPid}`);
}

export async function startDaemon(o: { netns: string; socket: string; stateDir: string; logFile: string }): Promise<Daemon> {
  rmSync(dirname(o.socket), { recursive: true, force: true });
  const args = ['netns', 'exec', o.netns, BINARY, 'daemon', '--socket', o.socket, '--state-dir', o.stateDir, '--log-file', o.logFile, '--log-level', 'info'];
  const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'inherit'], env: scrubbedEnv() });
  for (let i = 0; i < 200 && !existsSync(o.socket) && child.exitCode === null; i++) await sleep(50);
  if (!existsSync(o.socket)) {
    child.kill('SIGKILL');
    throw new Error(`the daemon did not create ${o.socket} (exit ${child.exitCode}): see ${o.logFile}`);
  }
  return { child, pid: daemonPid(child.pid as number) };
}

export async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (!d || d.child.exitCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (d.child.exitCode === null) d.child.kill('SIGKILL');
}

export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** utime + stime of the process, in clock ticks (fields 14 and 15 of /proc/PID/stat, counted after the comm). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** CLK_TCK: 100 on every Linux this runs on (getconf is asked so a different kernel does not skew the figure). */
function ticksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** Percent of one core the process used over `seconds` of doing nothing asked of it. */
export async function idleCpuPercent(pid: number, seconds: number): Promise<number> {
  const t0 = cpuTicks(pid);
  const w0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const ticks = cpuTicks(pid) - t0;
  const wall = Number(process.hrtime.bigint() - w0) / 1e9;
  return Math.round((ticks / ticksPerSecond() / wall) * 100 * 100) / 100;
}
