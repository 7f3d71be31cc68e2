import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import { StateStore } from '../../src/store/attachments';
import { deadClaim } from './helpers/dead-owner';
import { Bed, PF0_VFS, vfMac } from './helpers/bed';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

let nets: TestNetns[] = [];
beforeAll(async () => {
  nets = await Promise.all([createNetns(), createNetns(), createNetns()]);
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

/** c0, c1, c2 attached (VFs 0, 1, 2), each in its own namespace. */
async function threeAttached(): Promise<{ b: Bed; state: StateStore }> {
  const b = new Bed(nets.map((n) => n.path));
  for (let i = 0; i < 3; i++) expect((await b.run('ADD', { containerId: `c${i}`, netns: nets[i]!.path })).exitCode).toBe(0);
  b.host.clearCalls();
  b.ipam.resetLog();
  b.dpu.calls.length = 0;
  return { b, state: new StateStore(b.stateDir) };
}

const gcEnv = { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined };
const ids = (state: StateStore) => state.listAttachments().map((a) => `${a.containerId}/${a.ifname}`).sort();

describe('GC', () => {
  it('releases every attachment not in cni.dev/valid-attachments, on the host and the DPU', async () => {
    const { b, state } = await threeAttached();
    const out = await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }] }) });
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(ids(state)).toEqual(['c1/net1']);
    expect(state.listAllocations()).toEqual([PF0_VFS[1]!.pci]);
    // IPAM DEL for the two stale ones, in their recorded namespaces, then GC passed on to the IPAM plugin
    expect(b.ipam.log().map((l) => `${l[0]} ${l[1]} ${l[3]}`)).toEqual([`DEL c0 ${nets[0]!.path}`, `DEL c2 ${nets[2]!.path}`, 'GC - -']);
    // their VFs are back on the host, c1's is still in its container
    expect(b.host.link('host', 'ens1f0v0')).toMatchObject({ mac: vfMac(0, 0), mtu: 1500 });
    expect(b.host.link('host', 'ens1f0v2')).toMatchObject({ mac: vfMac(0, 2), mtu: 1500 });
    expect(b.host.link(nets[1]!.path, 'net1')).toBeDefined();
    expect(b.dpu.callsOf('unplug').map((u) => (u as { containerId: string }).containerId).sort()).toEqual(['c0', 'c2']);
    expect(b.dpu.callsOf('gc')).toEqual([{ network: 'ovl', vni: 5001, keep: [{ containerId: 'c1', ifname: 'net1' }] }]);
  });

  it('accepts the older cni.dev/attachments key', async () => {
    const { b, state } = await threeAttached();
    const out = await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/attachments': [{ containerID: 'c0', ifname: 'net1' }, { containerID: 'c2', ifname: 'net1' }] }) });
    expect(out.exitCode).toBe(0);
    expect(ids(state)).toEqual(['c0/net1', 'c2/net1']);
  });

  it('matches container and ifname together', async () => {
    const { b, state } = await threeAttached();
    await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/valid-attachments': [{ containerID: 'c0', ifname: 'eth0' }, { containerID: 'x', ifname: 'net1' }] }) });
    expect(ids(state)).toEqual([]);
  });

  it('with no list, everything of this network goes', async () => {
    const { b, state } = await threeAttached();
    expect((await b.run('GC', { env: gcEnv })).exitCode).toBe(0);
    expect(ids(state)).toEqual([]);
    expect(state.listAllocations()).toEqual([]);
  });

  it('leaves other networks in the same stateDir alone', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const other = b.config({ name: 'other', vni: 6000 });
    expect((await b.run('ADD', { containerId: 'c9', config: other })).exitCode).toBe(0);
    const state = new StateStore(b.stateDir);
    state.tryAllocate(PF0_VFS[3]!.pci, { containerId: 'c8', ifname: 'net1', network: 'other' }); // other network's orphan claim
    expect((await b.run('GC', { env: gcEnv })).exitCode).toBe(0);
    expect(ids(state)).toEqual(['c9/net1']);
    expect(state.listAllocations().sort()).toEqual([PF0_VFS[0]!.pci, PF0_VFS[3]!.pci]);
    expect(b.dpu.callsOf('gc')).toEqual([{ network: 'ovl', vni: 5001, keep: [] }]);
  });

  it('frees orphan allocations of this network (no record, not valid, claimant gone), but not valid, live or unreadable ones', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const state = new StateStore(b.stateDir);
    state.ensure();
    deadClaim(state, PF0_VFS[0]!.pci, { containerId: 'dead', ifname: 'net1', network: 'ovl' });
    deadClaim(state, PF0_VFS[1]!.pci, { containerId: 'live', ifname: 'net1', network: 'ovl' }); // listed as valid
    writeFileSync(join(state.allocationsDir, PF0_VFS[2]!.pci), 'garbage'); // never acted on: an operator decides
    state.tryAllocate(PF0_VFS[3]!.pci, { containerId: 'adding', ifname: 'net1', network: 'ovl' }); // claimed by a running ADD (this process)
    const out = await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/valid-attachments': [{ containerID: 'live', ifname: 'net1' }] }) });
    expect(out.exitCode).toBe(0);
    expect(state.listAllocations().sort()).toEqual([PF0_VFS[1]!.pci, PF0_VFS[2]!.pci, PF0_VFS[3]!.pci]);
  });

  it('an invalid attachment list is code 7', async () => {
    const b = new Bed(nets.map((n) => n.path));
    // null is malformed, not missing: taken for "keep nothing" it released the whole network (found by npm run stress)
    for (const bad of ['c1', [{ containerID: 1, ifname: 'net1' }], [{ ifname: 'net1' }], null]) {
      const out = await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/valid-attachments': bad }) });
      expect(out.json).toMatchObject({ code: 7 });
      expect(out.json?.msg).toContain('cni.dev/valid-attachments');
    }
  });

  it('a DPU failure on one stale attachment: code 11 naming it; the rest is still collected; host side of it released', async () => {
    const { b, state } = await threeAttached();
    const realUnplug = b.dpu.unplug.bind(b.dpu);
    b.dpu.unplug = async (req) => {
      if (req.containerId === 'c0') throw new CniError(112, 'ovsdb busy');
      return realUnplug(req);
    };
    const out = await b.run('GC', { env: gcEnv, config: b.config({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }] }) });
    expect(out.json?.code).toBe(11);
    expect(out.json?.msg).toContain('c0/net1');
    expect(ids(state)).toEqual(['c0/net1', 'c1/net1']);
    expect(state.loadAttachment('c0', 'net1')?.hostReleased).toBe(true);
    expect(b.host.link('host', 'ens1f0v0')).toBeDefined();
    expect(state.listAllocations()).toEqual([PF0_VFS[1]!.pci]);
  });

  it("passes GC on to the IPAM plugin with the runtime's config (valid-attachments included) and environment", async () => {
    const { b } = await threeAttached();
    const config = b.config({ 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'net1' }] });
    expect((await b.run('GC', { env: { ...gcEnv, NO_PROXY: '10.0.0.0/8' }, config })).exitCode).toBe(0);
    expect(JSON.parse(b.ipam.stdinOf('GC'))).toEqual(b.sent(config));
    const env = b.ipam.envOf('GC');
    expect(env).toMatchObject({ CNI_COMMAND: 'GC', CNI_PATH: b.cniPath, NO_PROXY: '10.0.0.0/8' });
    expect(env.CNI_CONTAINERID).toBeUndefined();
  });

  it('an IPAM plugin without GC (speaks up to 1.0.0) is not asked; GC succeeds', async () => {
    const { b, state } = await threeAttached();
    b.ipam.setVersions(['0.3.1', '0.4.0', '1.0.0']);
    expect((await b.run('GC', { env: gcEnv })).exitCode).toBe(0);
    expect(b.ipam.commands()).toEqual(['DEL', 'DEL', 'DEL']);
    expect(ids(state)).toEqual([]);
  });

  it("the IPAM plugin's GC failing fails GC (code 103) after everything else was collected", async () => {
    const { b, state } = await threeAttached();
    b.ipam.failNext('GC', '{"code":5,"msg":"cannot open store"}');
    const out = await b.run('GC', { env: gcEnv });
    expect(out.json).toMatchObject({ code: 103, msg: expect.stringContaining('cannot open store') });
    expect(ids(state)).toEqual([]);
    expect(b.stderr.join('')).toContain('fake ipam: GC failed');
  });

  it('GC with cniVersion 1.0.0 is code 1', async () => {
    const b = new Bed(nets.map((n) => n.path));
    expect((await b.run('GC', { env: gcEnv, config: b.config({ cniVersion: '1.0.0' }) })).json?.code).toBe(1);
  });
});

describe('STATUS', () => {
  const statusEnv = { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined };

  it('succeeds when stateDir, PF and DPU are fine', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const out = await b.run('STATUS', { env: statusEnv });
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(b.dpu.callsOf('status')).toHaveLength(1);
    expect(b.dpu.closed).toBe(1);
  });

  it('code 50 when the DPU status check throws, naming the DPU', async () => {
    const b = new Bed(nets.map((n) => n.path));
    b.dpu.failures.status = new CniError(113, 'hw-offload is not true');
    const out = await b.run('STATUS', { env: statusEnv });
    expect(out.json).toMatchObject({ cniVersion: '1.1.0', code: 50 });
    expect(out.json?.msg).toContain(b.dpu.target);
    expect(out.json?.msg).toContain('hw-offload is not true');
  });

  it('code 50 when the PF does not exist', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const out = await b.run('STATUS', { env: statusEnv, config: b.config({ pf: 'ens9f9' }) });
    expect(out.json?.code).toBe(50);
    expect(out.json?.msg).toContain('ens9f9');
    expect(b.dpu.callsOf('status')).toEqual([]);
  });

  it('code 50 when stateDir cannot be created', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const file = join(tmpDir(), 'file');
    writeFileSync(file, '');
    const out = await b.run('STATUS', { env: statusEnv, config: b.config({ stateDir: join(file, 'state') }) });
    expect(out.json?.code).toBe(50);
    expect(out.json?.msg).toContain('stateDir');
  });

  it('without dpu config: no DPU client, success', async () => {
    const b = new Bed(nets.map((n) => n.path));
    expect((await b.run('STATUS', { env: statusEnv, config: b.config({ dpu: undefined }) })).exitCode).toBe(0);
    expect(b.dpuClientsMade).toBe(0);
  });

  it("asks the IPAM plugin's STATUS with the runtime's config", async () => {
    const b = new Bed(nets.map((n) => n.path));
    const config = b.config();
    expect((await b.run('STATUS', { env: statusEnv, config })).exitCode).toBe(0);
    expect(b.ipam.commands()).toEqual(['STATUS']);
    expect(JSON.parse(b.ipam.stdinOf('STATUS'))).toEqual(b.sent(config));
  });

  it.each<[string, string, number]>([
    ['50 stays 50', '{"code":50,"msg":"address pool exhausted"}', 50],
    ['51 stays 51', '{"code":51,"msg":"store degraded"}', 51],
    ['another code becomes 50', '{"code":11,"msg":"store locked"}', 50],
  ])("the IPAM plugin's STATUS error is ours: %s", async (_n, answer, code) => {
    const b = new Bed(nets.map((n) => n.path));
    b.ipam.failNext('STATUS', answer);
    const out = await b.run('STATUS', { env: statusEnv });
    expect(out.json?.code).toBe(code);
    expect(out.json?.msg).toContain(JSON.parse(answer).msg);
  });

  it('an IPAM plugin without STATUS (speaks up to 1.0.0) is not asked', async () => {
    const b = new Bed(nets.map((n) => n.path));
    b.ipam.setVersions(['0.3.1', '0.4.0', '1.0.0']);
    expect((await b.run('STATUS', { env: statusEnv })).exitCode).toBe(0);
    expect(b.ipam.commands()).toEqual([]);
  });

  it('an IPAM plugin missing from CNI_PATH: code 50 naming it', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const out = await b.run('STATUS', { env: statusEnv, config: b.config({ ipam: { type: 'dhcp' } }) });
    expect(out.json?.code).toBe(50);
    expect(out.json?.msg).toContain('"dhcp" not found');
  });

  it('no VF left on the PF: code 50 naming the PF and the allocations', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const state = new StateStore(b.stateDir);
    state.ensure();
    for (const [i, vf] of PF0_VFS.entries()) if (i < 3) state.tryAllocate(vf.pci, { containerId: `c${i}`, ifname: 'net1', network: 'ovl' });
    expect((await b.run('STATUS', { env: statusEnv })).exitCode).toBe(0);
    b.host.namespaces.get('host')?.delete(PF0_VFS[3]!.netdev as string); // the last one taken by something else
    const out = await b.run('STATUS', { env: statusEnv });
    expect(out.json?.code).toBe(50);
    expect(out.json?.msg).toContain('no free VF on PF ens1f0');
    expect(out.json?.msg).toContain(state.allocationsDir);
    expect(out.json?.msg).toMatch(/3 are allocated/);
  });

  it('STATUS with cniVersion 1.0.0 is code 1', async () => {
    const b = new Bed(nets.map((n) => n.path));
    expect((await b.run('STATUS', { env: statusEnv, config: b.config({ cniVersion: '1.0.0' }) })).json?.code).toBe(1);
  });
});
