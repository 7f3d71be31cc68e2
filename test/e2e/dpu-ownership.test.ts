/**
 * Who may move or remove a representor's OVS port on the DPU, through the packaged plugin and the guard (every
 * session here uses a key bound to this checkout's guard/dpu-guard.sh, as install.sh --dpu sets it up):
 * - a network whose node template maps its VF to another live attachment's representor gets code 102, and that
 *   attachment's port stays where it is (the red-team reproduction: "pf0vf{pf}" plugged pf0vf0 into br-vni200);
 * - a port left by an attachment with no record here (a crash) is reclaimed; a port dpu-overlay did not make is not;
 * - the guard removes a container port only while it has the owner the line names;
 * - records that share a representor are reported by the daemon's recovery and replug, and re-plugged by neither;
 * - replug --all gives the VF function its recorded settings again after the DPU's devlink state was wiped.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { appendFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { removeOwnedPortCommand } from '../../src/dpu/ovs/commands';
import { commandLine } from '../../src/dpu/quote';
import { StateStore } from '../../src/store/attachments';
import {
  BINARY, cni, container, dpuExec, hostLocal, netConf, type NetOptions, readJsonLines, removeContainers, requireBinary, ROOT, sh, site, type Site, spawnDaemon, stopDaemon,
  type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(240000);

let tb: Testbed;
let A: Site;
let key: string;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a,b');
  A = site(tb, 'a');
  key = join(tb.stateDir, 'owner_ed25519');
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dpu-overlay-owner', '-f', key]);
  const pub = sh('cat', [`${key}.pub`]).trim();
  appendFileSync(join(tb.stateDir, 'authorized_keys'), `command="sh ${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${pub}\n`);
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const stateDir = () => join(tb.stateDir, 'plugin-a');
/** A network on host a whose sessions go through the guard; o.dpu adds node settings (the template). */
function conf(name: string, vni: number, first: number, o: NetOptions = {}): Record<string, unknown> {
  return netConf(tb, A, { ...o, name, vni, ipam: hostLocal(tb, A, `10.${vni % 250}.7.0/24`, `10.${vni % 250}.7.${first}`, `10.${vni % 250}.7.${first + 9}`, name), dpu: { privateKeyFile: key, ...o.dpu } });
}
const portOf = (rep: string) => {
  const line = dpuExec('a', 'ovs-vsctl', '--bare', '--columns=_uuid,external_ids', 'find', 'Port', `name=${rep}`).trim();
  return line === '' ? undefined : line;
};
const bridgeOf = (rep: string) => dpuExec('a', 'ovs-vsctl', 'port-to-br', rep).trim();
const ownerOf = (rep: string) => /dpu-overlay\.container="?([^",}\s]+)/.exec(portOf(rep) ?? '')?.[1];
const recordFiles = () => readdirSync(join(stateDir(), 'attachments')).filter((f) => !f.startsWith('.')).sort();
const sshGuarded = (command: string) =>
  spawnSync('ip', ['netns', 'exec', A.hostNetns, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${A.dpuHost}`, command], { encoding: 'utf8', timeout: 30000 });

describe('a representor port belongs to one attachment', () => {
  test('a template that reaches another pod\'s representor: code 102, that pod\'s port untouched, nothing left behind', () => {
    const victimNs = container('own-victim');
    const victim = cni(A, conf('vni100', 100, 10), { command: 'ADD', containerId: 'own-victim', netns: victimNs });
    expect([victim.status, victim.json?.msg]).toEqual([0, undefined]);
    expect(bridgeOf('pf0vf0')).toBe('br-vni100');
    const before = portOf('pf0vf0');

    // every VF of this network maps to pf0vf0 (the template has no {vf}); it is given VF1
    const bad = conf('vni200', 200, 10, { dpu: { representorTemplate: 'pf0vf{pf}' } });
    const thiefNs = container('own-thief');
    const r = cni(A, bad, { command: 'ADD', containerId: 'own-thief', netns: thiefNs });
    expect(r.json).toMatchObject({ code: 102 });
    expect(r.json?.msg).toMatch(/representor pf0vf0 .*belongs to the live attachment of container own-victim \(ifname eth0, network vni100\); it is not moved/);
    expect(portOf('pf0vf0')).toBe(before);
    expect(bridgeOf('pf0vf0')).toBe('br-vni100');
    expect(ownerOf('pf0vf0')).toBe('own-victim');
    expect(recordFiles().some((f) => f.includes('own-thief'))).toBe(false);
    expect(dpuExec('a', 'ovs-vsctl', 'list-br')).not.toMatch(/br-vni200/);
    expect(cni(A, { ...conf('vni100', 100, 10), prevResult: victim.json }, { command: 'CHECK', containerId: 'own-victim', netns: victimNs }).status).toBe(0);
    // DEL and GC of the refused network touch nothing of the other's
    expect(cni(A, bad, { command: 'DEL', containerId: 'own-thief', netns: thiefNs }).status).toBe(0);
    expect(cni(A, { ...bad, 'cni.dev/valid-attachments': [] }, { command: 'GC', containerId: '', netns: '', ifname: '' }).status).toBe(0);
    expect(portOf('pf0vf0')).toBe(before);
    expect(cni(A, conf('vni100', 100, 10), { command: 'DEL', containerId: 'own-victim', netns: victimNs }).status).toBe(0);
    expect(portOf('pf0vf0')).toBeUndefined();
  });

  test('a crash\'s leftover port (its owner has no record here) is reclaimed; a port dpu-overlay did not make is not', () => {
    // a container port whose attachment record is gone
    dpuExec('a', 'ovs-vsctl', '--may-exist', 'add-br', 'br-vni300', '--', 'set', 'Bridge', 'br-vni300', 'datapath_type=netdev', '--', 'add-port', 'br-vni300', 'pf0vf0', '--', 'set', 'Port', 'pf0vf0',
      'external_ids:dpu-overlay.role=container', 'external_ids:dpu-overlay.container=ghost', 'external_ids:dpu-overlay.ifname=eth0', 'external_ids:dpu-overlay.network=gone');
    const ns = container('own-new');
    const add = cni(A, conf('vni100', 100, 10), { command: 'ADD', containerId: 'own-new', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    expect(bridgeOf('pf0vf0')).toBe('br-vni100');
    expect(ownerOf('pf0vf0')).toBe('own-new');
    expect(readJsonLines(join(tb.stateDir, 'plugin-a.log')).some((l) => /reclaiming the DPU port/.test(String(l.msg)) && (l.owner as { containerId?: string } | undefined)?.containerId === 'ghost')).toBe(true);
    dpuExec('a', 'ovs-vsctl', '--if-exists', 'del-br', 'br-vni300');

    // an operator's port named like the next representor
    dpuExec('a', 'ovs-vsctl', '--may-exist', 'add-br', 'br-op', '--', 'set', 'Bridge', 'br-op', 'datapath_type=netdev', '--', 'add-port', 'br-op', 'pf0vf1');
    const ns2 = container('own-op');
    const r = cni(A, conf('vni100', 100, 10), { command: 'ADD', containerId: 'own-op', netns: ns2 });
    expect(r.json).toMatchObject({ code: 112 });
    expect(r.json?.msg).toMatch(/an OVS port named pf0vf1 exists that dpu-overlay did not make.*ovs-vsctl del-port pf0vf1/);
    expect(bridgeOf('pf0vf1')).toBe('br-op');
    dpuExec('a', 'ovs-vsctl', '--if-exists', 'del-br', 'br-op');
    expect(cni(A, conf('vni100', 100, 10), { command: 'DEL', containerId: 'own-op', netns: ns2 }).status).toBe(0);
    expect(cni(A, conf('vni100', 100, 10), { command: 'DEL', containerId: 'own-new', netns: ns }).status).toBe(0);
  });

  test('the guard removes a container port only while it has the owner the line names; never by name or bare UUID', () => {
    const ns = container('own-g');
    const add = cni(A, conf('vni100', 100, 10), { command: 'ADD', containerId: 'own-g', netns: ns });
    expect(add.status).toBe(0);
    const uuid = dpuExec('a', 'ovs-vsctl', '--bare', '--columns=_uuid', 'find', 'Port', 'name=pf0vf0').trim();
    const wrong = sshGuarded(commandLine([removeOwnedPortCommand({ uuid, name: 'pf0vf0', owner: { network: 'vni100', containerId: 'someone-else', ifname: 'eth0' } })]));
    expect(wrong.status).toBe(0);
    expect(wrong.stdout).toMatch(/timed out/);
    expect(ownerOf('pf0vf0')).toBe('own-g');
    expect(sshGuarded(`ovs-vsctl --timeout=5 -f json -- --if-exists del-port pf0vf0`).status).toBe(126);
    expect(sshGuarded(`ovs-vsctl --timeout=5 -f json -- --if-exists remove Bridge br-vni100 ports ${uuid}`).status).toBe(126);
    expect(ownerOf('pf0vf0')).toBe('own-g');
    // repeating the plug (a line repeated after a lost channel, or a re-plug) replaces its own port: idempotent
    const right = sshGuarded(commandLine([removeOwnedPortCommand({ uuid, name: 'pf0vf0', owner: { network: 'vni100', containerId: 'own-g', ifname: 'eth0' } })]));
    expect([right.status, right.stdout]).toEqual([0, expect.stringMatching(/"count":1/)]);
    expect(portOf('pf0vf0')).toBeUndefined();
    expect(cni(A, conf('vni100', 100, 10), { command: 'DEL', containerId: 'own-g', netns: ns }).status).toBe(0);
  });
});

describe('recovery and replug --all', () => {
  let daemon: ChildProcess | undefined;
  afterEach(async () => {
    await stopDaemon(daemon);
    daemon = undefined;
  });

  test('two records naming one representor: reported by the daemon (error, STATUS), replug and CHECK, re-plugged by neither over several polls', async () => {
    const dir = join(tb.stateDir, 'plugin-dup');
    rmSync(dir, { recursive: true, force: true });
    const c = conf('vni100', 100, 30, { stateDir: dir });
    const ns = container('dup-1');
    const add = cni(A, c, { command: 'ADD', containerId: 'dup-1', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    // the state a template collision left before ADD refused it: a second ready record naming pf0vf0
    const store = new StateStore(dir);
    const first = store.loadAttachment('dup-1', 'eth0');
    if (!first?.dpu) throw new Error('no record of dup-1');
    const rep = first.dpu.representor;
    store.saveAttachment({ ...first, containerId: 'dup-2', network: 'vni200', vni: 200, dpu: { ...first.dpu, bridge: 'br-vni200', portUuid: '00000000-0000-4000-8000-000000000002' } });
    dpuExec('a', 'ovs-vsctl', 'del-port', rep);

    const logFile = join(tb.stateDir, 'dup-daemon.log');
    rmSync(logFile, { force: true });
    daemon = await spawnDaemon(A, { socket: join(tb.stateDir, 'dup-daemon', 'dpu.sock'), logFile, stateDir: dir });
    // the default poll is 2 s: five polls, and the port is never plugged again by either record
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      seen.add(ownerOf(rep) ?? 'none');
    }
    expect([...seen]).toEqual(['none']);
    const lines = readJsonLines(logFile);
    const errors = lines.filter((l) => l.level === 50 && String(l.msg).startsWith(`representor ${rep} is named by 2 attachment records`));
    expect(errors).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 're-plugged attachment')).toEqual([]);
    // daemonSocket is the node's: STATUS asks this daemon through a node file that names its socket
    const viaDaemon = conf('vni100', 100, 30, { stateDir: dir, dpu: { daemonSocket: join(tb.stateDir, 'dup-daemon', 'dpu.sock') } });
    const status = cni(A, viaDaemon, { command: 'STATUS', containerId: '', netns: '', ifname: '' });
    expect(status.json).toMatchObject({ code: 50 });
    expect(status.json?.msg).toContain(`representor ${rep} is named by 2 attachment records`);
    await stopDaemon(daemon);
    daemon = undefined;

    const replug = spawnSync('ip', ['netns', 'exec', A.hostNetns, BINARY, 'replug', '--all', '--state-dir', dir, '--log-file', join(tb.stateDir, 'dup-replug.log')], { encoding: 'utf8', timeout: 60000 });
    expect(replug.status).toBe(1);
    expect(replug.stderr).toMatch(new RegExp(`representor ${rep} is named by 2 attachment records .*none is re-plugged`));
    expect(ownerOf(rep)).toBeUndefined();

    const check = cni(A, { ...c, prevResult: add.json }, { command: 'CHECK', containerId: 'dup-1', netns: ns });
    expect(check.json).toMatchObject({ code: 120 });
    expect(check.json?.msg).toMatch(new RegExp(`representor ${rep} on DPU \\S+ is also named by the record of container dup-2 \\(ifname eth0, network vni200\\)`));

    store.removeAttachment('dup-2', 'eth0');
    expect(cni(A, c, { command: 'DEL', containerId: 'dup-1', netns: ns }).status).toBe(0);
  });

  test('replug --all gives the VF function its recorded settings again after the DPU\'s devlink state was wiped; CHECK then passes', () => {
    const dir = join(tb.stateDir, 'plugin-vfre');
    rmSync(dir, { recursive: true, force: true });
    const c = conf('vni100', 100, 50, { stateDir: dir, extra: { maxTxRate: 100 } });
    const ns = container('vfre');
    const add = cni(A, c, { command: 'ADD', containerId: 'vfre', netns: ns });
    expect([add.status, add.json?.msg]).toEqual([0, undefined]);
    const check = () => cni(A, { ...c, prevResult: add.json }, { command: 'CHECK', containerId: 'vfre', netns: ns });
    expect(check().status).toBe(0);
    // the DPU's devlink state goes (what a DPU reboot does to it): the stand-in keeps it in files
    const state = join(tb.stateDir, 'dpu-a', 'devlink-state');
    rmSync(state, { recursive: true, force: true });
    expect(check().json).toMatchObject({ code: 120 });
    const replug = spawnSync('ip', ['netns', 'exec', A.hostNetns, BINARY, 'replug', '--all', '--state-dir', dir, '--log-file', join(tb.stateDir, 'vfre-replug.log')], { encoding: 'utf8', timeout: 60000 });
    expect([replug.status, replug.stderr]).toEqual([0, '']);
    expect([check().status, check().json?.msg]).toEqual([0, undefined]);
    expect(cni(A, c, { command: 'DEL', containerId: 'vfre', netns: ns }).status).toBe(0);
  });
});
