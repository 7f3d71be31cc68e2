import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSplit } from './helpers/split';
import { Sysfs } from '../../src/kernel/sysfs';
import { configuredDpus, dpuForPf, dpuOfRecord } from '../../src/plugin/dpu-client';
import { type Attachment, StateStore } from '../../src/store/attachments';
import type { PlugRequest, UnplugRequest } from '../../src/dpu/api';
import { DEAD_OWNER } from './helpers/dead-owner';
import { Bed, FINGERPRINT, PF0, PF0_VFS, PF1, PF1_VFS } from './helpers/bed';
import { buildSysfs, vfsOf } from './helpers/sysfs-tree';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

let nets: TestNetns[] = [];
beforeAll(async () => {
  nets = await Promise.all(Array.from({ length: 7 }, () => createNetns()));
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

const dpuAt = (host: string, extra: Record<string, unknown> = {}) => ({ host, privateKeyFile: '/etc/dpu-overlay/id_ed25519', hostKeyFingerprint: FINGERPRINT, localVtep: '192.0.2.1', ...extra });
const MAIN = '192.0.2.10';
const SECOND = '192.0.2.20';

function bed(): Bed {
  return new Bed(nets.map((n) => n.path));
}

/** Both PFs; the second one's VFs on a second DPU, the first's on `dpu`. */
function twoPfs(b: Bed, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return b.config({ pf: [PF0.name, PF1.name], dpus: { [PF1.name]: dpuAt(SECOND) }, ...extra });
}

function record(b: Bed, containerId: string): Attachment {
  return new StateStore(b.stateDir).loadAttachment(containerId, 'net1') as Attachment;
}

function conf(raw: Record<string, unknown>) {
  return loadSplit({ cniVersion: '1.1.0', name: 'n', vni: 1, ...raw }, {});
}

function rejected(raw: Record<string, unknown>): string {
  try {
    conf(raw);
  } catch (err) {
    expect((err as { code?: number }).code).toBe(7);
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('config: pf lists and dpus', () => {
  it('pf may be a string or a list; both resolve to pfs', () => {
    expect(conf({ pf: 'ens1f0' }).pfs).toEqual(['ens1f0']);
    expect(conf({ pf: ['ens1f0', 'ens1f1'] }).pfs).toEqual(['ens1f0', 'ens1f1']);
    expect(conf({}).pfs).toEqual([]);
  });

  it.each([
    ['an empty list', { pf: [] }, 'pf'],
    ['a duplicate', { pf: ['ens1f0', 'ens1f0'] }, 'pf'],
    ['17 PFs', { pf: Array.from({ length: 17 }, (_, i) => `p${i}`) }, 'pf'],
    ['a bad name in the list', { pf: ['ens1f0', 'a b'] }, 'pf'],
    ['pfIndex with two PFs', { pf: ['ens1f0', 'ens1f1'], pfIndex: 1 }, 'pfIndex: applies to a single pf only'],
    ['a dpus key that is not a netdev name', { dpus: { '../x': dpuAt(SECOND) } }, 'dpus.../x: key must be a PF network interface name'],
    ['a dpus entry that is not a dpu object', { dpus: { ens1f1: { host: SECOND } } }, 'dpus.ens1f1.'],
    ['a PF in pf with neither a dpus entry nor dpu', { pf: ['ens1f0', 'ens1f1'], dpus: { ens1f1: dpuAt(SECOND) } }, 'dpus: a PF in pf has no entry in dpus'],
  ])('refuses %s (code 7, naming the field)', (_, raw, expected) => {
    expect(rejected(raw)).toContain(expected);
  });

  it('allows a dpus entry for a PF not in pf (a deviceID may name its VFs), and pfIndex with a one-element list', () => {
    expect(conf({ pf: 'ens1f0', dpu: dpuAt(MAIN), dpus: { ens1f1: dpuAt(SECOND) } }).dpus?.ens1f1?.host).toBe(SECOND);
    expect(conf({ pf: ['ens1f0'], pfIndex: 3 }).pfIndex).toBe(3);
  });
});

describe('DPU selection', () => {
  const c = conf({ pf: ['ens1f0', 'ens1f1'], dpu: dpuAt(MAIN), dpus: { ens1f1: dpuAt(SECOND), ens1f2: dpuAt(MAIN) } });

  it('a PF with a dpus entry uses it, any other PF uses dpu', () => {
    expect(dpuForPf(c, 'ens1f1')).toMatchObject({ key: 'ens1f1', dpu: { host: SECOND } });
    expect(dpuForPf(c, 'ens1f0')).toEqual({ dpu: c.dpu });
    expect(dpuForPf(conf({}), 'ens1f0')).toBeUndefined();
  });

  it('a PF or recorded key named like an Object.prototype member finds no dpus entry', () => {
    expect(dpuForPf(c, 'constructor')).toEqual({ dpu: c.dpu });
    expect(dpuOfRecord(c, { dpuKey: 'toString' })).toBeUndefined();
    expect(rejected({ pf: ['ens1f0', 'hasOwnProperty'], dpus: { ens1f0: dpuAt(SECOND) } })).toContain('dpus: a PF in pf has no entry in dpus');
  });

  it('every configured DPU once, identical entries merged', () => {
    expect(configuredDpus(c).map((d) => [d.key, d.dpu.host])).toEqual([[undefined, MAIN], ['ens1f1', SECOND]]);
  });

  it('a record reaches the DPU it recorded: by target first, then by key; a record without dpuKey means dpu', () => {
    const target = (host: string) => ({ target: `root@${host}:22` });
    expect(dpuOfRecord(c, {})).toEqual({ dpu: c.dpu });
    expect(dpuOfRecord(c, { dpu: target(MAIN) })).toEqual({ dpu: c.dpu });
    expect(dpuOfRecord(c, { dpuKey: 'ens1f1' })?.dpu.host).toBe(SECOND);
    // the config moved PF ens1f1 to another DPU since: the recorded target still wins
    const moved = conf({ pf: 'ens1f0', dpu: dpuAt(SECOND), dpus: { ens1f1: dpuAt('192.0.2.30') } });
    expect(dpuOfRecord(moved, { dpuKey: 'ens1f1', dpu: target(SECOND) })).toEqual({ dpu: moved.dpu });
    // no configured DPU has the recorded address any more (re-addressed): the one mapped now
    expect(dpuOfRecord(moved, { dpuKey: 'ens1f1', dpu: target('192.0.2.99') })?.dpu.host).toBe('192.0.2.30');
    expect(dpuOfRecord(conf({ dpus: { ens1f0: dpuAt(MAIN) } }), {})).toBeUndefined();
  });
});

describe('pfIndex from sysfs', () => {
  function tree(portName?: string): Sysfs {
    const root = buildSysfs(tmpDir(), [{ name: 'ens2f1np1', pci: '0000:81:00.1', vfs: vfsOf('ens2f1', '82', 1) }]);
    if (portName !== undefined) writeFileSync(join(root, 'class/net/ens2f1np1/phys_port_name'), portName);
    return new Sysfs(root);
  }

  it('is phys_port_name p<N>, else the PF\'s PCI function; pfIndex overrides', () => {
    expect(tree('p1\n').listVfs('ens2f1np1')[0]?.pfIndex).toBe(1);
    expect(tree('p3').vfByPci('0000:82:00.2').pfIndex).toBe(3);
    expect(tree().listVfs('ens2f1np1')[0]?.pfIndex).toBe(1);
    expect(tree('pf0vf1').listVfs('ens2f1np1')[0]?.pfIndex).toBe(1);
    expect(tree('p1').listVfs('ens2f1np1', 7)[0]?.pfIndex).toBe(7);
  });
});

describe('ADD, DEL, CHECK, GC and STATUS with two PFs on two DPUs', () => {
  it('draws from the first PF until it is exhausted, then the second, whose VFs plug on its own DPU as pf1vfN', async () => {
    const b = bed();
    for (let i = 0; i < 5; i++) expect((await b.run('ADD', { containerId: `c${i}`, netns: nets[i]!.path, config: twoPfs(b) })).exitCode).toBe(0);
    expect([0, 1, 2, 3, 4].map((i) => record(b, `c${i}`).vf.pci)).toEqual([...PF0_VFS.map((v) => v.pci), PF1_VFS[0]!.pci]);
    const second = b.dpuAt(SECOND);
    expect(b.dpu.callsOf('plug').map((p) => (p as PlugRequest).representor)).toEqual(['pf0vf0', 'pf0vf1', 'pf0vf2', 'pf0vf3']);
    expect(second.callsOf('plug').map((p) => (p as PlugRequest).representor)).toEqual(['pf1vf0']);
    expect(record(b, 'c4')).toMatchObject({ dpuKey: PF1.name, dpu: { target: `root@${SECOND}:22`, representor: 'pf1vf0' } });
    expect(record(b, 'c0').dpuKey).toBeUndefined();

    expect((await b.run('DEL', { containerId: 'c4', netns: nets[4]!.path, config: twoPfs(b) })).exitCode).toBe(0);
    expect(second.callsOf('unplug').map((u) => (u as UnplugRequest).representor)).toEqual(['pf1vf0']);
    expect(b.dpu.callsOf('unplug')).toEqual([]);
  });

  it('CHECK asks the DPU the attachment was plugged on', async () => {
    const b = bed();
    const add = await b.run('ADD', { containerId: 'c1', config: twoPfs(b, { pf: [PF1.name, PF0.name] }) });
    expect(add.exitCode).toBe(0);
    const check = await b.run('CHECK', { containerId: 'c1', config: { ...twoPfs(b), prevResult: add.json } });
    expect(check.exitCode).toBe(0);
    expect(b.dpuAt(SECOND).callsOf('check')).toHaveLength(1);
    expect(b.dpu.callsOf('check')).toHaveLength(0);
  });

  it('a deviceID of the second PF uses its DPU; with dpus but no dpu, a PF without an entry is code 7', async () => {
    const b = bed();
    expect((await b.run('ADD', { config: twoPfs(b, { runtimeConfig: { deviceID: PF1_VFS[1]!.pci } }) })).exitCode).toBe(0);
    expect(b.dpuAt(SECOND).callsOf('plug').map((p) => (p as PlugRequest).representor)).toEqual(['pf1vf1']);
    const onlyDpus = { ...b.config({ pf: undefined, dpus: { [PF1.name]: dpuAt(SECOND) }, runtimeConfig: { deviceID: PF0_VFS[0]!.pci } }), dpu: undefined };
    const out = await b.run('ADD', { containerId: 'c2', netns: nets[1]!.path, config: onlyDpus });
    expect(out.json).toMatchObject({ code: 7 });
    expect(String(out.json?.msg)).toContain(`PF ${PF0.name}, which has no entry in dpus, and there is no dpu`);
    expect(b.stateFiles().filter((f) => !f.includes('c1:'))).toEqual(['allocations/' + PF1_VFS[1]!.pci]);
  });

  it('DEL reaches the recorded DPU after the config changed; a record without dpuKey means dpu', async () => {
    const b = bed();
    expect((await b.run('ADD', { config: twoPfs(b, { runtimeConfig: { deviceID: PF1_VFS[0]!.pci } }) })).exitCode).toBe(0);
    // the operator dropped the mapping and made the second DPU the network's dpu
    expect((await b.run('DEL', { config: b.config({ dpu: dpuAt(SECOND) }) })).exitCode).toBe(0);
    expect(b.dpuAt(SECOND).callsOf('unplug')).toHaveLength(1);

    // an interrupted ADD from before dpus (no dpuKey, no port recorded) is unplugged by owner on dpu
    expect((await b.run('ADD', { containerId: 'c2', config: b.config() })).exitCode).toBe(0);
    const path = join(b.stateDir, 'attachments', 'c2:net1');
    const old = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    delete old.dpu;
    delete old.dpuKey;
    writeFileSync(path, JSON.stringify({ ...old, phase: 'adding', owner: DEAD_OWNER }));
    const calls = b.dpuAt(SECOND).calls.length;
    const del2 = await b.run('DEL', { containerId: 'c2', config: twoPfs(b) });
    expect(del2.json).toBeUndefined();
    expect(del2.exitCode).toBe(0);
    expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ containerId: 'c2', representor: '' })]);
    expect(b.dpuAt(SECOND).calls.length).toBe(calls);
  });

  it('DEL without a record asks every configured DPU; GC and STATUS visit every one', async () => {
    const b = bed();
    expect((await b.run('DEL', { containerId: 'gone', config: twoPfs(b) })).exitCode).toBe(0);
    expect(b.dpu.callsOf('unplug')).toHaveLength(1);
    expect(b.dpuAt(SECOND).callsOf('unplug')).toHaveLength(1);

    const gcConf = { ...twoPfs(b), 'cni.dev/valid-attachments': [] };
    expect((await b.run('GC', { containerId: '', ifname: '', netns: '', config: gcConf })).exitCode).toBe(0);
    expect(b.dpu.callsOf('gc')).toHaveLength(1);
    expect(b.dpuAt(SECOND).callsOf('gc')).toHaveLength(1);

    expect((await b.run('STATUS', { containerId: '', ifname: '', netns: '', config: twoPfs(b) })).exitCode).toBe(0);
    b.dpuAt(SECOND).failures.status = new Error('connection refused');
    const status = await b.run('STATUS', { containerId: '', ifname: '', netns: '', config: twoPfs(b) });
    expect(status.json).toMatchObject({ code: 50 });
    expect(String(status.json?.msg)).toBe(`DPU root@${SECOND}:22 (dpus.${PF1.name}) is not usable: connection refused`);
  });

  it('GC releases a stale attachment on its own DPU and still visits the others when one fails', async () => {
    const b = bed();
    expect((await b.run('ADD', { config: twoPfs(b, { runtimeConfig: { deviceID: PF1_VFS[0]!.pci } }) })).exitCode).toBe(0);
    b.dpu.failures.gc = new Error('DPU 1 down');
    const gc = await b.run('GC', { containerId: '', ifname: '', netns: '', config: { ...twoPfs(b), 'cni.dev/valid-attachments': [] } });
    expect(gc.exitCode).not.toBe(0);
    expect(String(gc.json?.msg)).toContain('DPU 1 down');
    expect(b.dpuAt(SECOND).callsOf('unplug')).toEqual([expect.objectContaining({ containerId: 'c1', representor: 'pf1vf0' })]);
    expect(b.dpuAt(SECOND).callsOf('gc')).toHaveLength(1);
    expect(b.stateFiles()).toEqual([]);
  });

  it('no free VF on any PF names them all; STATUS reports the pool of both', async () => {
    const b = bed();
    for (let i = 0; i < 6; i++) expect((await b.run('ADD', { containerId: `c${i}`, netns: nets[i]!.path, config: twoPfs(b) })).exitCode).toBe(0);
    const out = await b.run('ADD', { containerId: 'c9', netns: nets[6]!.path, config: twoPfs(b) });
    expect(String(out.json?.msg)).toContain(`no free VF on PFs ${PF0.name}, ${PF1.name}: all 6 VFs`);
    const status = await b.run('STATUS', { containerId: '', ifname: '', netns: '', config: twoPfs(b) });
    expect(status.json).toMatchObject({ code: 50 });
    expect(String(status.json?.msg)).toContain(`no free VF on PF ${PF0.name}, ${PF1.name}`);
  });
});
