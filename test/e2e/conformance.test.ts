/**
 * CNI SPEC conformance of delegation and of CHECK, GC and STATUS with Debian's reference IPAM plugins:
 * CHECK hands the runtime's prevResult to the IPAM plugin (static refuses CHECK without one), in a plain
 * config and in a conflist run through libcni, also after tuning changed the MTU; GC and STATUS with
 * IPAM plugins that predate them; STATUS naming an exhausted VF pool and an unreachable DPU.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cni, container, hostLocal, linkJson, netConf, nodeEnv, nsName, PREFIX, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { buildLibcniDriver, type ConfList, type Json, pluginDir, rmEmptyDir, run } from './runtimes';

jest.setTimeout(180000);

const WORK = `/tmp/${PREFIX}-runtimes/conformance`;
const VFS = 4;
let tb: Testbed;
let A: Site;
let driver: string;

beforeAll(() => {
  requireBinary();
  driver = buildLibcniDriver();
  tb = testbedUp(VFS, 'a');
  A = site(tb, 'a');
  rmSync(WORK, { recursive: true, force: true });
  pluginDir(join(WORK, 'bin'));
  mkdirSync(join(WORK, 'cache'), { recursive: true });
});

afterAll(() => {
  removeContainers();
  testbedDown();
  rmSync(WORK, { recursive: true, force: true });
  rmEmptyDir(`/tmp/${PREFIX}-runtimes`);
});

function staticIpam(address: string): Json {
  return { type: 'static', addresses: [{ address, gateway: address.replace(/\.\d+\/\d+$/, '.1') }] };
}

type Ipam = 'static' | 'host-local';

function ipamFor(kind: Ipam, n: number): Json {
  return kind === 'static' ? staticIpam(`10.110.0.${10 + n}/24`) : hostLocal(tb, A, '10.111.0.0/24', '10.111.0.10', '10.111.0.50', `conf${n}`);
}

describe.each<Ipam>(['static', 'host-local'])('plain config with %s IPAM', (kind) => {
  test('ADD, CHECK with prevResult (the IPAM plugin gets it), DEL', () => {
    const n = kind === 'static' ? 1 : 2;
    const ns = container(`plain-${kind}`);
    const conf = netConf(tb, A, { name: `plain-${kind}`, ipam: ipamFor(kind, n) });
    const call = { containerId: `${PREFIX}plain${n}`, netns: ns, ifname: 'net1' };
    const add = cni(A, conf, { command: 'ADD', ...call });
    expect(add.json).toMatchObject({ interfaces: [{ name: 'net1', mtu: 1450 }] });
    const check = cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', ...call });
    expect({ status: check.status, stdout: check.stdout }).toEqual({ status: 0, stdout: '' });
    expect(cni(A, { ...conf, prevResult: add.json }, { command: 'DEL', ...call }).status).toBe(0);
    expect(linkJson(nsName(ns), 'net1')).toBeUndefined();
  });
});

function libcni(command: 'ADD' | 'CHECK' | 'DEL', list: ConfList, id: string, netns: string): { status: number; json: Json | undefined; stdout: string; stderr: string } {
  const file = join(WORK, `${id}.conflist`);
  writeFileSync(file, JSON.stringify(list));
  const env = { PATH: process.env.PATH, CNI_PATH: join(WORK, 'bin'), CNI_CACHE_DIR: join(WORK, 'cache'), CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: 'net1', CNI_ARGS: 'IgnoreUnknown=1', CAP_ARGS: '{}' };
  // libcni passes its environment on to the plugins: the node file, as a runtime would set it
  const r = run('ip', ['netns', 'exec', A.hostNetns, driver, command, file], { env: { ...env, ...nodeEnv(A, list.plugins[0]) } });
  let json: Json | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, json, stdout: r.stdout, stderr: r.stderr };
}

/** dpu-overlay then tuning, as a conflist; Debian's tuning speaks up to CNI 1.0.0. */
function confList(kind: Ipam, n: number, tuning: Json): ConfList {
  const { cniVersion: _v, name: _n, ...plugin } = netConf(tb, A, { name: `list-${kind}`, ipam: ipamFor(kind, n) });
  return { cniVersion: '1.0.0', name: `list-${kind}-${n}`, plugins: [plugin, { type: 'tuning', ...tuning }] };
}

describe.each<Ipam>(['static', 'host-local'])('conflist through libcni with %s IPAM', (kind) => {
  test.each<[string, Json, number]>([
    ['tuning leaves the MTU alone', { sysctl: { 'net.ipv4.conf.net1.arp_notify': '1' } }, 1450],
    ['tuning changed the MTU after us', { mtu: 1400 }, 1400],
  ])('ADD, CHECK, DEL: %s', (_what, tuning, mtu) => {
    const n = (kind === 'static' ? 3 : 5) + (mtu === 1400 ? 1 : 0);
    const id = `${PREFIX}list${n}`;
    const ns = container(`list-${n}`);
    const list = confList(kind, n, tuning);
    const add = libcni('ADD', list, id, ns);
    expect(add).toMatchObject({ status: 0, json: { interfaces: [expect.objectContaining({ name: 'net1', sandbox: ns })] } });
    expect(linkJson(nsName(ns), 'net1')?.mtu).toBe(mtu);
    const check = libcni('CHECK', list, id, ns);
    expect({ status: check.status, stdout: check.stdout }).toEqual({ status: 0, stdout: '' });
    expect(libcni('DEL', list, id, ns).status).toBe(0);
    expect(linkJson(nsName(ns), 'net1')).toBeUndefined();
  });
});

describe('GC and STATUS', () => {
  const networkWide = { containerId: '', netns: '', ifname: '' };

  test('GC and STATUS succeed with host-local and static, which speak no CNI version that has them (not asked)', () => {
    for (const kind of ['host-local', 'static'] as const) {
      const conf = netConf(tb, A, { name: `gc-${kind}`, ipam: ipamFor(kind, 9) });
      const gc = cni(A, { ...conf, 'cni.dev/valid-attachments': [] }, { command: 'GC', ...networkWide });
      expect({ status: gc.status, stdout: gc.stdout }).toEqual({ status: 0, stdout: '' });
      const status = cni(A, conf, { command: 'STATUS', ...networkWide });
      expect({ status: status.status, stdout: status.stdout }).toEqual({ status: 0, stdout: '' });
    }
  });

  test('STATUS: code 50 naming the PF and its allocations when every VF is attached; fine again after a DEL', () => {
    const conf = netConf(tb, A, { name: 'pool', ipam: hostLocal(tb, A, '10.112.0.0/24', '10.112.0.10', '10.112.0.50', 'pool') });
    const calls = Array.from({ length: VFS }, (_, i) => ({ containerId: `${PREFIX}pool${i}`, netns: container(`pool-${i}`), ifname: 'net1' }));
    for (const call of calls) expect(cni(A, conf, { command: 'ADD', ...call }).status).toBe(0);
    const full = cni(A, conf, { command: 'STATUS', ...networkWide });
    expect(full.json).toMatchObject({ code: 50, msg: expect.stringContaining(`no free VF on PF ${A.pf}`) });
    expect(full.json?.msg).toContain(join(tb.stateDir, 'plugin-a'));
    expect(cni(A, conf, { command: 'DEL', ...calls[0]! }).status).toBe(0);
    expect(cni(A, conf, { command: 'STATUS', ...networkWide }).status).toBe(0);
    for (const call of calls.slice(1)) expect(cni(A, conf, { command: 'DEL', ...call }).status).toBe(0);
  });

  test('STATUS: code 50 naming the DPU when it cannot be reached', () => {
    const conf = netConf(tb, A, { name: 'unreachable', dpu: { port: 1, timeoutMs: 2000 } });
    const out = cni(A, conf, { command: 'STATUS', ...networkWide });
    expect(out.json).toMatchObject({ code: 50, msg: expect.stringContaining(A.dpuHost) });
  });
});

describe('ADD into a namespace that already has CNI_IFNAME', () => {
  test('code 4 naming CNI_IFNAME and the namespace; the VF, its allocation and the DPU port are given back', () => {
    const conf = netConf(tb, A, { name: 'taken', ipam: hostLocal(tb, A, '10.113.0.0/24', '10.113.0.10', '10.113.0.50', 'taken') });
    const ns = container('taken');
    // what another plugin (or an earlier attachment) left there
    execFileSync('ip', ['-n', nsName(ns), 'link', 'add', 'net1', 'type', 'veth', 'peer', 'name', 'net1p']);
    const hostVfs = () => (execFileSync('ip', ['-n', A.hostNetns, '-o', 'link', 'show'], { encoding: 'utf8' }).match(/: ens1f0v\d+[:@]/g) ?? []).length;
    const before = hostVfs();
    const call = { containerId: `${PREFIX}taken`, netns: ns, ifname: 'net1' };
    const add = cni(A, conf, { command: 'ADD', ...call });
    expect(add.json).toMatchObject({ code: 4, msg: expect.stringContaining(`CNI_IFNAME "net1": network namespace ${ns} already has an interface with that name`) });
    expect(hostVfs()).toBe(before);
    expect(linkJson(nsName(ns), 'net1')).toMatchObject({ ifname: 'net1' });
    // nothing recorded: the runtime's DEL finds nothing to undo and the next ADD elsewhere gets the same VF pool
    expect(cni(A, conf, { command: 'DEL', ...call }).status).toBe(0);
    expect(cni(A, conf, { command: 'STATUS', containerId: '', netns: '', ifname: '' }).status).toBe(0);
  });
});
