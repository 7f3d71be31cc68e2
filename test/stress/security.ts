/**
 * Security: host key pinning (a changed DPU host key is refused before anything is sent), private key
 * permissions, stateDir and log file modes, no key material in logs, and the DPU forced-command guard
 * (install.sh --dpu) refusing everything but the plugin's own operations.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BINARY, container, dpuExec, hostLocal, netConf, PREFIX, ROOT, sh, type Site, site, type Testbed } from '../testkit/testbed';
import { StateStore } from '../../src/store/attachments';
import {
  diffLines, expectCniError, expectSuccess, forcedWrapper, hostSnapshot, listTree, newKey, newTally, type Outcome, type Probe, recordedCommands,
  runPlugin, runProbes, stressDir, type Tally, timed, violation,
} from './common';
import { oversize } from './oversize';
import { ROBUSTNESS_PROBES } from './robustness';

/** This testbed's own guard directory: the machine-wide one is shared with every other testbed on the machine. */
const guardDir = (tb: Testbed) => join(tb.stateDir, 'guard');

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
    [stateDir, 0o700], [join(stateDir, 'allocations'), 0o700], [join(stateDir, 'attachments'), 0o700], [join(base, 'log'), 0o700], [logFile, 0o640],
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

/**
 * State tampering (self-contained): a stateDir someone else owns or can write, planted records naming
 * hostile IPAM types, paths and netdevs, a symlinked logFile, 256-character container IDs, and an ADD
 * still in flight (slow IPAM) met by a second ADD and a GC. None may run a planted program, follow a
 * planted link, or tear down the live ADD; every refusal is one CNI error with a clear code.
 */
async function stateTampering(c: Ctx): Promise<void> {
  const { t, tb } = c;
  const base = join(stressDir(tb), 'tamper');
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const ns = container('tamper');
  const stateDir = join(base, 'state');
  const conf = c.conf({}, { stateDir });

  for (const [label, prepare] of [
    ['owned by nobody', (d: string) => chownSync(d, 65534, 65534)],
    ['mode 0777', (d: string) => chmodSync(d, 0o777)],
    ['attachments/ mode 0722', (d: string) => chmodSync(join(d, 'attachments'), 0o722)],
  ] as const) {
    const dir = join(base, `bad-${label.replace(/\W+/g, '-')}`);
    for (const d of [dir, join(dir, 'allocations'), join(dir, 'attachments')]) mkdirSync(d, { recursive: true, mode: 0o700 });
    prepare(dir);
    t.faults += 1;
    const out = await op(c, 'ADD', 'tamper-0', ns, c.conf({}, { stateDir: dir }));
    expectCniError(t, `state tampering: stateDir ${label}`, out, 7);
    if (out.status === 0) await op(c, 'DEL', 'tamper-0', ns, c.conf({}, { stateDir: dir })); // accepted: undo it so later probes run
    if (out.json && !/stateDir: .*chmod 700/.test(String(out.json.msg))) violation(t, `state tampering: stateDir ${label}: message does not say what to fix: ${String(out.json.msg)}`);
  }

  const add = await op(c, 'ADD', 'tamper-1', ns, conf);
  if (!expectSuccess(t, 'state tampering: ADD', add)) return;
  const attachments = join(stateDir, 'attachments');
  const [recordName] = readdirSync(attachments);
  const recordFile = join(attachments, recordName as string);
  const original = readFileSync(recordFile, 'utf8');
  const marker = join(base, 'planted-ran');
  const planted = join(base, 'x');
  writeFileSync(planted, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  const record = JSON.parse(original) as Record<string, unknown> & { vf: Record<string, unknown> };
  for (const [label, patch] of [
    ['ipamType ../../x', { ipamType: `../../../../..${planted}` }],
    ['ipamType absolute', { ipamType: planted }],
    ['cniPath relative', { cniPath: ['.', 'bin'] }],
    ['netdev name with a command', { vf: { ...record.vf, originalName: 'x; reboot' } }],
    ['PCI address with a path', { vf: { ...record.vf, pci: '../../../etc' } }],
    ['tmpName not ours', { tmpName: 'eth0' }],
    ['not JSON', undefined],
  ] as const) {
    writeFileSync(recordFile, patch ? JSON.stringify({ ...record, ...patch }) : '{"ipamType":');
    t.faults += 1;
    expectCniError(t, `state tampering: planted record (${label}): DEL`, await op(c, 'DEL', 'tamper-1', ns, conf), 5);
    const gc = await op(c, 'GC', '', '', { ...conf, 'cni.dev/valid-attachments': [] });
    expectSuccess(t, `state tampering: planted record (${label}): GC skips it`, gc);
    if (!existsSync(recordFile)) violation(t, `state tampering: planted record (${label}): GC removed it instead of leaving it for an operator`);
    if (existsSync(marker)) violation(t, `state tampering: planted record (${label}): the planted program ran`);
  }
  writeFileSync(recordFile, original);
  expectSuccess(t, 'state tampering: DEL after restoring the record', await op(c, 'DEL', 'tamper-1', ns, conf));

  const target = join(base, 'not-a-log');
  writeFileSync(target, 'untouched\n');
  const logLink = join(base, 'log-link');
  symlinkSync(target, logLink);
  const logged = c.conf({}, { stateDir, logFile: logLink, logLevel: 'debug' });
  expectSuccess(t, 'state tampering: ADD with a symlinked logFile', await op(c, 'ADD', 'tamper-2', ns, logged));
  expectSuccess(t, 'state tampering: DEL with a symlinked logFile', await op(c, 'DEL', 'tamper-2', ns, logged));
  if (readFileSync(target, 'utf8') !== 'untouched\n') violation(t, 'state tampering: a symlinked logFile was followed');

  for (const id of ['L'.repeat(256), `${'l'.repeat(237)}-x`, 'm'.repeat(250)]) {
    expectSuccess(t, `state tampering: ADD with a ${id.length}-character container ID`, await op(c, 'ADD', id, ns, conf));
    expectSuccess(t, `state tampering: DEL with a ${id.length}-character container ID`, await op(c, 'DEL', id, ns, conf));
  }
  if (listTree(stateDir).length) violation(t, `state tampering: long IDs left files: ${listTree(stateDir).join(' ')}`);

  await inFlightAdd(c, base, stateDir, ns);
}

/** A slow IPAM (waits for a gate file) holds an ADD in flight while a second ADD and a GC arrive. */
async function inFlightAdd(c: Ctx, base: string, stateDir: string, ns: string): Promise<void> {
  const { t } = c;
  const bin = join(base, 'cni-bin');
  mkdirSync(bin, { recursive: true });
  const gate = join(base, 'gate');
  const result = JSON.stringify({ cniVersion: '1.1.0', ips: [{ address: '10.150.1.7/24' }] });
  writeFileSync(join(bin, 'slow-ipam'), `#!/bin/sh\ncat >/dev/null\n[ "$CNI_COMMAND" = VERSION ] && { echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}'; exit 0; }\n[ "$CNI_COMMAND" = ADD ] || exit 0\nwhile [ ! -e ${gate} ]; do sleep 0.05; done\necho '${result}'\n`, { mode: 0o755 });
  const conf = { ...c.conf({}, { stateDir }), ipam: { type: 'slow-ipam' } };
  const env = { env: { CNI_PATH: bin } };
  const first = runPlugin(c.A, conf, { command: 'ADD', containerId: 'inflight-1', netns: ns }, env);
  const attachments = join(stateDir, 'attachments');
  for (let i = 0; i < 600 && !readdirSync(attachments).some((f) => f.startsWith('inflight-1')); i++) await new Promise((r) => setTimeout(r, 50));
  t.faults += 1;
  expectCniError(t, 'state tampering: second ADD during an in-flight ADD', await runPlugin(c.A, conf, { command: 'ADD', containerId: 'inflight-1', netns: ns }, env), 11);
  expectSuccess(t, 'state tampering: GC during an in-flight ADD', await runPlugin(c.A, { ...conf, 'cni.dev/valid-attachments': [] }, { command: 'GC' }, env));
  writeFileSync(gate, '');
  const done = await first;
  if (!expectSuccess(t, 'state tampering: the in-flight ADD completes', done)) return;
  const allocations = readdirSync(join(stateDir, 'allocations')).filter((f) => !f.startsWith('.'));
  if (allocations.length !== 1) violation(t, `state tampering: after the in-flight ADD ${allocations.length} allocation files, want 1`);
  expectSuccess(t, 'state tampering: DEL of the in-flight ADD', await runPlugin(c.A, conf, { command: 'DEL', containerId: 'inflight-1', netns: ns }, env));
}

/**
 * Stale claims heal: containers fill the pool, one's namespace dies without DEL (its VF comes back to the
 * host, as the kernel returns physical devices; emulated by moving the veth back before deleting the
 * namespace), and the next ADD reclaims that VF. With every namespace alive, ADD is code 100.
 */
async function staleClaimHeals(c: Ctx): Promise<void> {
  const { t, tb, A } = c;
  const stateDir = join(stressDir(tb), 'heal-state');
  rmSync(stateDir, { recursive: true, force: true });
  const conf = c.conf({}, { stateDir });
  const held: Array<{ id: string; ns: string }> = [];
  for (let i = 0; i <= A.vfs.length; i++) {
    const h = { id: `heal-${i}`, ns: container(`heal${i}`) };
    const out = await op(c, 'ADD', h.id, h.ns, conf);
    if (out.status === 0) held.push(h);
    else {
      expectCniError(t, 'stale claims: ADD with every VF held by a live container', out, 100);
      break;
    }
  }
  const victim = held[1];
  if (!victim || held.length !== A.vfs.length) return violation(t, `stale claims: ${held.length} of ${A.vfs.length} VFs attached`);
  const record = JSON.parse(readFileSync(join(stateDir, 'attachments', `${victim.id}:eth0`), 'utf8')) as { vf: { originalName: string } };
  const name = victim.ns.replace('/run/netns/', '');
  sh('ip', ['-n', name, 'link', 'set', 'eth0', 'netns', A.hostNetns, 'name', record.vf.originalName]);
  sh('ip', ['netns', 'del', name]);
  const late = { id: 'heal-late', ns: container('heallate') };
  t.faults += 1;
  if (expectSuccess(t, 'stale claims: ADD reclaims the VF of a dead namespace', await op(c, 'ADD', late.id, late.ns, conf))) held.push(late);
  for (const h of held) {
    if (h === victim) continue;
    const links = sh('ip', ['-n', h.ns.replace('/run/netns/', ''), '-o', 'link', 'show']);
    if (!/ eth0[:@]/.test(links)) violation(t, `stale claims: ${h.id} lost its interface`);
    expectSuccess(t, `stale claims: DEL ${h.id}`, await op(c, 'DEL', h.id, h.ns, conf));
  }
  if (listTree(stateDir).length) violation(t, `stale claims: files left: ${listTree(stateDir).join(' ')}`);
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
  // Regular files only: a test may leave a FIFO named *.log there (logFile shapes), and reading one blocks for good.
  ].filter((f) => existsSync(f) && lstatSync(f).isFile());
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
  sh('bash', [join(ROOT, 'install.sh'), '--dpu', '--guard-dir', guardDir(tb), '--authorize-key', `${key}.pub`, '--authorized-keys', join(tb.stateDir, 'authorized_keys')]);
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
      ...hostileTransactions(dpuExec(A.name, 'ovs-vsctl', 'get', 'Bridge', 'br-phy', '_uuid').trim()),
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
    rmSync(guardDir(tb), { recursive: true, force: true });
  }
}

/**
 * The guard's OVSDB transactions (owner-checked port removal, tunnel removal, bridge removal) reshaped by a holder of
 * the host's key to reach the DPU's own bridge: each must be refused before ovsdb-client runs.
 */
function hostileTransactions(brPhy: string): string[] {
  const u = '00000000-0000-4000-8000-000000000001';
  const owner = [['dpu-overlay.container', 'c'], ['dpu-overlay.ifname', 'eth0'], ['dpu-overlay.network', 'n'], ['dpu-overlay.role', 'container']];
  const wait = { op: 'wait', table: 'Port', where: [['_uuid', '==', ['uuid', u]], ['name', '==', 'pf0vf0'], ['external_ids', 'includes', ['map', owner]]], columns: ['name'], until: '==', rows: [{ name: 'pf0vf0' }], timeout: 0 };
  const dropPhy = { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['uuid', brPhy]]] };
  const removePort = { op: 'mutate', table: 'Bridge', where: [['ports', 'includes', ['uuid', u]]], mutations: [['ports', 'delete', ['set', [['uuid', u]]]]] };
  const tunnelWait = { op: 'wait', table: 'Port', where: [['_uuid', '==', ['uuid', u]]], columns: ['name', 'external_ids'], until: '==', rows: [{ name: 'vx00000000', external_ids: ['map', [['dpu-overlay.remote', '192.0.2.9'], ['dpu-overlay.role', 'tunnel'], ['dpu-overlay.vni', '7']]] }], timeout: 0 };
  const bridgeWait = (b: string) => ({ op: 'wait', table: 'Bridge', where: [['_uuid', '==', ['uuid', b]]], columns: ['ports'], until: '==', rows: [{ ports: ['set', []] }], timeout: 0 });
  const txns: unknown[][] = [
    ['Open_vSwitch', wait, removePort, dropPhy],
    ['Open_vSwitch', wait, dropPhy],
    ['Open_vSwitch', { ...wait, where: [['_uuid', '==', ['uuid', u]], ['name', '==', 'pf0vf0']] }, removePort],
    ['Open_vSwitch', { ...wait, until: '!=' }, removePort],
    ['Open_vSwitch', tunnelWait, { op: 'mutate', table: 'Bridge', where: [['name', '==', 'br-phy']], mutations: [['ports', 'delete', ['uuid', u]]] }],
    ['Open_vSwitch', bridgeWait(brPhy), dropPhy],
    ['Open_vSwitch', bridgeWait(u), dropPhy],
  ];
  return txns.map((t) => `ovsdb-client transact '${JSON.stringify(t)}'`);
}

/** Links in a namespace (by /run/netns path) as `ip -j link` shows them. */
function nsLinks(ns: string): Array<{ ifname: string; address: string }> {
  const r = spawnSync('ip', ['-n', ns.replace('/run/netns/', ''), '-j', 'link', 'show'], { encoding: 'utf8' });
  return r.status === 0 ? (JSON.parse(r.stdout) as Array<{ ifname: string; address: string }>) : [];
}

/** DEL of one container with CNI_NETNS pointing at another's: the other keeps its VF, ours comes back. */
async function netnsHintOfAnotherContainer(c: Ctx): Promise<void> {
  const { t } = c;
  const conf = c.conf();
  const mine = container('hint-mine');
  const theirs = container('hint-theirs');
  if (!expectSuccess(t, 'netns hint: ADD mine', await op(c, 'ADD', 'hint-mine', mine, conf))) return;
  if (!expectSuccess(t, 'netns hint: ADD theirs', await op(c, 'ADD', 'hint-theirs', theirs, conf))) return;
  const theirVf = nsLinks(theirs).find((l) => l.ifname === 'eth0');
  t.faults += 1;
  expectSuccess(t, 'netns hint: DEL mine with CNI_NETNS of theirs', await op(c, 'DEL', 'hint-mine', theirs, conf));
  const after = nsLinks(theirs).find((l) => l.ifname === 'eth0');
  if (!after || after.address !== theirVf?.address) violation(t, `netns hint: DEL of another container pulled its VF (eth0 now ${JSON.stringify(after)})`);
  if (nsLinks(mine).some((l) => l.ifname !== 'lo')) violation(t, 'netns hint: our VF stayed in our container');
  expectSuccess(t, 'netns hint: DEL theirs', await op(c, 'DEL', 'hint-theirs', theirs, conf));
}

/**
 * A container with NET_ADMIN renames its VF (renamedVf) and/or plants a veth called eth0 (decoy): DEL must
 * bring back the real VF when it is there and never move the decoy to the host or give it the VF's name.
 */
async function vfIdentityProbe(c: Ctx, label: string, rename: boolean, decoy: boolean): Promise<void> {
  const { t, A } = c;
  const conf = c.conf();
  const id = `ident-${label}`;
  const ns = container(id);
  if (!expectSuccess(t, `${label}: ADD`, await op(c, 'ADD', id, ns, conf))) return;
  const name = ns.replace('/run/netns/', '');
  if (rename) sh('ip', ['-n', name, 'link', 'set', 'dev', 'eth0', 'name', 'renamed0']);
  if (decoy) {
    if (!rename) sh('ip', ['-n', name, 'link', 'set', 'dev', 'eth0', 'name', 'renamed0']);
    sh('ip', ['-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'decoy-peer']);
  }
  const hostBefore = new Set(nsLinks(`/run/netns/${A.hostNetns}`).map((l) => l.ifname));
  t.faults += 1;
  expectSuccess(t, `${label}: DEL`, await op(c, 'DEL', id, ns, conf));
  const left = nsLinks(ns).map((l) => l.ifname).sort();
  const want = decoy ? ['decoy-peer', 'eth0', 'lo'] : ['lo'];
  if (JSON.stringify(left) !== JSON.stringify(want)) violation(t, `${label}: container holds ${left.join(',')} after DEL, want ${want.join(',')}`);
  const arrived = nsLinks(`/run/netns/${A.hostNetns}`).filter((l) => !hostBefore.has(l.ifname));
  if (arrived.length !== 1) violation(t, `${label}: ${arrived.length} links arrived on the host (${arrived.map((l) => l.ifname).join(',')}), want the VF alone`);
}


/**
 * Another attachment's representor, reached three ways: templates (with pfIndex) that map a new ADD's VF onto it,
 * a planted second record naming it (what a collision left before it was refused), and requests repeated on it
 * (replug --all twice). The attachment's DPU port must never move, and nothing of the refused ADDs stays.
 */
async function sharedRepresentor(c: Ctx): Promise<void> {
  const { t, tb, A } = c;
  // this checkout's guard, bound to a key of its own (nothing installed on the machine)
  const key = newKey(tb, 'owner_guarded_ed25519');
  appendFileSync(join(tb.stateDir, 'authorized_keys'), `command="sh ${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${readFileSync(`${key}.pub`, 'utf8').trim()}\n`);
  const stateDir = join(stressDir(tb), 'shared-rep-state');
  rmSync(stateDir, { recursive: true, force: true });
  const conf = (dpu: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, name = 'sec') =>
    netConf(tb, A, { name, vni: name === 'sec' ? 5000 : 5001, stateDir, ipam: hostLocal(tb, A, '10.151.0.0/24', '10.151.0.10', '10.151.0.99', name), dpu: { privateKeyFile: key, ...dpu }, extra });
  const portOf = (containerId: string) => dpuExec(A.name, 'ovs-vsctl', '--bare', '--columns=_uuid,name', 'find', 'Port', `external_ids:dpu-overlay.container=${containerId}`).trim();
  const victimNs = container('shared-victim');
  if (!expectSuccess(t, 'shared representor: ADD the owner', await op(c, 'ADD', 'shared-victim', victimNs, conf()))) return;
  const store = new StateStore(stateDir);
  const victim = store.loadAttachment('shared-victim', 'eth0');
  const rep = victim?.dpu?.representor ?? '';
  const owned = portOf('shared-victim');
  const vfIndex = Number(/vf(\d+)$/.exec(rep)?.[1] ?? 0);
  const templates: Array<[Record<string, unknown>, Record<string, unknown>]> = [
    [{ representorTemplate: 'pf0vf{pf}' }, { pfIndex: vfIndex }],
    [{ representorTemplate: `pf{pf}vf${vfIndex}` }, {}],
    [{ representorTemplate: `${rep.replace(/\d+$/, '')}{pf}` }, { pfIndex: vfIndex }],
  ];
  for (const [k, [dpu, extra]] of templates.entries()) {
    const id = `shared-thief${k}`;
    const ns = container(id);
    t.faults += 1;
    const out = await op(c, 'ADD', id, ns, conf(dpu, extra, 'sec2'));
    expectCniError(t, `shared representor: template ${String(dpu.representorTemplate)} reaching ${rep}`, out, 102);
    if (store.loadAttachment(id, 'eth0')) violation(t, `shared representor: the refused ADD ${id} left a record`);
    await op(c, 'DEL', id, ns, conf(dpu, extra, 'sec2'));
  }
  if (portOf('shared-victim') !== owned) violation(t, `shared representor: the owner's port changed (${owned} -> ${portOf('shared-victim')})`);
  if (victim?.dpu) {
    store.saveAttachment({ ...victim, containerId: 'shared-twin', network: 'sec2', vni: 5001, dpu: { ...victim.dpu, portUuid: '00000000-0000-4000-8000-0000000000aa' } });
    const replug = () => spawnSync('ip', ['netns', 'exec', A.hostNetns, BINARY, 'replug', '--all', '--state-dir', stateDir, '--log-file', join(stressDir(tb), 'shared-replug.log')], { encoding: 'utf8', timeout: 60000 });
    t.faults += 1;
    t.operations += 1;
    const dup = replug();
    if (dup.status !== 1 || !dup.stderr.includes(`representor ${rep} is named by 2 attachment records`)) violation(t, `shared representor: replug --all with two records naming ${rep} exited ${dup.status}: ${dup.stderr.slice(0, 300)}`);
    if (portOf('shared-victim') !== owned || portOf('shared-twin') !== '') violation(t, 'shared representor: replug --all moved a port named by two records');
    store.removeAttachment('shared-twin', 'eth0');
    for (let i = 0; i < 2; i++) {
      t.operations += 1;
      const again = replug();
      if (again.status !== 0) violation(t, `shared representor: replug --all (${i + 1}) exited ${again.status}: ${again.stderr.slice(0, 300)}`);
    }
    const after = portOf('shared-victim');
    if (!after.endsWith(rep)) violation(t, `shared representor: after replug --all the owner's port is ${JSON.stringify(after)}`);
  }
  expectSuccess(t, 'shared representor: DEL the owner', await op(c, 'DEL', 'shared-victim', victimNs, conf()));
  if (dpuExec(A.name, 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', `name=${rep}`).trim() !== '') violation(t, `shared representor: ${rep} still has a port after the last DEL`);
}

function ctx(tb: Testbed, t: Tally): Ctx {
  const A = site(tb, 'a');
  return {
    tb, t, A,
    conf: (dpu = {}, extra = {}) => netConf(tb, A, { name: 'sec', vni: 5000, ipam: hostLocal(tb, A, '10.150.0.0/24', '10.150.0.10', '10.150.0.99', 'sec'), dpu, extra }),
  };
}

/** One row each in the summary; a new probe is one more entry (see the top of common.ts). */
export const SECURITY_PROBES: ReadonlyArray<readonly [string, Probe]> = [
  ['host key pinning', (tb, t) => hostKeyPinning(ctx(tb, t))],
  ['private key modes', (tb, t) => privateKeyModes(ctx(tb, t))],
  ['stateDir and log modes', (tb, t) => stateAndLogModes(ctx(tb, t))],
  ['state tampering', (tb, t) => stateTampering(ctx(tb, t))],
  ['stale claims heal', (tb, t) => staleClaimHeals(ctx(tb, t))],
  ['forced-command guard', (tb, t) => guard(ctx(tb, t))],
  ['another attachment\'s representor (templates, duplicate records, repeated re-plugs)', (tb, t) => sharedRepresentor(ctx(tb, t))],
  ['no key material in logs', async (tb, t) => logsHoldNoKeys(ctx(tb, t))],
  ['DEL ignores a netns hint of another container', (tb, t) => netnsHintOfAnotherContainer(ctx(tb, t))],
  ['DEL returns a renamed VF', (tb, t) => vfIdentityProbe(ctx(tb, t), 'renamed-vf', true, false)],
  ['DEL leaves a decoy veth called eth0', (tb, t) => vfIdentityProbe(ctx(tb, t), 'decoy-veth', false, true)],
  ['oversized DPU commands and output', (tb, t) => oversize(tb, t, site(tb, 'a'))],
  ...ROBUSTNESS_PROBES,
];

export async function security(tb: Testbed, o: SecurityOptions): Promise<Tally> {
  const t = newTally('security');
  await runProbes(tb, t, SECURITY_PROBES, o.progress);
  return t;
}
