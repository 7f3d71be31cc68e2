import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { processStartTime } from '../../src/kernel/process';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import { HOST_NETNS } from '../../src/kernel/iproute2';
import { type Attachment, StateStore } from '../../src/store/attachments';
import { DEAD_OWNER, deadClaim } from './helpers/dead-owner';
import { Bed, PF0_VFS, vfMac } from './helpers/bed';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';

let nets: TestNetns[] = [];
let NS = '';
beforeAll(async () => {
  nets = await Promise.all([createNetns(), createNetns()]);
  NS = nets[0]!.path;
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

async function added(config: (b: Bed) => Record<string, unknown> = (b) => b.config()): Promise<{ b: Bed; att: Attachment }> {
  const b = new Bed(nets.map((n) => n.path));
  const out = await b.run('ADD', { config: config(b) });
  expect(out.exitCode).toBe(0);
  const att = new StateStore(b.stateDir).loadAttachment('c1', 'net1') as Attachment;
  b.host.clearCalls();
  b.ipam.resetLog();
  b.dpu.calls.length = 0;
  return { b, att };
}

function expectVfHome(b: Bed): void {
  expect(b.host.link('host', 'ens1f0v0')).toMatchObject({ mac: vfMac(0, 0), mtu: 1500, up: false });
  expect(b.host.linkNames(NS)).toEqual([]);
}

describe('DEL', () => {
  it('gives everything back: IPAM, VF (name, MAC, MTU), allocation, DPU port, record', async () => {
    const { b, att } = await added();
    const out = await b.run('DEL');
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(b.ipam.log()).toEqual([['DEL', 'c1', 'net1', NS, '-']]);
    expect(JSON.parse(b.ipam.stdinOf('DEL'))).toEqual(b.sent());
    // out of the container under a fresh temporary name, then renamed and restored on the host
    const move = b.host.ipCalls().find((c) => c.ns === NS && c.args.includes('netns'));
    expect(move?.args.slice(0, 6)).toEqual(['link', 'set', 'dev', 'net1', 'netns', HOST_NETNS]);
    const tmp = move?.args[7] as string;
    expect(tmp).toMatch(/^dpuo[0-9a-f]{8}$/);
    expect(b.host.batches('host')).toEqual([[`link set dev ${tmp} down`, `link set dev ${tmp} name ens1f0v0`, `link set dev ens1f0v0 address ${vfMac(0, 0)} mtu 1500`]]);
    expectVfHome(b);
    expect(b.dpu.callsOf('unplug')).toEqual([{ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', representor: 'pf0vf0', portUuid: att.dpu?.portUuid }]);
    expect(b.dpu.ports.size).toBe(0);
    expect(b.stateFiles()).toEqual([]);
  });

  it("the IPAM plugin gets the runtime's DEL config (prevResult included) and environment, not the one recorded at ADD", async () => {
    const { b } = await added((bed) => bed.config({ ipam: { type: bed.ipam.type, ranges: [[{ subnet: '10.1.0.0/24' }]] } }));
    const prevResult = { cniVersion: '1.1.0', interfaces: [{ name: 'net1', sandbox: NS }], ips: [{ address: '10.1.0.5/24', interface: 0 }] };
    const delConfig = b.config({ ipam: { type: b.ipam.type, ranges: [[{ subnet: '10.1.0.0/24' }]] }, prevResult });
    expect((await b.run('DEL', { config: delConfig, env: { CNI_PATH: `/nonexistent:${b.cniPath}`, CONTAINER_RUNTIME: 'crio' } })).exitCode).toBe(0);
    expect(JSON.parse(b.ipam.stdinOf('DEL'))).toEqual(b.sent(delConfig));
    expect(b.ipam.envOf('DEL')).toMatchObject({ CNI_COMMAND: 'DEL', CNI_PATH: `/nonexistent:${b.cniPath}`, CONTAINER_RUNTIME: 'crio' });
  });

  it('a DEL config naming another IPAM plugin than ADD used: the recorded ADD config releases the address', async () => {
    const { b } = await added();
    expect((await b.run('DEL', { config: b.config({ ipam: undefined }) })).exitCode).toBe(0);
    // The record keeps only what an IPAM plugin reads (not the DPU section): that part of ADD's config.
    const { cniVersion, name, type, ipam } = b.config() as Record<string, unknown>;
    expect(JSON.parse(b.ipam.stdinOf('DEL'))).toEqual({ cniVersion, name, type, ipam });
  });

  it('finds the VF by device identity in one listing, then moves it out', async () => {
    const { b } = await added();
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.ipCalls().filter((c) => c.ns === NS).map((c) => c.args.slice(0, 5).join(' '))).toEqual(['-d -j link show', 'link set dev net1 netns']);
    expectVfHome(b);
  });

  it('an interface still under its temporary name (interrupted ADD) is found and returned', async () => {
    const { b, att } = await added();
    b.host.link(NS, 'net1')!.name = att.tmpName;
    b.host.namespaces.get(NS)!.set(att.tmpName, b.host.namespaces.get(NS)!.get('net1')!);
    b.host.namespaces.get(NS)!.delete('net1');
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.ipCalls().filter((c) => c.ns === NS).map((c) => c.args.slice(0, 5).join(' '))).toEqual(['-d -j link show', `link set dev ${att.tmpName} netns`]);
    expectVfHome(b);
  });

  it('a container that renamed its VF and gave the ifname to a decoy: the VF comes back, the decoy stays', async () => {
    const { b } = await added();
    const vf = b.host.link(NS, 'net1')!;
    b.host.namespaces.get(NS)!.delete('net1');
    vf.name = 'hidden';
    b.host.namespaces.get(NS)!.set('hidden', vf);
    b.host.addLink(NS, { name: 'net1', mac: vfMac(0, 0) });
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.link('host', 'ens1f0v0')).toBe(vf);
    expect(b.host.linkNames(NS)).toEqual(['net1']);
  });

  it('a decoy alone (the VF is gone from the container) is never moved to the host or renamed', async () => {
    const { b } = await added();
    const vf = b.host.link(NS, 'net1')!;
    b.host.namespaces.get(NS)!.delete('net1');
    // even with the VF's ifindex (a container can pick one once the VF is gone); its peer is in its own namespace
    b.host.addLink(NS, { name: 'net1', mac: vfMac(0, 0), ifindex: vf.ifindex });
    b.host.addLink(NS, { name: 'net1p', mac: vfMac(0, 3), ifindex: 77 });
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.linkNames(NS)).toEqual(['net1', 'net1p']);
    expect(b.host.link('host', 'ens1f0v0')).toBeUndefined();
    expect(b.host.batches('host')).toEqual([]);
  });

  it('an ADD killed before it configured the link (no identity recorded): the VF under its temporary name comes back, a decoy under the ifname does not', async () => {
    const { b, att } = await added();
    const vf = b.host.link(NS, 'net1')!;
    b.host.namespaces.get(NS)!.delete('net1');
    vf.name = att.tmpName;
    b.host.namespaces.get(NS)!.set(att.tmpName, vf);
    b.host.addLink(NS, { name: 'net1', mac: vfMac(0, 0) });
    const { linkIdentity: _, ...vfRecord } = att.vf;
    new StateStore(b.stateDir).saveAttachment({ ...att, phase: 'adding', owner: DEAD_OWNER, vf: vfRecord });
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.link('host', 'ens1f0v0')).toBe(vf);
    expect(b.host.linkNames(NS)).toEqual(['net1']);
  });

  it('a netdev with a parent device is the VF only if that parent is the VF\'s PCI function, whatever its ifindex', async () => {
    const { b } = await added();
    const vf = b.host.link(NS, 'net1')!;
    vf.ifindex = 999; // real VFs are identified by their parent, not by the ifindex recorded at ADD
    Object.assign(vf, { parentbus: 'pci', parentdev: PF0_VFS[0]!.pci });
    b.host.addLink(NS, { name: 'fake', mac: vfMac(0, 1), parentbus: 'pci', parentdev: '0000:00:00.0', ifindex: 5 });
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.link('host', 'ens1f0v0')).toBe(vf);
    expect(b.host.linkNames(NS)).toEqual(['fake']);
  });

  it('a second DEL succeeds, leaves the VF alone and only repeats the (idempotent) IPAM DEL', async () => {
    const { b } = await added();
    await b.run('DEL');
    b.host.clearCalls();
    b.ipam.resetLog();
    const out = await b.run('DEL');
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(b.ipam.log()).toEqual([['DEL', 'c1', 'net1', NS, '-']]);
    expect(b.host.calls.filter((c) => !c.file.endsWith('fake-ipam'))).toEqual([]);
    expectVfHome(b);
    // without a record, the DPU is asked to drop ports of this owner (by owner, not by UUID)
    expect(b.dpu.callsOf('unplug').at(-1)).toEqual({ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', representor: '' });
  });

  it('DEL of a container never seen succeeds and frees only an allocation that container held', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const state = new StateStore(b.stateDir);
    state.ensure();
    deadClaim(state, PF0_VFS[0]!.pci, { containerId: 'c1', ifname: 'net1', network: 'ovl' }); // ADD killed before its record
    deadClaim(state, PF0_VFS[1]!.pci, { containerId: 'c2', ifname: 'net1', network: 'ovl' });
    deadClaim(state, PF0_VFS[2]!.pci, { containerId: 'c1', ifname: 'net2', network: 'ovl' });
    const out = await b.run('DEL', { netns: '' });
    expect(out.exitCode).toBe(0);
    expect(state.listAllocations().sort()).toEqual([PF0_VFS[1]!.pci, PF0_VFS[2]!.pci]);
    expect(b.host.calls.filter((c) => !c.file.endsWith('fake-ipam'))).toEqual([]);
  });

  it('DEL after the stateDir was lost releases the address through IPAM with the runtime\'s config', async () => {
    const { b } = await added();
    renameSync(b.stateDir, `${b.stateDir}.lost`);
    const out = await b.run('DEL');
    expect(out.exitCode).toBe(0);
    expect(b.ipam.log()).toEqual([['DEL', 'c1', 'net1', NS, '-']]);
    expect(JSON.parse(b.ipam.stdinOf('DEL'))).toEqual(b.sent());
    expect(b.dpu.callsOf('unplug').at(-1)).toMatchObject({ containerId: 'c1', ifname: 'net1', representor: '' });
  });

  it('DEL without cached state still succeeds when IPAM DEL fails', async () => {
    const b = new Bed(nets.map((n) => n.path));
    b.ipam.failNext('DEL');
    expect((await b.run('DEL')).exitCode).toBe(0);
  });

  it('DEL without cache still succeeds when the DPU cannot be reached (GC will clean up)', async () => {
    const b = new Bed(nets.map((n) => n.path));
    b.dpu.failures.unplug = new CniError(11, 'unreachable');
    expect((await b.run('DEL')).exitCode).toBe(0);
  });

  it('DEL after an ADD killed between plugging the port and recording it unplugs by owner', async () => {
    const { b, att } = await added();
    const state = new StateStore(b.stateDir);
    state.saveAttachment({ ...att, phase: 'adding', owner: DEAD_OWNER, dpu: undefined }); // what the cache holds at fault point add:dpu-plugged
    const out = await b.run('DEL');
    expect(out.exitCode).toBe(0);
    expect(b.dpu.callsOf('unplug')).toEqual([{ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', representor: '', portUuid: undefined }]);
    expect(b.dpu.ports.size).toBe(0);
    expectVfHome(b);
    expect(b.stateFiles()).toEqual([]);
  });

  it('DEL after a killed ADD keeps the record for a retry when the DPU is unreachable, and the retry finishes', async () => {
    const { b, att } = await added();
    const state = new StateStore(b.stateDir);
    state.saveAttachment({ ...att, phase: 'adding', owner: DEAD_OWNER, dpu: undefined });
    b.dpu.failures.unplug = new CniError(11, 'unreachable');
    const first = await b.run('DEL');
    expect(first.exitCode).toBe(1);
    expect(JSON.parse(first.writes[0] as string)).toMatchObject({ code: 11 });
    expect(state.loadAttachment('c1', 'net1')).toMatchObject({ hostReleased: true });
    expect(state.listAllocations()).toEqual([]);
    delete b.dpu.failures.unplug;
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.dpu.ports.size).toBe(0);
    expect(b.stateFiles()).toEqual([]);
  });

  it('DEL with an empty CNI_NETNS uses the namespace recorded at ADD (same identity)', async () => {
    const { b } = await added();
    const out = await b.run('DEL', { netns: '' });
    expect(out.exitCode).toBe(0);
    expect(b.host.ipCalls().some((c) => c.ns === NS && c.args.includes('netns'))).toBe(true);
    expect(b.ipam.log()[0]?.[3]).toBe(NS);
    expectVfHome(b);
    expect(b.stateFiles()).toEqual([]);
  });

  it('DEL with an empty CNI_NETNS does not enter a recorded path that now names another namespace', async () => {
    const { b, att } = await added();
    // the recorded /proc/PID path is reused by something else: pretend ADD saw another identity
    const state = new StateStore(b.stateDir);
    state.saveAttachment({ ...att, netnsId: '1:1' });
    const out = await b.run('DEL', { netns: '' });
    expect(out.exitCode).toBe(0);
    expect(b.host.calls.filter((c) => c.file === 'nsenter')).toEqual([]);
    expect(b.ipam.log()[0]?.[3]).toBe('-'); // IPAM DEL without a namespace
    expect(state.listAllocations()).toEqual([]);
  });

  it('never treats the host namespace as the container: CNI_NETNS = our own namespace is ignored for the recorded one', async () => {
    const { b } = await added();
    const out = await b.run('DEL', { netns: '/proc/self/ns/net' });
    expect(out.exitCode).toBe(0);
    expect(b.host.calls.filter((c) => c.file === 'nsenter').every((c) => c.args[0] === `--net=${NS}`)).toBe(true);
    expectVfHome(b);
  });

  it('CNI_NETNS naming another container\'s namespace is ignored: its VF stays, ours comes back', async () => {
    const { b } = await added();
    const other = nets[1]!.path;
    const theirs = b.host.addLink(other, { name: 'net1', mac: vfMac(0, 1) });
    const out = await b.run('DEL', { netns: other });
    expect(out.exitCode).toBe(0);
    expect(b.host.calls.filter((c) => c.file === 'nsenter').map((c) => c.args[0])).not.toContain(`--net=${other}`);
    expect(b.host.link(other, 'net1')).toBe(theirs);
    expect(b.ipam.log()[0]?.[3]).toBe(NS);
    expectVfHome(b);
  });

  it.each(['/etc/passwd', '/proc/self/status', '/nonexistent', '/'])('CNI_NETNS=%s (not the recorded namespace) uses the recorded one and succeeds', async (hint) => {
    const { b } = await added();
    const out = await b.run('DEL', { netns: hint });
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(b.ipam.log()[0]?.[3]).toBe(NS);
    expectVfHome(b);
    expect(b.stateFiles()).toEqual([]);
  });

  it('namespace gone and the kernel gave the VF back under another name: found through sysfs and restored', async () => {
    const { b } = await added();
    // the kernel moved the VF back as "dev7" when the namespace died
    const link = b.host.namespaces.get(NS)?.get('net1');
    b.host.namespaces.get(NS)?.delete('net1');
    b.host.addLink('host', { ...link!, name: 'dev7' });
    const vfNet = join(b.sysfsRoot, 'bus/pci/devices', PF0_VFS[0]!.pci, 'net');
    renameSync(join(vfNet, 'ens1f0v0'), join(vfNet, 'dev7'));
    const out = await b.run('DEL', { netns: '/proc/2147483647/ns/net' });
    expect(out.exitCode).toBe(0);
    expect(b.host.batches('host')).toEqual([['link set dev dev7 down', 'link set dev dev7 name ens1f0v0', `link set dev ens1f0v0 address ${vfMac(0, 0)} mtu 1500`]]);
    expect(b.host.link('host', 'ens1f0v0')).toMatchObject({ mac: vfMac(0, 0), mtu: 1500 });
    expect(b.stateFiles()).toEqual([]);
  });

  it('does not rename a host link that merely has the temporary or ifname name', async () => {
    const { b, att } = await added();
    b.host.namespaces.get(NS)?.delete('net1'); // VF vanished (e.g. driver unbound)
    b.host.addLink('host', { name: 'net1', mac: '02:99:99:99:99:99' }); // someone else's host link
    b.host.addLink('host', { name: att.tmpName, mac: '02:98:98:98:98:98' });
    b.host.namespaces.get('host')?.delete('ens1f0v0');
    const vfNet = join(b.sysfsRoot, 'bus/pci/devices', PF0_VFS[0]!.pci, 'net');
    renameSync(join(vfNet, 'ens1f0v0'), join(vfNet, 'gone0'));
    const out = await b.run('DEL', { netns: '/proc/2147483647/ns/net' });
    expect(out.exitCode).toBe(0);
    expect(b.host.batches('host')).toEqual([]);
    expect(b.host.link('host', 'net1')?.mac).toBe('02:99:99:99:99:99');
    expect(b.stateFiles()).toEqual([]);
  });

  it('restores VF admin settings saved at ADD', async () => {
    const { b } = await added((b) => b.config({ vlan: 42, trust: 'on' }));
    expect((await b.run('DEL')).exitCode).toBe(0);
    const vfSets = b.host.ipCalls().filter((c) => c.args.includes('vf')).map((c) => c.args);
    expect(vfSets).toEqual([['link', 'set', 'dev', 'ens1f0', 'vf', '0', 'mac', '00:00:00:00:00:00', 'vlan', '0', 'qos', '0', 'spoofchk', 'on', 'trust', 'off', 'state', 'auto', 'min_tx_rate', '0', 'max_tx_rate', '0']]);
  });

  it('DPU unreachable on DEL: code 11', async () => {
    const { b } = await added();
    b.dpu.failures.unplug = new Error('connect ECONNREFUSED');
    const out = await b.run('DEL');
    expect(out.json?.code).toBe(11);
    expect(out.json?.msg).toMatch(/host side released.*retry DEL.*ECONNREFUSED/);
  });

  it('DPU unplug fails: its code is kept, host side fully released, record kept; a retry DEL only does the DPU part', async () => {
    const { b, att } = await added();
    b.dpu.failures.unplug = new CniError(112, 'ovs-vsctl: database connection failed');
    const out = await b.run('DEL');
    expect(out.exitCode).toBe(1);
    expect(out.json?.code).toBe(112);
    expect(out.json?.msg).toMatch(/host side released.*pf0vf0.*retry DEL.*database connection failed/);
    expectVfHome(b);
    expect(b.ipam.commands()).toEqual(['DEL']);
    const state = new StateStore(b.stateDir);
    expect(state.listAllocations()).toEqual([]);
    expect(state.loadAttachment('c1', 'net1')).toMatchObject({ hostReleased: true, dpu: { unplugPending: true, portUuid: att.dpu?.portUuid } });

    delete b.dpu.failures.unplug;
    b.host.clearCalls();
    b.ipam.resetLog();
    b.dpu.calls.length = 0;
    const retry = await b.run('DEL');
    expect(retry.exitCode).toBe(0);
    expect(b.host.calls).toEqual([]);
    expect(b.ipam.log()).toEqual([]);
    expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ portUuid: att.dpu?.portUuid, representor: 'pf0vf0' })]);
    expect(b.stateFiles()).toEqual([]);
  });

  it('the retry DEL does not touch a VF that another container got meanwhile', async () => {
    const { b } = await added();
    b.dpu.failures.unplug = new CniError(11, 'down');
    await b.run('DEL');
    delete b.dpu.failures.unplug;
    const other = await b.run('ADD', { containerId: 'c2', netns: nets[1]!.path });
    expect((other.json?.interfaces as Array<{ pciID: string }>)[0]?.pciID).toBe(PF0_VFS[0]!.pci);
    b.host.clearCalls();
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.host.calls).toEqual([]);
    expect(new StateStore(b.stateDir).allocationOwner(PF0_VFS[0]!.pci)?.containerId).toBe('c2');
  });

  it('IPAM DEL fails: DEL fails (so the runtime retries) and keeps the record; the retry completes', async () => {
    const { b } = await added();
    b.ipam.failNext('DEL', JSON.stringify({ code: 11, msg: 'store locked' }));
    const out = await b.run('DEL');
    expect(out.json?.code).toBe(11);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')).toBeDefined();
    b.ipam.clearFailures();
    expect((await b.run('DEL')).exitCode).toBe(0);
    expectVfHome(b);
    expect(b.stateFiles()).toEqual([]);
  });

  it('without dpu config nothing is asked of a DPU', async () => {
    const { b } = await added((b) => b.config({ dpu: undefined }));
    b.dpuClientsMade = 0;
    expect((await b.run('DEL', { config: b.config({ dpu: undefined }) })).exitCode).toBe(0);
    expect(b.dpuClientsMade).toBe(0);
    expectVfHome(b);
  });

  it('uses the cached record even when the network config changed (e.g. another pf)', async () => {
    const { b } = await added();
    const out = await b.run('DEL', { config: b.config({ pf: 'ens1f1', vni: 77 }) });
    expect(out.exitCode).toBe(0);
    expectVfHome(b);
    expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ vni: 5001, representor: 'pf0vf0' })]);
  });

  describe('the attachment lock (shared with the daemon re-plugging after a DPU reset)', () => {
    async function holdLock(b: Bed): Promise<{ release(): Promise<void> }> {
      const holder = spawn('sleep', ['30']);
      const pid = holder.pid as number;
      let startTime: number | undefined;
      for (let i = 0; i < 100 && startTime === undefined; i++) {
        startTime = processStartTime(pid);
        if (startTime === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      mkdirSync(join(b.stateDir, 'locks'), { recursive: true, mode: 0o700 });
      writeFileSync(join(b.stateDir, 'locks', 'c1:net1'), JSON.stringify({ pid, startTime }), { mode: 0o600, flag: 'wx' });
      return { release: () => new Promise<void>((resolve) => { holder.once('exit', () => resolve()); holder.kill(); }) };
    }

    it('DEL waits while a live process holds the lock, then releases the record as it is then (the re-plugged port UUID)', async () => {
      const { b, att } = await added();
      const lock = await holdLock(b);
      const del = b.run('DEL');
      await new Promise((r) => setTimeout(r, 200));
      expect(b.ipam.log()).toEqual([]); // nothing released yet
      // what the daemon's re-plug does under the lock after a database wipe: a new port, recorded
      b.dpu.ports.delete(att.dpu!.portUuid!);
      const replugged = await b.dpu.plug({ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: NS, representor: 'pf0vf0', mtu: 1450 });
      const state = new StateStore(b.stateDir);
      state.saveAttachment({ ...att, dpu: { ...att.dpu!, portUuid: replugged.portUuid } });
      await lock.release();
      expect((await del).exitCode).toBe(0);
      expect(b.dpu.callsOf('unplug').map((c) => (c as { portUuid?: string }).portUuid)).toEqual([replugged.portUuid]);
      expect(b.dpu.ports.size).toBe(0);
      expect(b.stateFiles()).toEqual([]);
    });

    it('a lock held past 2 x dpu.timeoutMs + 1 s: code 11 naming the holder, nothing released', async () => {
      const config = (bed: Bed) => bed.config({ dpu: { ...(bed.config().dpu as Record<string, unknown>), timeoutMs: 100 } });
      const { b } = await added(config);
      const lock = await holdLock(b);
      try {
        const out = await b.run('DEL', { config: config(b) });
        expect(out.exitCode).toBe(1);
        expect(out.json).toMatchObject({ code: 11, msg: expect.stringMatching(/^c1\/net1 is being changed on the DPU by pid \d+ .*try again later$/) });
        expect(b.ipam.log()).toEqual([]);
        expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.hostReleased).toBeUndefined();
      } finally {
        await lock.release();
      }
    });
  });
});
