/**
 * The DPU forced-command guard (install.sh --dpu): the packaged plugin works through it, and the same key
 * cannot run anything else on the DPU. Also: chaining with the reference tuning plugin via prevResult.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { cni, container, dpuExec, hostLocal, netConf, PREFIX, removeContainers, requireBinary, ROOT, sh, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';

jest.setTimeout(120000);

let tb: Testbed;
let A: Site;
let key: string;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a,b');
  A = site(tb, 'a');
  key = join(tb.stateDir, 'guarded_ed25519');
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dpu-overlay-guarded', '-f', key]);
  // this testbed's own guard directory: the machine-wide one is shared with other testbeds' runs
  sh('bash', [join(ROOT, 'install.sh'), '--dpu', '--guard-dir', join(tb.stateDir, 'guard'), '--authorize-key', `${key}.pub`, '--authorized-keys', join(tb.stateDir, 'authorized_keys')]);
});

afterAll(() => {
  removeContainers();
  testbedDown();
  rmSync(join(tb.stateDir, 'guard'), { recursive: true, force: true });
});

function sshGuarded(command: string) {
  return spawnSync('ip', ['netns', 'exec', A.hostNetns, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${A.dpuHost}`, command], { encoding: 'utf8', timeout: 20000 });
}

test('ADD, CHECK and DEL work through the guard', () => {
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.100.0.0/24', '10.100.0.10', '10.100.0.20'), dpu: { privateKeyFile: key } });
  const ns = container('guard');
  const add = cni(A, conf, { command: 'ADD', containerId: 'guarded', netns: ns });
  expect(add.stdout).toContain('"interfaces"');
  expect(add.status).toBe(0);
  expect(dpuExec('a', 'ovs-vsctl', 'list-ports', 'br-vni100')).toContain('pf0vf0');
  expect(cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', containerId: 'guarded', netns: ns }).status).toBe(0);
  expect(cni(A, conf, { command: 'STATUS' }).status).toBe(0);
  expect(cni(A, conf, { command: 'DEL', containerId: 'guarded', netns: ns }).status).toBe(0);
  expect(dpuExec('a', 'ovs-vsctl', 'list-br')).not.toContain('br-vni100');
});

/** The schema's maximum: 1024 remote VTEPs, so one ADD's ovs-vsctl transaction is about 300 KB. */
const manyRemotes = Array.from({ length: 1024 }, (_, i) => `10.${200 + (i >> 8)}.${i & 255}.1`);
const tunnelPorts = () => dpuExec('a', 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Port', 'external_ids:dpu-overlay.role=tunnel').split('\n').filter(Boolean);

test('ADD, CHECK and DEL with 1024 remoteVteps through the guard (longer than one SSH packet or execve argument); nothing left behind', () => {
  const many = (remoteVteps: string[]) => netConf(tb, A, { ipam: hostLocal(tb, A, '10.102.0.0/24', '10.102.0.10', '10.102.0.20', 'many'), dpu: { privateKeyFile: key, remoteVteps, timeoutMs: 120000 } });
  const conf = many(manyRemotes);
  const ns = container('many');
  const add = cni(A, conf, { command: 'ADD', containerId: 'many', netns: ns });
  expect([add.status, add.json?.msg]).toEqual([0, undefined]);
  expect(tunnelPorts()).toHaveLength(1024);
  expect(dpuExec('a', 'ovs-vsctl', 'list-ports', 'br-vni100').split('\n')).toContain('pf0vf0');
  expect(cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', containerId: 'many', netns: ns }).status).toBe(0);
  // 124 remotes leave the node's list: CHECK reports it and removes their tunnels through the guard (several command lines)
  const fewer = many(manyRemotes.slice(0, 900));
  const check = cni(A, { ...fewer, prevResult: add.json }, { command: 'CHECK', containerId: 'many', netns: ns });
  expect(check.json).toMatchObject({ code: 120, msg: expect.stringMatching(/tunnel to 10\.203\.132\.1, .*\(124 in all\), which are not in remoteVteps .*reconciled now/) });
  expect(tunnelPorts()).toHaveLength(900);
  expect(cni(A, { ...fewer, prevResult: add.json }, { command: 'CHECK', containerId: 'many', netns: ns }).status).toBe(0);
  expect(cni(A, conf, { command: 'DEL', containerId: 'many', netns: ns }).status).toBe(0);
  expect(dpuExec('a', 'ovs-vsctl', 'list-br')).not.toContain('br-vni100');
  expect(tunnelPorts()).toEqual([]);
});

test.each([
  ['a second line after the command on stdin', 'ovs-appctl dpctl/dump-flows type=offloaded\ntouch /tmp/x\n'],
  ['a command line on stdin without its newline', 'ovs-appctl dpctl/dump-flows type=offloaded'],
  ['a command line on stdin over 1 MiB', `ovs-appctl dpctl/dump-flows type=offloaded${' x'.repeat(600 * 1024)}\n`],
  ['a shell command on stdin', 'sh\n'],
])('the guard reads "sh -s" input with the same rules: refuses %s', (_what, input) => {
  const r = spawnSync('ip', ['netns', 'exec', A.hostNetns, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${A.dpuHost}`, 'sh -s'], { input, encoding: 'utf8', timeout: 20000 });
  expect(r.status).toBe(126);
  expect(r.stderr).toMatch(/refused/);
});

test.each([
  ['a shell', 'sh'],
  ['reading secrets', 'cat /etc/shadow'],
  ['deleting the uplink bridge', "ovs-vsctl --timeout=5 -f json -- --if-exists del-br br-phy"],
  ['an injected shell command after a plugin command', "ovs-vsctl --timeout=5 -f json -- --if-exists del-port pf0vf0; rm -rf /tmp/x"],
  ['an injected -- clause', "ovs-vsctl --timeout=5 -f json -- --columns=other_config find Open_vSwitch -- del-br br-phy"],
  ['command substitution', 'ip link set dev $(reboot) mtu 1450 up'],
])('the guarded key cannot run %s', (_what, command) => {
  const r = sshGuarded(command);
  expect(r.status).toBe(126);
  expect(r.stderr).toMatch(/refused/);
  expect(dpuExec('a', 'ovs-vsctl', 'list-br')).toContain('br-phy');
});

test('chaining: dpu-overlay then tuning (conflist order), prevResult passed along; CHECK of both; DEL', () => {
  const ns = container('chain');
  const conf = netConf(tb, A, { cniVersion: '1.0.0', name: 'chain', ipam: hostLocal(tb, A, '10.101.0.0/24', '10.101.0.10', '10.101.0.20', 'chain') });
  const add = cni(A, conf, { command: 'ADD', containerId: 'chained', netns: ns });
  expect(add.status).toBe(0);
  const tuning = { cniVersion: '1.0.0', name: 'chain', type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' }, prevResult: add.json };
  const tuned = spawnSync('ip', ['netns', 'exec', A.hostNetns, '/usr/lib/cni/tuning'], {
    input: JSON.stringify(tuning), encoding: 'utf8',
    env: { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'chained', CNI_NETNS: ns, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
  });
  expect(tuned.status).toBe(0);
  const final = JSON.parse(tuned.stdout) as Record<string, unknown>;
  expect(final.interfaces).toEqual((add.json as Record<string, unknown>).interfaces);
  expect(spawnSync('ip', ['netns', 'exec', `${PREFIX}-ctr-chain`, 'sysctl', '-n', 'net.ipv4.conf.eth0.arp_notify'], { encoding: 'utf8' }).stdout.trim()).toBe('1');
  expect(cni(A, { ...conf, prevResult: final }, { command: 'CHECK', containerId: 'chained', netns: ns }).status).toBe(0);
  expect(cni(A, conf, { command: 'DEL', containerId: 'chained', netns: ns }).status).toBe(0);
});
