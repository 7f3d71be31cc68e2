/**
 * DPU-mode VF settings and the MTU check against the DPU's uplink, through the packaged plugin. The emulated DPU's
 * devlink is the testbed's stand-in (test/testkit/devlink-standin.sh): its hw_addr writes reach the emulated VF.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cni, container, dpuExec, hostLocal, linkJson, netConf, NODE_FILE, type NetConfig, nsName, readJsonLines, removeContainers, requireBinary, ROOT, sh, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';

jest.setTimeout(120000);

let tb: Testbed;
let A: Site;
let key: string;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a,b');
  A = site(tb, 'a');
  // A key whose sessions go through this checkout's guard (as install.sh --dpu would set it up), without touching
  // the guard installed on this machine.
  key = join(tb.stateDir, 'vfdpu_ed25519');
  rmSync(key, { force: true });
  rmSync(`${key}.pub`, { force: true });
  sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dpu-overlay-vfdpu', '-f', key]);
  const pub = sh('cat', [`${key}.pub`]).trim();
  appendFileSync(join(tb.stateDir, 'authorized_keys'), `command="sh ${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${pub}\n`);
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const HANDLE0 = 'pci/0000:03:00.0/1';
const devlinkPort = (handle: string) => (JSON.parse(dpuExec('a', 'devlink', '-j', 'port', 'show', handle)) as { port: Record<string, { function: { hw_addr: string } }> }).port[handle];
const rates = () => (JSON.parse(dpuExec('a', 'devlink', '-j', 'port', 'function', 'rate', 'show')) as { rate: Record<string, { tx_max?: number }> }).rate;

/** The node file a config from netConf goes with: where its plugin logs and keeps its records. */
const nodeValues = (conf: NetConfig) => JSON.parse(readFileSync(conf[NODE_FILE] as string, 'utf8')) as { logFile: string; stateDir: string };

function sshGuarded(command: string) {
  return spawnSync('ip', ['netns', 'exec', A.hostNetns, 'ssh', '-i', key, '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${tb.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', `root@${A.dpuHost}`, command], { encoding: 'utf8', timeout: 20000 });
}

test('DPU-side VF MAC and rate through the guard: the container sees the MAC, the DPU shows it, CHECK holds it, DEL restores it', () => {
  const MAC = '02:aa:bb:00:00:01';
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.110.0.0/24', '10.110.0.10', '10.110.0.20', 'vfdpu'), dpu: { privateKeyFile: key }, extra: { mac: MAC, maxTxRate: 100 } });
  const ns = container('vfdpu');
  expect(devlinkPort(HANDLE0)?.function.hw_addr).toBe('00:00:00:00:00:00');
  const add = cni(A, conf, { command: 'ADD', containerId: 'vfdpu', netns: ns });
  expect([add.status, add.json?.msg]).toEqual([0, undefined]);
  expect(linkJson(nsName(ns), 'eth0')?.address).toBe(MAC);
  expect(devlinkPort(HANDLE0)?.function.hw_addr).toBe(MAC);
  expect(rates()[HANDLE0]?.tx_max).toBe(100 * 125000);
  expect(cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', containerId: 'vfdpu', netns: ns }).status).toBe(0);

  // someone changes the VF function behind the plugin's back: CHECK says so
  dpuExec('a', 'devlink', 'port', 'function', 'rate', 'set', HANDLE0, 'tx_max', '5mbit');
  const check = cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', containerId: 'vfdpu', netns: ns });
  expect(check.json).toMatchObject({ code: 120 });
  expect(check.json?.msg).toMatch(/VF function of pf0vf0: maxTxRate is 5, expected 100/);

  expect(cni(A, conf, { command: 'DEL', containerId: 'vfdpu', netns: ns }).status).toBe(0);
  expect(devlinkPort(HANDLE0)?.function.hw_addr).toBe('00:00:00:00:00:00');
  expect(rates()[HANDLE0]?.tx_max).toBeUndefined();
  expect(linkJson(A.hostNetns, A.vfs[0]?.netdev as string)?.address).toBe(A.vfs[0]?.mac);
});

test("sriov-cni's max_tx_rate sets the DPU-side rate limit; unknown fields give one warning line per command", () => {
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.112.0.0/24', '10.112.0.10', '10.112.0.20', 'vfalias'), dpu: { privateKeyFile: key }, extra: { max_tx_rate: 200, link_state: 'enable', frobnicate: true }, raw: { dpu: { knownHostFile: '/typo' } } });
  const ns = container('vfalias');
  const add = cni(A, conf, { command: 'ADD', containerId: 'vfalias', netns: ns });
  expect([add.status, add.json?.msg]).toEqual([0, undefined]);
  expect(rates()[HANDLE0]?.tx_max).toBe(200 * 125000);
  expect(cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', containerId: 'vfalias', netns: ns }).status).toBe(0);
  expect(cni(A, conf, { command: 'DEL', containerId: 'vfalias', netns: ns }).status).toBe(0);
  expect(rates()[HANDLE0]?.tx_max).toBeUndefined();

  const warnings = readJsonLines(nodeValues(conf).logFile).filter((l) => l.containerId === 'vfalias' && l.level === 40 && /ignored unknown config field/.test(String(l.msg)));
  expect(warnings.map((l) => [l.command, l.msg])).toEqual(['ADD', 'CHECK', 'DEL'].map((c) => [c, 'ignored unknown config fields "frobnicate", "dpu.knownHostFile": check the spelling (see docs/configuration.md)']));
});

test.each([
  ['the uplink', 'pci/0000:03:00.0/65535'],
  ['the host PF', 'pci/0000:03:00.0/0'],
  ['a port that does not exist', 'pci/0000:03:00.0/99'],
])('the guard refuses a port function set on %s', (_what, handle) => {
  for (const command of [`devlink port function set ${handle} hw_addr 02:00:00:00:00:01`, `devlink port function rate set ${handle} tx_max 1mbit`]) {
    const r = sshGuarded(command);
    expect(r.status).toBe(126);
    expect(r.stderr).toMatch(/is not the port of a VF representor on this DPU/);
  }
  expect(devlinkPort('pci/0000:03:00.0/1')?.function.hw_addr).toBe('00:00:00:00:00:00');
});

test('mtu 1480 over the 1500-byte uplink is refused with code 7 and the numbers; nothing is left behind', () => {
  const ipamDir = join(tb.stateDir, 'ipam-a-vfdpu-mtu');
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.111.0.0/24', '10.111.0.10', '10.111.0.20', 'vfdpu-mtu'), extra: { mtu: 1480 } });
  const ns = container('vfdpu-mtu');
  const add = cni(A, conf, { command: 'ADD', containerId: 'vfdpu-mtu', netns: ns });
  expect(add.status).not.toBe(0);
  expect(add.json).toMatchObject({
    code: 7,
    msg: "invalid network config: mtu: mtu 1480 needs an underlay MTU of at least 1530 (VXLAN over IPv4 adds 50 bytes); the DPU's uplink br-phy carrying localVtep 198.51.100.1 has MTU 1500: lower mtu to 1450 or raise the uplink MTU",
  });
  expect(linkJson(nsName(ns), 'eth0')).toBeUndefined();
  expect(linkJson(A.hostNetns, A.vfs[0]?.netdev as string)).toMatchObject({ address: A.vfs[0]?.mac, mtu: 1500 });
  expect(dpuExec('a', 'ovs-vsctl', 'list-br')).not.toContain('br-vni100');
  const { stateDir } = nodeValues(conf);
  const leftovers = existsSync(stateDir) ? readdirSync(stateDir, { recursive: true }).map(String).filter((f) => !/^(\.|allocations$|attachments$|lock)/.test(f)) : [];
  expect(leftovers).toEqual([]);
  // IPAM ran alongside the DPU's answer and was undone: no address is held
  expect(existsSync(ipamDir) ? readdirSync(ipamDir, { recursive: true }).map(String).filter((f) => /10\.111\./.test(f)) : []).toEqual([]);
  // the same network at the largest MTU that fits works
  const fits = cni(A, { ...conf, mtu: 1450 }, { command: 'ADD', containerId: 'vfdpu-mtu', netns: ns });
  expect([fits.status, fits.json?.msg]).toEqual([0, undefined]);
  expect(cni(A, { ...conf, mtu: 1450 }, { command: 'DEL', containerId: 'vfdpu-mtu', netns: ns }).status).toBe(0);
});
