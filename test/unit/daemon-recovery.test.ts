/**
 * The daemon's DPU recovery with a fake DPU: which records are re-plugged after a reboot (boot id), a new OVS
 * database (Open_vSwitch UUID), an outage or lost ports; DELs interrupted by an outage are finished, never
 * re-plugged; a record under a DEL's lock is left alone; STATUS reasons while down and while recovering.
 */
import { DpuConfigSchema, type DpuConfig } from '../../src/config/schema';
import type { PlugRequest, PlugResult, PortOwner, UnplugRequest, VfFunctionTarget, VfFunctionValues } from '../../src/dpu/api';
import type { DpuProbe } from '../../src/dpu/ovs/client';
import { DpuRecovery, planRecovery, type RecoveryLink } from '../../src/daemon/recovery';
import { type Attachment, StateStore } from '../../src/store/attachments';
import { spawn } from 'node:child_process';
import { processStartTime } from '../../src/kernel/process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

const BOOT = '1b2c3d4e-0000-4000-8000-000000000001';
const BOOT2 = '1b2c3d4e-0000-4000-8000-000000000002';
const DB = '0f6a1a55-3f2d-4c43-9d8e-000000000001';
const DB2 = '0f6a1a55-3f2d-4c43-9d8e-000000000002';
const uuid = (n: number) => `a1b2c3d4-e5f6-4711-8899-${String(n).padStart(12, '0')}`;

const DPU: DpuConfig = DpuConfigSchema.parse({ host: '192.0.2.1', privateKeyFile: '/k', hostKeyFingerprint: `SHA256:${'A'.repeat(43)}`, localVtep: '198.51.100.1', remoteVteps: ['198.51.100.2'] });

function record(containerId: string, port: number | undefined, extra: Partial<Attachment> = {}): Attachment {
  return {
    version: 1, phase: 'ready', network: 'ovl', containerId, ifname: 'net1', netns: `/run/netns/${containerId}`, vni: 100,
    vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: '02:00:00:00:00:01', originalMtu: 1500 },
    tmpName: 'dpuo01020304', mtu: 1450, rawConfig: '{}', cniPath: ['/opt/cni/bin'],
    dpu: { target: 'root@192.0.2.1:22', bridge: 'br-vni100', representor: `pf0vf${containerId.length}`, ...(port !== undefined ? { portUuid: uuid(port) } : {}), config: DPU },
    ...extra,
  };
}

function probe(bootId: string, dbUuid: string, ports: Array<[number, string]>): DpuProbe {
  return { bootId, dbUuid, ports: new Map(ports.map(([n, c]): [string, PortOwner] => [uuid(n), { network: 'ovl', containerId: c, ifname: 'net1' }])) };
}

describe('planRecovery', () => {
  const a = record('a', 1);
  const b = record('bb', 2);
  const deleted = record('ccc', 3, { hostReleased: true, dpu: { ...record('ccc', 3).dpu!, unplugPending: true } });
  const adding = record('dddd', undefined, { phase: 'adding' });
  const all = [a, b, deleted, adding];

  it('same identity, every port present: nothing to do', () => {
    expect(planRecovery({ bootId: BOOT, dbUuid: DB }, probe(BOOT, DB, [[1, 'a'], [2, 'bb']]), [a, b])).toEqual({ reason: undefined, replug: [], finish: [], duplicates: [] });
  });

  it('a new OVS database: every ready attachment, never an interrupted DEL or an ADD in progress', () => {
    const plan = planRecovery({ bootId: BOOT, dbUuid: DB }, probe(BOOT, DB2, []), all);
    expect(plan.replug).toEqual([a, b]);
    expect(plan.finish).toEqual([deleted]);
    expect(plan.reason).toMatch(/OVS database was created again/);
  });

  it('a reboot: every ready attachment, even with its port still in the database (representors come back down)', () => {
    const plan = planRecovery({ bootId: BOOT, dbUuid: DB }, probe(BOOT2, DB, [[1, 'a'], [2, 'bb']]), [a, b]);
    expect(plan.replug).toEqual([a, b]);
    expect(plan.reason).toMatch(/rebooted/);
  });

  it('plugs missing (a port removed, or one now owned by someone else): only those', () => {
    const plan = planRecovery({ bootId: BOOT, dbUuid: DB }, probe(BOOT, DB, [[1, 'a'], [2, 'other']]), [a, b]);
    expect(plan.replug).toEqual([b]);
    expect(plan.reason).toBe('1 port(s) missing from the DPU or not re-plugged yet');
  });

  it('first answer after the daemon starts (no identity known): ports missing are re-plugged', () => {
    expect(planRecovery(undefined, probe(BOOT, DB2, [[1, 'a']]), [a, b]).replug).toEqual([b]);
  });

  it('replug --all: every ready attachment, ports present or not', () => {
    const plan = planRecovery(undefined, probe(BOOT, DB, [[1, 'a'], [2, 'bb']]), all, true);
    expect(plan.replug).toEqual([a, b]);
    expect(plan.finish).toEqual([deleted]);
  });

  it('two records naming one representor: neither is re-plugged (not even with --all or after a reboot), both are reported', () => {
    const twin = record('zz', 9, { network: 'other', vni: 200 });
    expect(twin.dpu?.representor).toBe(b.dpu?.representor);
    for (const plan of [planRecovery({ bootId: BOOT, dbUuid: DB }, probe(BOOT2, DB, []), [a, b, twin]), planRecovery(undefined, probe(BOOT, DB, [[1, 'a']]), [a, b, twin], true), planRecovery(undefined, probe(BOOT, DB, [[1, 'a']]), [a, b, twin])]) {
      expect(plan.replug).not.toContain(b);
      expect(plan.replug).not.toContain(twin);
      expect(plan.duplicates).toEqual([{ representor: 'pf0vf2', records: [b, twin] }]);
    }
  });

  it('a record without a port UUID (older plugin) matches its port by owner', () => {
    const old = record('a', undefined);
    expect(planRecovery(undefined, probe(BOOT, DB, [[7, 'a']]), [old]).replug).toEqual([]);
    expect(planRecovery(undefined, probe(BOOT, DB, []), [old]).replug).toEqual([old]);
  });
});

class FakeLink implements RecoveryLink {
  answer: DpuProbe | Error = probe(BOOT, DB, []);
  plugs: PlugRequest[] = [];
  unplugs: UnplugRequest[] = [];
  private next = 100;
  probe(): Promise<DpuProbe> {
    return this.answer instanceof Error ? Promise.reject(this.answer) : Promise.resolve(this.answer);
  }
  plug(_s: unknown, req: PlugRequest): Promise<PlugResult> {
    this.plugs.push(req);
    return Promise.resolve({ bridge: 'br-vni100', portUuid: uuid(this.next++) });
  }
  unplug(_s: unknown, req: UnplugRequest): Promise<void> {
    this.unplugs.push(req);
    return Promise.resolve();
  }
  vfSets: Array<{ target: VfFunctionTarget; values: VfFunctionValues }> = [];
  setVfFunction(_s: unknown, target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    this.vfSets.push({ target, values });
    return Promise.resolve();
  }
  /** What the DPU holds after the plugs so far (their new UUIDs). */
  portsOf(records: Attachment[]): Array<[number, string]> {
    return records.map((r) => [Number(r.dpu?.portUuid?.slice(-12)), r.containerId]);
  }
}

describe('DpuRecovery', () => {
  let dir: string;
  let state: StateStore;
  let link: FakeLink;
  let recovery: DpuRecovery;
  let logs: Array<Record<string, unknown>>;

  beforeEach(() => {
    dir = tmpDir();
    state = new StateStore(dir, { expectedUid: process.getuid?.() });
    state.ensure();
    link = new FakeLink();
    const m = memoryLogger();
    logs = m.records;
    // the records' container namespaces (/run/netns/<id>) do not exist here: every container counts as alive
    recovery = new DpuRecovery({ stateDirs: [dir], pollMs: 1000, linkFor: () => link, netnsAlive: () => true }, m.log);
  });
  afterEach(() => removeTmpDirs());

  it('stop() waits for the polls already running (the tunnel follower\'s too) and no poll starts after it', async () => {
    let polls = 0;
    let running = 0;
    const follower = { poll: async () => { polls++; running++; await new Promise((r) => setTimeout(r, 150)); running--; } };
    const r = new DpuRecovery({ stateDirs: [dir], pollMs: 200, linkFor: () => link, netnsAlive: () => true, follower }, memoryLogger().log);
    r.start();
    await new Promise((res) => setTimeout(res, 20));
    await r.stop();
    expect(running).toBe(0);
    const after = polls;
    expect(after).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, 500));
    expect(polls).toBe(after);
  });

  it('after a database wipe, an attachment whose container namespace is gone is released (releaseGone), never re-plugged', async () => {
    const released: string[] = [];
    const m = memoryLogger();
    recovery = new DpuRecovery({
      stateDirs: [dir], pollMs: 1000, linkFor: () => link, netnsAlive: (att) => att.containerId !== 'gone',
      releaseGone: async (att) => void released.push(att.containerId),
    }, m.log);
    state.saveAttachment(record('a', 1));
    state.saveAttachment(record('gone', 2));
    link.answer = probe(BOOT, DB2, []);
    await recovery.tick();
    expect(link.plugs.map((p) => p.containerId)).toEqual(['a']);
    expect(released).toEqual(['gone']);
    expect(m.records.some((l) => String(l.msg).startsWith('released an attachment whose container network namespace is gone') && l.containerId === 'gone')).toBe(true);
  });

  it('without releaseGone a gone container is only reported, never re-plugged; a failing release is retried at the next poll', async () => {
    const m = memoryLogger();
    let calls = 0;
    recovery = new DpuRecovery({ stateDirs: [dir], pollMs: 1000, linkFor: () => link, netnsAlive: () => false }, m.log);
    state.saveAttachment(record('gone', 2));
    link.answer = probe(BOOT, DB2, []);
    await recovery.tick();
    expect(link.plugs).toEqual([]);
    expect(m.records.some((l) => String(l.msg).startsWith('not re-plugging an attachment whose container network namespace is gone'))).toBe(true);
    recovery = new DpuRecovery({ stateDirs: [dir], pollMs: 1000, linkFor: () => link, netnsAlive: () => false, releaseGone: () => Promise.reject(new Error(`busy ${++calls}`)) }, m.log);
    await recovery.tick();
    await recovery.tick();
    expect(calls).toBe(2);
    expect(link.plugs).toEqual([]);
  });

  it('outage, then a new database: STATUS reasons meanwhile; every ready attachment re-plugged with its owner; the new port UUID recorded', async () => {
    state.saveAttachment(record('a', 1));
    state.saveAttachment(record('bb', 2));
    link.answer = probe(BOOT, DB, [[1, 'a'], [2, 'bb']]);
    await recovery.tick();
    expect(link.plugs).toEqual([]);
    expect(recovery.problem(DPU)).toBeUndefined();

    link.answer = new Error('ovs-vsctl: unix:/var/run/openvswitch/db.sock: database connection failed');
    await recovery.tick();
    expect(recovery.problem(DPU)).toMatch(/^DPU root@192\.0\.2\.1:22 is not available: .*database connection failed/);

    link.answer = probe(BOOT, DB2, []);
    await recovery.tick();
    expect(link.plugs.map((p) => [p.containerId, p.ifname, p.network, p.vni, p.netns, p.representor, p.mtu]).sort()).toEqual([
      ['a', 'net1', 'ovl', 100, '/run/netns/a', 'pf0vf1', 1450],
      ['bb', 'net1', 'ovl', 100, '/run/netns/bb', 'pf0vf2', 1450],
    ]);
    const after = state.listAttachments();
    expect(after.map((r) => r.dpu?.portUuid).every((u) => u !== uuid(1) && u !== uuid(2))).toBe(true);
    expect(recovery.problem(DPU)).toBeUndefined();
    expect(logs.some((l) => l.msg === 'DPU recovery pass' && String(l.reason).includes('created again'))).toBe(true);

    // the next poll sees the new ports: nothing more to do
    link.answer = probe(BOOT, DB2, link.portsOf(after));
    await recovery.tick();
    expect(link.plugs).toHaveLength(2);
  });

  it('a DEL made while the DPU was down is finished (its port removed if still there, the record dropped), never re-plugged', async () => {
    const del = record('ccc', 3, { hostReleased: true });
    del.dpu = { ...del.dpu!, unplugPending: true };
    state.saveAttachment(del);
    state.saveAttachment(record('a', 1));
    link.answer = probe(BOOT, DB, [[1, 'a'], [3, 'ccc']]);
    await recovery.tick();
    expect(link.plugs).toEqual([]);
    expect(link.unplugs).toEqual([expect.objectContaining({ containerId: 'ccc', portUuid: uuid(3) })]);
    expect(state.loadAttachment('ccc', 'net1')).toBeUndefined();
    expect(state.loadAttachment('a', 'net1')).toBeDefined();
  });

  it('after a database wipe the interrupted DEL has no port left: only the record goes', async () => {
    const del = record('ccc', 3, { hostReleased: true });
    del.dpu = { ...del.dpu!, unplugPending: true };
    state.saveAttachment(del);
    link.answer = probe(BOOT, DB2, []);
    await recovery.tick();
    expect(link.unplugs).toEqual([]);
    expect(link.plugs).toEqual([]);
    expect(state.loadAttachment('ccc', 'net1')).toBeUndefined();
  });

  it('an attachment whose lock a live process holds (a DEL) is left to it, and tried again at the next poll', async () => {
    state.saveAttachment(record('a', 1));
    const holder = spawn('sleep', ['30']);
    try {
      const pid = holder.pid as number;
      let startTime: number | undefined;
      for (let i = 0; i < 100 && startTime === undefined; i++) {
        startTime = processStartTime(pid);
        if (startTime === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      mkdirSync(state.locksDir, { mode: 0o700 });
      writeFileSync(join(state.locksDir, 'a:net1'), JSON.stringify({ pid, startTime }), { mode: 0o600, flag: 'wx' });
      link.answer = probe(BOOT, DB2, []);
      await recovery.tick();
      expect(link.plugs).toEqual([]);
    } finally {
      holder.kill();
    }
    await new Promise((r) => holder.once('exit', r));
    await recovery.tick(); // the holder is gone: its lock is stale and taken over
    expect(link.plugs.map((p) => p.containerId)).toEqual(['a']);
  });

  it('an ADD in progress is never touched', async () => {
    state.saveAttachment(record('a', undefined, { phase: 'adding' }));
    link.answer = probe(BOOT, DB2, []);
    await recovery.tick();
    expect(link.plugs).toEqual([]);
    expect(link.unplugs).toEqual([]);
  });

  it('a failed re-plug keeps STATUS at 50 with the reason, and is retried', async () => {
    state.saveAttachment(record('a', 1));
    link.answer = probe(BOOT, DB2, []);
    const plug = link.plug.bind(link);
    link.plug = () => Promise.reject(new Error('representor pf0vf1 does not exist'));
    await recovery.tick();
    expect(recovery.problem(DPU)).toMatch(/re-plugging failed for 1 attachment/);
    link.plug = plug;
    await recovery.tick();
    expect(link.plugs.map((p) => p.containerId)).toEqual(['a']);
    expect(recovery.problem(DPU)).toBeUndefined();
  });

  it('after a reboot, only the re-plug that failed is tried again at the next poll, not every attachment', async () => {
    state.saveAttachment(record('a', 1));
    state.saveAttachment(record('bb', 2));
    link.answer = probe(BOOT, DB, [[1, 'a'], [2, 'bb']]);
    await recovery.tick();
    link.answer = probe(BOOT2, DB, [[1, 'a'], [2, 'bb']]); // rebooted, database kept: ports still listed
    const plug = link.plug.bind(link);
    link.plug = (s, req) => (req.containerId === 'bb' ? Promise.reject(new Error('representor pf0vf2 is not there yet')) : plug(s, req));
    await recovery.tick();
    expect(link.plugs.map((p) => p.containerId)).toEqual(['a']);
    link.plug = plug;
    link.answer = probe(BOOT2, DB, [...link.portsOf(state.listAttachments().filter((r) => r.containerId === 'a')), [2, 'bb']]);
    await recovery.tick();
    expect(link.plugs.map((p) => p.containerId)).toEqual(['a', 'bb']);
    expect(recovery.problem(DPU)).toBeUndefined();
  });

  it('two records naming one representor: no flip-flop over many polls, one error logged, STATUS and replug say so', async () => {
    state.saveAttachment(record('bb', 2));
    state.saveAttachment(record('zz', 9, { network: 'other', vni: 200 }));
    state.saveAttachment(record('a', 1));
    // the DPU has only one port for pf0vf2 (whoever plugged last): each poll would otherwise re-plug the other
    link.answer = probe(BOOT, DB, [[1, 'a'], [2, 'bb']]);
    for (let i = 0; i < 6; i++) {
      link.answer = probe(BOOT, DB, [[1, 'a'], i % 2 ? [2, 'bb'] : [9, 'zz']]);
      await recovery.tick();
    }
    expect(link.plugs).toEqual([]);
    const errors = logs.filter((r) => r.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/representor pf0vf2 is named by 2 attachment records \(container bb ifname net1 network ovl, container zz ifname net1 network other\): none is re-plugged/);
    expect(recovery.problem(DPU)).toMatch(/representor pf0vf2 is named by 2 attachment records/);
    expect(recovery.problems()).toHaveLength(1);
    // once the wrong record is gone (DEL), the other is handled as usual again
    state.removeAttachment('zz', 'net1');
    link.answer = probe(BOOT, DB, [[1, 'a']]);
    await recovery.tick();
    expect(link.plugs.map((p) => p.containerId)).toEqual(['bb']);
    expect(recovery.problem(DPU)).toBeUndefined();
  });

  it('a re-plug gives the VF function the settings ADD recorded again (the DPU\'s devlink state is lost with the port)', async () => {
    const target: VfFunctionTarget = { path: 'devlink', handle: 'pci/0000:03:00.0/1' };
    state.saveAttachment(record('a', 1, { vfFunction: { target, applied: { maxTxRate: 100, linkState: 'enable' }, saved: {} } }));
    state.saveAttachment(record('bb', 2));
    link.answer = probe(BOOT, DB, [[1, 'a'], [2, 'bb']]);
    await recovery.tick();
    link.answer = probe(BOOT2, DB, []);
    await recovery.tick();
    expect(link.plugs).toHaveLength(2);
    expect(link.vfSets).toEqual([{ target, values: { maxTxRate: 100, linkState: 'enable' } }]);
  });

  it('no records: no DPU is probed', async () => {
    const probeSpy = jest.spyOn(link, 'probe');
    await recovery.tick();
    expect(probeSpy).not.toHaveBeenCalled();
  });
});
