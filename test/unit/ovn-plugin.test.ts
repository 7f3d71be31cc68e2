/** OVN mode through the plugin's commands: what ADD, CHECK and DEL ask of the DPU, and what the record keeps. */
import { type Attachment, StateStore } from '../../src/store/attachments';
import { Bed, vfMac } from './helpers/bed';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';
import { hostname } from 'node:os';

let nets: TestNetns[] = [];
beforeAll(async () => {
  nets = await Promise.all([createNetns(), createNetns()]);
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

function ovnBed(): { b: Bed; config: (extra?: Record<string, unknown>) => Record<string, unknown> } {
  const b = new Bed(nets.map((n) => n.path));
  b.dpu.encap = { ip: '198.51.100.2', type: 'geneve' };
  const config = (extra: Record<string, unknown> = {}) => {
    const c = b.config({ mtu: 1400, ...extra });
    const dpu: Record<string, unknown> = { ...(c.dpu as Record<string, unknown>), controlPlane: 'ovn' };
    delete dpu.localVtep;
    delete dpu.remoteVteps;
    return { ...c, dpu };
  };
  return { b, config };
}

describe('OVN mode through ADD, CHECK and DEL', () => {
  it('ADD gives the DPU the MAC, the IPAM addresses and the host; the record keeps the logical port; CHECK and DEL name it', async () => {
    const { b, config } = ovnBed();
    const add = await b.run('ADD', { config: config() });
    expect(add.exitCode).toBe(0);
    expect(b.dpu.callsOf('plug')).toEqual([expect.objectContaining({ mac: vfMac(0, 0), ips: ['10.1.0.5'], host: hostname(), representor: 'pf0vf0', mtu: 1400 })]);
    const att = new StateStore(b.stateDir).loadAttachment('c1', 'net1') as Attachment;
    const lsp = att.dpu?.lsp;
    expect(att.dpu).toMatchObject({ bridge: 'br-int', lsp: { name: expect.stringMatching(/^dpuo-/) } });

    expect((await b.run('CHECK', { config: config({ prevResult: add.json }) })).exitCode).toBe(0);
    expect(b.dpu.callsOf('check')).toEqual([expect.objectContaining({ lsp, mac: vfMac(0, 0), ips: ['10.1.0.5'] })]);

    expect((await b.run('DEL', { config: config() })).exitCode).toBe(0);
    expect(b.dpu.callsOf('unplug')).toEqual([expect.objectContaining({ lsp, portUuid: att.dpu?.portUuid })]);
  });

  it('the MTU check uses Geneve over the DPU\'s encap IP: 1450 does not fit a 1500 uplink (code 7), nothing stays plugged', async () => {
    const { b, config } = ovnBed();
    const out = await b.run('ADD', { config: config({ mtu: 1450 }) });
    expect(out.json?.code).toBe(7);
    expect(out.json?.msg).toMatch(/GENEVE over IPv4 adds 58 bytes.*carrying localVtep 198\.51\.100\.2 has MTU 1500: lower mtu to 1442/);
    expect(b.dpu.ports.size).toBe(0);
  });

  it('a DPU with no interface holding its ovn-encap-ip: code 7 naming that DPU setting', async () => {
    const { b, config } = ovnBed();
    b.dpu.uplink = undefined;
    const out = await b.run('ADD', { config: config() });
    expect(out.json?.code).toBe(7);
    expect(out.json?.msg).toMatch(/no interface has the address 198\.51\.100\.2 of its external_ids:ovn-encap-ip/);
  });

  it('a failed plug (code 11: NB unreachable or the port not up) rolls the host side back', async () => {
    const { b, config } = ovnBed();
    const { CniError } = await import('../../src/cni/errors');
    b.dpu.failures.plug = new CniError(11, 'DPU x: plug: the OVN northbound database cannot be reached from the DPU');
    const out = await b.run('ADD', { config: config() });
    expect(out.json?.code).toBe(11);
    expect(new StateStore(b.stateDir).listAllocations()).toEqual([]);
    expect(b.ipam.log().map((l) => l[0])).toEqual(['ADD', 'DEL']);
  });
});
