// The DPU's own share of a warm ADD or DEL, measured: the command lines the plugin actually sends, recorded at
// the DPU's sshd (for the capture only, a forced command keeps each line and its output, then runs the line as
// the testbed's own forced command would: the guard, or `sh -s` where there is none), then replayed locally on
// the emulated DPU (its mount and network namespaces), through the guard as sshd runs it and without it. No
// hand-written copy that could drift from the plugin. UUIDs the DPU handed out in an earlier line's output (the
// port an ADD created, an OVN port) are mapped to the replay's own, so a recorded DEL removes what the replayed
// ADD created; each replay is checked to have plugged (or unplugged) the representor's port.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type Site, type Testbed } from '../../test/testkit/testbed';

export const GUARD = join(ROOT, 'guard', 'dpu-guard.sh');
/** sshd's PATH on the testbed's DPUs (its sshd_config SetEnv). */
const DPU_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** What one ADD or DEL sent: each line (one SSH exec) with the output the DPU gave it. */
export interface Recorded {
  lines: string[];
  outputs: string[];
}

export interface Capture {
  add: Recorded;
  del: Recorded;
  /** the representor the ADD plugged (from its `ip link set dev <rep> mtu ...`) */
  representor: string;
}

/** The testbed's authorized_keys line: its forced command (the guard with its options), if any, and the key. */
function keyLine(tb: Testbed): { forced?: string; key: string; file: string; text: string } {
  const file = join(tb.stateDir, 'authorized_keys');
  const text = readFileSync(file, 'utf8');
  const line = text.trim().split('\n')[0] as string;
  const m = /^command="([^"]*)",\S+ (.*)$/.exec(line);
  return m ? { forced: m[1], key: m[2] as string, file, text } : { key: line, file, text };
}

/** The forced command sshd runs for the plugin's key on this testbed (undefined: none, sshd runs `sh -s` itself). */
export function forcedCommand(tb: Testbed): string | undefined {
  return keyLine(tb).forced;
}

/**
 * Puts the recorder in front of the testbed's forced command until stop(). Only connections opened meanwhile
 * go through it (sshd reads authorized_keys at each login): start the daemon that is to be recorded after this.
 */
export function startRecording(tb: Testbed): { take(): Recorded; stop(): void } {
  const k = keyLine(tb);
  const dir = join(tb.stateDir, 'bench-recording');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const recorder = join(dir, 'record.sh');
  // One record per exec: the line, and the output base64 on one line (the output may span lines).
  writeFileSync(recorder, `#!/bin/sh
[ "$SSH_ORIGINAL_COMMAND" = "sh -s" ] || exec "$@"
line=$(cat)
out=$(printf '%s\\n' "$line" | "$@")
rc=$?
printf '%s\\n' "$line" >>'${dir}/lines'
printf '%s\\n' "$out" | base64 -w0 >>'${dir}/outputs'
echo >>'${dir}/outputs'
printf '%s\\n' "$out"
exit $rc
`);
  chmodSync(recorder, 0o755);
  writeFileSync(k.file, `command="${recorder} ${k.forced ?? 'sh -s'}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${k.key}\n`);
  const read = (f: string) => {
    try {
      return readFileSync(join(dir, f), 'utf8').split('\n').slice(0, -1);
    } catch {
      return [];
    }
  };
  return {
    take() {
      const lines = read('lines');
      const outputs = read('outputs').map((o) => Buffer.from(o, 'base64').toString('utf8'));
      rmSync(join(dir, 'lines'), { force: true });
      rmSync(join(dir, 'outputs'), { force: true });
      if (outputs.length !== lines.length) throw new Error(`recorder: ${lines.length} lines but ${outputs.length} outputs`);
      return { lines, outputs };
    },
    stop() {
      writeFileSync(k.file, k.text);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function representorOf(add: Recorded): string {
  for (const l of add.lines) {
    const m = /(?:^| )ip link set dev (\S+) mtu /.exec(l);
    if (m) return m[1] as string;
  }
  throw new Error(`no "ip link set dev <representor>" in the recorded ADD: ${add.lines.join(' | ').slice(0, 500)}`);
}

function anchorPid(tb: Testbed, s: Site): string {
  return readFileSync(join(tb.stateDir, `dpu-${s.dpu}`, 'anchor.pid'), 'utf8').trim();
}

/** Runs argv on the emulated DPU (its mount, network and UTS namespaces, as its sshd), env as sshd gives it. */
function onDpu(pid: string, argv: string[], env: Record<string, string>, input: string) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('nsenter', ['-t', pid, '-m', '-n', '-u', '--', 'env', '-i', `PATH=${DPU_PATH}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], { input, encoding: 'utf8', timeout: 60000 });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Is a Port of this name in the DPU's database (any bridge)? */
function portExists(pid: string, representor: string): boolean {
  const r = onDpu(pid, ['ovs-vsctl', '--timeout=10', '--bare', '--columns=_uuid', 'find', 'Port', `name=${representor}`], {}, '');
  if (r.status !== 0) throw new Error(`ovs-vsctl find Port name=${representor} on the DPU: ${r.stderr}`);
  return r.stdout.trim() !== '';
}

/** The login shell sshd starts a command with (`<shell> -c <command>`): the DPU user's, from the DPU's /etc/passwd. */
function loginShell(pid: string, user: string): string {
  const r = onDpu(pid, ['getent', 'passwd', user], {}, '');
  const shell = r.stdout.trim().split(':')[6];
  return r.status === 0 && shell ? shell : '/bin/sh';
}

export type Via = 'guard' | 'plain';

/**
 * A replayer of one capture on one DPU: add() and del() replay the recorded lines (timed: the sum of the lines'
 * runs, from spawn to exit of the shell sshd would start), as sshd runs them with `via`: `<login shell> -c <forced>`
 * (the guard with its options) or, plain, `<login shell> -c 'sh -s'`, the line on stdin. Throws unless each line exits 0 and the
 * representor's port is there after add() and gone after del().
 */
export function replayer(tb: Testbed, s: Site, cap: Capture, via: Via, forced = GUARD): { add(): number; del(): number } {
  const pid = anchorPid(tb, s);
  const command = via === 'guard' ? forced : 'sh -s';
  const shell = loginShell(pid, s.dpuUser);
  let map = new Map<string, string>();
  const run = (rec: Recorded, what: string): number => {
    let ms = 0;
    rec.lines.forEach((recorded, i) => {
      let line = recorded;
      for (const [from, to] of map) line = line.split(from).join(to);
      const r = onDpu(pid, [shell, '-c', command], { SSH_ORIGINAL_COMMAND: 'sh -s' }, `${line}\n`);
      if (r.status !== 0) throw new Error(`replaying the recorded ${what} line ${i + 1} (${via}) on the DPU: exit ${r.status}: ${r.stderr.slice(0, 400)} (line: ${line.slice(0, 300)})`);
      ms += r.ms;
      const was = rec.outputs[i]?.match(UUID) ?? [];
      const now = r.stdout.match(UUID) ?? [];
      was.forEach((u, k) => now[k] !== undefined && u !== now[k] && map.set(u, now[k] as string));
    });
    return ms;
  };
  return {
    add() {
      map = new Map();
      const ms = run(cap.add, 'ADD');
      if (!portExists(pid, cap.representor)) throw new Error(`the replayed ADD (${via}) left no port ${cap.representor} on the DPU`);
      return ms;
    },
    del() {
      const ms = run(cap.del, 'DEL');
      if (portExists(pid, cap.representor)) throw new Error(`the replayed DEL (${via}) left port ${cap.representor} on the DPU`);
      return ms;
    },
  };
}
