/**
 * Security: host key pinning (a changed DPU host key is refused before anything is sent), private key
 * permissions, stateDir and log file modes, no key material in logs, and the DPU forced-command guard
 * (install.sh --dpu) refusing everything but the plugin's own operations.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { container, dpuExec, hostLocal, netConf, PREFIX, ROOT, sh, type Site, site, type Testbed } from '../e2e/helpers';
import {
  diffLines, expectCniError, expectSuccess, forcedWrapper, hostSnapshot, newKey, newTally, type Outcome, recordedCommands, runPlugin, stressDir,
  type Tally, timed, violation,
} from './common';
import { oversize } from './oversize';

const GUARD_DIR = '/usr/local/libexec/dpu-overlay';

export interface SecurityOptions {
  progress?: (line: string) => void;
}

interface Ctx { tb: Testbed; t: Tally; A: Site; conf(dpu?: Record<string, unknown>, extra?: Record<string, unknown>): Record<string, unknown> }

async function op(c: Ctx, command: string, containerId: string, netns: string, conf: Record<string, unknown>): Promise<Outcome> {
  const out = await runPlugin(c.A, conf, { command, containerId, netns });
  timed(c.t, `${command} (security)`, out.ms);
  return out;
}

async function hostKeyPinning(c: Ctx): Promise<void> {
  const { t, tb, A } = c;
  const rec = forcedWrapper(tb, 'pin-record');
  const other = newKey(tb, 'not_the_dpu_host_key');
  const [type, blob] = readFileSync(`${other}.pub`, 'utf8').trim().split(/\s+/);
  const knownHosts = join(stressDir(tb), 'known_hosts.changed');
  writeFileSync(knownHosts, `${A.dpuHost} ${type} ${blob}\n`);
  const ns = container('pin');
  const dirs = [join(tb.stateDir, `plugin-${A.name}`), join(tb.stateDir, `ipam-${A.name}-sec`)];
  const before = hostSnapshot(A, dirs);
  for (const [label, dpu] of [
    ['known_hosts with another key', { privateKeyFile: rec.key, knownHostsFile: knownHosts }],
    ['hostKeyFingerprint of another key', { privateKeyFile: rec.key, knownHostsFile: undefined, hostKeyFingerprint: `SHA256:${'Q'.repeat(43)}` }],
  ] as const) {
    const out = await op(c, 'ADD', 'pin-1', ns, c.conf(dpu));
    t.faults += 1;
    expectCniError(t, `host key pinning (${label})`, out, 111);
    if (out.json && !/does not match|no host key/.test(String(out.json.msg))) violation(t, `host key pinning (${label}): unclear message: ${String(out.json.msg)}`);
  }
  const after = hostSnapshot(A, dirs);
  if (after !== before) violation(t, `host key pinning: host changed: ${diffLines(before, after)}`);
  const sent = recordedCommands(rec.log);
  if (sent.length) violation(t, `host key pinning: ${sent.length} command(s) reached the DPU with a mismatching host key`);
}

async function privateKeyModes(c: Ctx): Promise<void> {
  const { t, tb } = c;
  const ns = container('keymode');
  for (const mode of [0o640, 0o604, 0o644]) {
    const key = newKey(tb, `loose_${mode.toString(8)}`);
    chmodSync(key, mode);
    const out = await op(c, 'ADD', 'keymode-1', ns, c.conf({ privateKeyFile: key }));
    t.faults += 1;
    expectCniError(t, `private key mode ${mode.toString(8)}`, out, 7);
    if (out.json && !String(out.json.msg).includes(`chmod 600 ${key}`)) violation(t, `private key mode ${mode.toString(8)}: message does not say how to fix it: ${String(out.json.msg)}`);
  }
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

async function stateAndLogModes(c: Ctx): Promise<void> {
  const { t, tb } = c;
  const base = join(stressDir(tb), 'modes');
  rmSync(base, { recursive: true, force: true });
  const stateDir = join(base, 'state', 'dpu-overlay');
  const logFile = join(base, 'log', 'dpu-overlay.log');
  const conf = c.conf({}, { stateDir, logFile, logLevel: 'trace' });
  const ns = container('modes');
  const add = await op(c, 'ADD', 'modes-1', ns, conf);
  if (!expectSuccess(t, 'modes: ADD', add)) return;
  const want: Array<[string, number]> = [
    [stateDir, 0o700], [join(stateDir, 'allocations'), 0o700], [join(stateDir, 'attachments'), 0o700], [join(base, 'log'), 0o700], [logFile, 0o600],
    ...readdirSync(join(stateDir, 'allocations')).map((f): [string, number] => [join(stateDir, 'allocations', f), 0o600]),
    ...readdirSync(join(stateDir, 'attachments')).map((f): [string, number] => [join(stateDir, 'attachments', f), 0o600]),
  ];
  for (const [path, m] of want) {
    t.operations += 1;
    if (!existsSync(path)) violation(t, `modes: ${path} was not created`);
    else if (mode(path) !== m) violation(t, `modes: ${path} has mode ${mode(path).toString(8)}, want ${m.toString(8)}`);
  }
  expectSuccess(t, 'modes: DEL', await op(c, 'DEL', 'modes-1', ns, conf));
}

/** The base64 body lines of every private key the stress run made or used. */
function keyMaterial(tb: Testbed): string[] {
  const keys = [tb.privateKeyFile, ...readdirSync(stressDir(tb)).filter((f) => f.endsWith('_ed25519') || f.startsWith('loose_') || f === 'not_the_dpu_host_key').map((f) => join(stressDir(tb), f))];
  return keys.filter(existsSync).flatMap((k) => readFileSync(k, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')).map((l) => l.slice(0, 40)));
}

function logsHoldNoKeys(c: Ctx): void {
  const { t, tb } = c;
  const material = keyMaterial(tb);
  if (material.length < 4) violation(t, `logs: found only ${material.length} key lines to look for`);
  const logs = [
    ...readdirSync(tb.stateDir).filter((f) => f.endsWith('.log')).map((f) => join(tb.stateDir, f)),
    join(stressDir(tb), 'modes', 'log', 'dpu-overlay.log'),
  ].filter(existsSync);
  for (const log of logs) {
    const text = readFileSync(log, 'utf8');
    t.operations += 1;
    if (/PRIVATE KEY/.test(text)) violation(t, `logs: ${log} contains a PEM private key header`);
    const hit = material.find((m) => text.includes(m));
    if (hit) violation(t, `logs: ${log} contains private key material`);
  }
  if (logs.length === 0) violation(t, 'logs: no log files found to check');
}

function sshGuarded(c: Ctx, key: string, command: string) {
  return spawnSync('ip', ['netns', 'exec', c.A.hostNetns, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${c.tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${c.A.dpuHost}`, command], { encoding: 'utf8', timeout: 20000 });
}

async function guard(c: Ctx): Promise<void> {
  const { t, tb, A } = c;
  const key = newKey(tb, 'guarded_ed25519');
  const installedBefore = existsSync(GUARD_DIR);
  sh('bash', [join(ROOT, 'install.sh'), '--dpu', '--authorize-key', `${key}.pub`, '--authorized-keys', join(tb.stateDir, 'authorized_keys')]);
  try {
    const conf = c.conf({ privateKeyFile: key });
    const ns = container('guard');
    const add = await op(c, 'ADD', 'guard-1', ns, conf);
    if (expectSuccess(t, 'guard: ADD through the guard', add)) {
      expectSuccess(t, 'guard: CHECK through the guard', await op(c, 'CHECK', 'guard-1', ns, { ...conf, prevResult: add.json }));
      expectSuccess(t, 'guard: DEL through the guard', await op(c, 'DEL', 'guard-1', ns, conf));
    }
    const canary = `/tmp/${PREFIX}-guard-canary`;
    rmSync(canary, { force: true });
    const hostile = [
      'sh',
      'cat /etc/shadow',
      `touch ${canary}`,
      `ovs-vsctl --timeout=5 -f json -- --columns=other_config find Open_vSwitch -- del-br br-phy`,
      `ovs-vsctl --timeout=5 -f json -- --if-exists del-port pf0vf0 -- del-br br-phy`,
      `ovs-vsctl --timeout=5 -f json -- --if-exists del-port pf0vf0; touch ${canary}`,
      `ovs-vsctl --timeout=5 -f json -- --if-exists del-port 'pf0vf0 -- del-br br-phy'`,
      `ip link set dev $(touch ${canary}) mtu 1450 up`,
      `ovs-vsctl --timeout=5 -f json -- --if-exists del-port pf0vf0 && sh -c 'touch ${canary}'`,
    ];
    for (const command of hostile) {
      const r = sshGuarded(c, key, command);
      t.faults += 1;
      t.operations += 1;
      if (r.status !== 126 || !/refused/.test(r.stderr)) violation(t, `guard: ${JSON.stringify(command)} was not refused (exit ${r.status}): ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 200)}`);
    }
    if (existsSync(canary)) violation(t, 'guard: a refused command still ran (canary file exists)');
    if (!dpuExec(A.name, 'ovs-vsctl', 'list-br').includes('br-phy')) violation(t, 'guard: br-phy was deleted through the guard');
    rmSync(canary, { force: true });
  } finally {
    if (!installedBefore) rmSync(GUARD_DIR, { recursive: true, force: true });
  }
}

export async function security(tb: Testbed, o: SecurityOptions): Promise<Tally> {
  const t = newTally('security');
  const A = site(tb, 'a');
  const c: Ctx = {
    tb, t, A,
    conf: (dpu = {}, extra = {}) => netConf(tb, A, { name: 'sec', vni: 5000, ipam: hostLocal(tb, A, '10.150.0.0/24', '10.150.0.10', '10.150.0.99', 'sec'), dpu, extra }),
  };
  const steps: Array<[string, (x: Ctx) => Promise<void>]> = [
    ['host key pinning', hostKeyPinning],
    ['private key modes', privateKeyModes],
    ['stateDir and log modes', stateAndLogModes],
    ['forced-command guard', guard],
    ['no key material in logs', async (x) => logsHoldNoKeys(x)],
    ['oversized DPU commands and output', (x) => oversize(x.tb, x.t, x.A)],
  ];
  for (const [name, fn] of steps) {
    const before = t.violations.length;
    await fn(c);
    o.progress?.(`security: ${name}: ${t.violations.length - before} violations`);
  }
  return t;
}
