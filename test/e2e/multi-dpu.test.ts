/**
 * End-to-end: a host with two PFs, each on its own emulated DPU (testbed.sh up --pfs 2: ens1f0np0 on DPU "a",
 * ens1f1np1 with representors pf1vf<N> on DPU "a2"), one network drawing VFs from both through `pf: [..]` and
 * `dpus`, and traffic to a container on another site. The packaged binary, real OVS, sshd and host-local IPAM.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  cni, container, dpuConf, firstIp, hostLocal, linkJson, netConf, ping, removeContainers, requireBinary, sh, site,
  type Site, type SitePf, type Testbed, TESTBED, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(120000);

let tb: Testbed;
let A: Site;
let B: Site;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(2, 'a,b', 2);
  A = site(tb, 'a');
  B = site(tb, 'b');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const NET = 'vni101';
const networkWide = { containerId: '', netns: '', ifname: '' };

/** Host a: both PFs, each mapped to its own DPU; no `dpu` at all. */
function confA(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [pf0, pf1] = A.pfs as [SitePf, SitePf];
  return netConf(tb, A, { name: NET, vni: 101, ipam: hostLocal(tb, A, '10.101.0.0/24', '10.101.0.10', '10.101.0.59', NET), drop: ['dpu'], extra: { pf: [pf0.pf, pf1.pf], dpus: { [pf0.pf]: dpuConf(tb, pf0), [pf1.pf]: dpuConf(tb, pf1) }, ...extra } });
}

/** Host b: one PF, one DPU, whose VXLAN mesh includes both of host a's DPUs (from the testbed's remoteVteps). */
function confB(): Record<string, unknown> {
  return netConf(tb, B, { name: NET, vni: 101, ipam: hostLocal(tb, B, '10.101.0.0/24', '10.101.0.60', '10.101.0.99', NET) });
}

/** The representors plugged into the network's bridge on a DPU (not its VXLAN tunnel ports). */
function ports(dpu: string): string[] {
  const r = spawnSync('bash', [TESTBED, 'dpu-exec', dpu, 'ovs-vsctl', 'list-ports', 'br-vni101'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter((p) => /^pf\d+vf\d+$/.test(p)) : [];
}

function stateFiles(sub: string): string[] {
  const dir = join(tb.stateDir, 'plugin-a', sub);
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
}

function record(id: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(tb.stateDir, 'plugin-a', 'attachments', `${id}:eth0`), 'utf8')) as Record<string, unknown>;
}

function add(s: Site, conf: Record<string, unknown>, id: string, ns: string): Record<string, unknown> {
  const r = cni(s, conf, { command: 'ADD', containerId: id, netns: ns });
  if (r.status !== 0) throw new Error(`ADD ${id} failed: ${r.stdout} ${r.stderr}`);
  return r.json as Record<string, unknown>;
}

const pciOf = (res: Record<string, unknown>) => ((res.interfaces as Array<{ pciID?: string }>)[0] as { pciID?: string }).pciID;

describe('a host with two PFs on two DPUs', () => {
  const ns: Record<string, string> = {};
  const res: Record<string, Record<string, unknown>> = {};

  test('the testbed gives host a a second PF whose representors are on a second DPU', () => {
    expect(A.pfs.map((p) => [p.pf, p.pfPci, p.dpu])).toEqual([['ens1f0np0', '0000:03:00.0', 'a'], ['ens1f1np1', '0000:03:00.1', 'a2']]);
    expect(A.pfs[1]?.vfs.map((v) => v.representor)).toEqual(['pf1vf0', 'pf1vf1']);
    expect(readlinkPhysfn(A.pfs[1]?.vfs[0]?.pci as string)).toBe('../0000:03:00.1');
    expect(B.remoteVteps).toEqual(expect.arrayContaining([A.pfs[0]?.localVtep, A.pfs[1]?.localVtep]));
  });

  test('ADD takes the first PF until it is exhausted, then the second, plugging pf1vfN on DPU 2', () => {
    for (const id of ['a1', 'a2', 'a3']) {
      ns[id] = container(id);
      res[id] = add(A, confA(), `ctr-${id}`, ns[id] as string);
    }
    expect([pciOf(res.a1 ?? {}), pciOf(res.a2 ?? {}), pciOf(res.a3 ?? {})]).toEqual([A.pfs[0]?.vfs[0]?.pci, A.pfs[0]?.vfs[1]?.pci, A.pfs[1]?.vfs[0]?.pci]);
    expect(ports('a')).toEqual(expect.arrayContaining(['pf0vf0', 'pf0vf1']));
    expect(ports('a')).not.toContain('pf1vf0');
    expect(ports('a2')).toContain('pf1vf0');
    expect(sh('bash', [TESTBED, 'dpu-exec', 'a2', 'ovs-vsctl', 'get', 'Port', 'pf1vf0', 'external_ids'])).toContain('dpu-overlay.container=ctr-a3');
    expect(record('ctr-a3')).toMatchObject({ dpuKey: 'ens1f1np1', dpu: { target: `root@${A.pfs[1]?.dpuHost}:22`, representor: 'pf1vf0' } });
    expect(record('ctr-a1')).toMatchObject({ dpuKey: 'ens1f0np0', dpu: { target: `root@${A.pfs[0]?.dpuHost}:22` } });
    ns.b1 = container('b1');
    res.b1 = add(B, confB(), 'ctr-b1', ns.b1);
  });

  test('containers on both PFs reach a container on another site, and each other across the two DPUs', () => {
    const b1 = firstIp(res.b1);
    expect(ping(ns.a1 as string, b1)).toBe(true);
    expect(ping(ns.a3 as string, b1)).toBe(true);
    expect(ping(ns.b1 as string, firstIp(res.a3))).toBe(true);
    expect(ping(ns.a1 as string, firstIp(res.a3))).toBe(true);
  });

  test('CHECK reaches the DPU each attachment was plugged on', () => {
    for (const id of ['a1', 'a3']) {
      const r = cni(A, { ...confA(), prevResult: res[id] }, { command: 'CHECK', containerId: `ctr-${id}`, netns: ns[id] });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });

  test('DEL unplugs from DPU 2 and leaves nothing behind there', () => {
    expect(cni(A, confA(), { command: 'DEL', containerId: 'ctr-a3', netns: ns.a3 }).status).toBe(0);
    expect(ports('a2')).toEqual([]);
    expect(sh('bash', [TESTBED, 'dpu-exec', 'a2', 'ovs-vsctl', 'list-br']).split('\n').filter(Boolean)).toEqual(['br-phy']);
    expect(ports('a')).toEqual(expect.arrayContaining(['pf0vf0', 'pf0vf1']));
    expect(linkJson(A.hostNetns, 'ens1f1v0')).toMatchObject({ address: A.pfs[1]?.vfs[0]?.mac, mtu: 1500 });
    expect(stateFiles('attachments')).not.toContain('ctr-a3:eth0');
    expect(stateFiles('allocations')).not.toContain(A.pfs[1]?.vfs[0]?.pci);
  });

  test('a deviceID naming a VF of the second PF uses DPU 2', () => {
    ns.a4 = container('a4');
    const pci = A.pfs[1]?.vfs[1]?.pci as string;
    res.a4 = add(A, confA({ runtimeConfig: { deviceID: pci } }), 'ctr-a4', ns.a4);
    expect(pciOf(res.a4)).toBe(pci);
    expect(ports('a2')).toEqual(['pf1vf1']);
    expect(ping(ns.a4, firstIp(res.b1))).toBe(true);
    expect(cni(A, confA(), { command: 'DEL', containerId: 'ctr-a4', netns: ns.a4 }).status).toBe(0);
    expect(ports('a2')).toEqual([]);
  });

  test('STATUS asks every DPU and names the one that does not answer', () => {
    expect(cni(A, confA(), { command: 'STATUS', ...networkWide }).status).toBe(0);
    sh('bash', [TESTBED, 'dpu-ctl', 'a2', 'sshd-stop']);
    try {
      const r = cni(A, confA({ dpus: { [A.pfs[0]?.pf as string]: dpuConf(tb, A.pfs[0] as SitePf), [A.pfs[1]?.pf as string]: dpuConf(tb, A.pfs[1] as SitePf, { timeoutMs: 2000 }) } }), { command: 'STATUS', ...networkWide });
      expect(r.status).not.toBe(0);
      expect(r.json).toMatchObject({ code: 50 });
      expect(String(r.json?.msg)).toContain(`DPU root@${A.pfs[1]?.dpuHost}:22 (dpus.ens1f1np1) is not usable`);
      expect(String(r.json?.msg)).not.toContain(A.pfs[0]?.dpuHost as string);
    } finally {
      sh('bash', [TESTBED, 'dpu-ctl', 'a2', 'sshd-start']);
    }
    expect(cni(A, confA(), { command: 'STATUS', ...networkWide }).status).toBe(0);
  });

  test('GC releases a stale attachment on DPU 2, and removes a DPU 2 port whose record is gone', () => {
    ns.a5 = container('a5');
    res.a5 = add(A, confA(), 'ctr-a5', ns.a5);
    expect(ports('a2')).toEqual(['pf1vf0']);
    const keep = [{ containerID: 'ctr-a1', ifname: 'eth0' }, { containerID: 'ctr-a2', ifname: 'eth0' }];
    const gc = cni(A, { ...confA(), 'cni.dev/valid-attachments': keep }, { command: 'GC', ...networkWide });
    expect(gc.stderr).toBe('');
    expect(gc.status).toBe(0);
    expect(ports('a2')).toEqual([]);
    expect(stateFiles('attachments').sort()).toEqual(['ctr-a1:eth0', 'ctr-a2:eth0']);
    expect(linkJson(A.hostNetns, 'ens1f1v0')).toMatchObject({ address: A.pfs[1]?.vfs[0]?.mac });

    // A port on DPU 2 that no record names (stateDir lost): only GC's visit of every configured DPU finds it.
    ns.a6 = container('a6');
    add(A, confA(), 'ctr-a6', ns.a6);
    expect(ports('a2')).toEqual(['pf1vf0']);
    rmSync(join(tb.stateDir, 'plugin-a', 'attachments', 'ctr-a6:eth0'));
    rmSync(join(tb.stateDir, 'plugin-a', 'allocations', A.pfs[1]?.vfs[0]?.pci as string));
    expect(cni(A, { ...confA(), 'cni.dev/valid-attachments': keep }, { command: 'GC', ...networkWide }).status).toBe(0);
    expect(ports('a2')).toEqual([]);
    expect(ports('a')).toEqual(expect.arrayContaining(['pf0vf0', 'pf0vf1']));
  });

  test('DEL of the rest leaves both DPUs and the state dir clean', () => {
    for (const id of ['a1', 'a2']) expect(cni(A, confA(), { command: 'DEL', containerId: `ctr-${id}`, netns: ns[id] }).status).toBe(0);
    expect(cni(B, confB(), { command: 'DEL', containerId: 'ctr-b1', netns: ns.b1 }).status).toBe(0);
    for (const dpu of ['a', 'a2', 'b']) expect(sh('bash', [TESTBED, 'dpu-exec', dpu, 'ovs-vsctl', 'list-br']).split('\n').filter(Boolean)).toEqual(['br-phy']);
    expect(stateFiles('attachments')).toEqual([]);
    expect(stateFiles('allocations')).toEqual([]);
  });
});

function readlinkPhysfn(pci: string): string {
  return sh('readlink', [join(A.sysfsRoot, 'bus/pci/devices', pci, 'physfn')]).trim();
}
