/**
 * ADD never takes the representor's DPU port from another live attachment: the DPU client reports the port's owner
 * (code 102), and the plugin reclaims it only when that owner has no record on this host (a crash's leftover).
 */
import type { DpuClient, PlugRequest, PlugResult } from '../../src/dpu/api';
import { DpuPortOwned } from '../../src/dpu/errors';
import { withCniErrors } from '../../src/plugin/dpu-errors';
import { plugOwned, portOwnerOf } from '../../src/plugin/port-owner';
import { type Attachment, StateStore } from '../../src/store/attachments';
import { CniError } from '../../src/cni/errors';
import { memoryLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const PORT = '22222222-2222-4222-8222-222222222222';
const req: PlugRequest = { network: 'net-b', vni: 200, containerId: 'attacker', ifname: 'net1', netns: '/run/netns/b', representor: 'pf0vf0', mtu: 1450 };
const holder = { network: 'net-a', containerId: 'victim', ifname: 'net1', portUuid: PORT };

function fakeClient(): DpuClient & { plugs: PlugRequest[] } {
  const plugs: PlugRequest[] = [];
  const c = {
    target: 'root@192.0.2.1:22',
    plugs,
    plug(r: PlugRequest): Promise<PlugResult> {
      plugs.push(r);
      // the DPU refuses unless the request names the port's owner as the one to reclaim
      if (r.reclaim?.portUuid !== PORT) return Promise.reject(new DpuPortOwned('root@192.0.2.1:22', r.representor, holder));
      return Promise.resolve({ bridge: 'br-vni200', portUuid: '33333333-3333-4333-8333-333333333333' });
    },
  } as unknown as DpuClient & { plugs: PlugRequest[] };
  return c;
}

function victimRecord(): Attachment {
  return {
    version: 1, phase: 'ready', network: 'net-a', containerId: 'victim', ifname: 'net1', netns: '/run/netns/a', vni: 100,
    vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: '02:00:00:00:00:01', originalMtu: 1500 },
    tmpName: 'dpuo01020304', mtu: 1450, rawConfig: '{}', cniPath: ['/opt/cni/bin'],
  };
}

describe('plugOwned', () => {
  it('the owner is a live attachment (it has a record here): code 102 naming it and what to fix; nothing reclaimed', async () => {
    const state = new StateStore(tmpDir(), { expectedUid: process.getuid?.() });
    state.ensure();
    state.saveAttachment(victimRecord());
    const client = fakeClient();
    const err = await plugOwned(withCniErrors(client), state, req, memoryLogger().log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 102 });
    expect((err as Error).message).toMatch(/representor pf0vf0 on DPU root@192\.0\.2\.1:22 belongs to the live attachment of container victim \(ifname net1, network net-a\); it is not moved.*representorTemplate/);
    expect(client.plugs).toHaveLength(1);
    expect(client.plugs[0]?.reclaim).toBeUndefined();
  });

  it('the owner has no record here (a crash left its port): reclaimed, naming exactly that owner and port', async () => {
    const state = new StateStore(tmpDir(), { expectedUid: process.getuid?.() });
    state.ensure();
    const client = fakeClient();
    const m = memoryLogger();
    expect((await plugOwned(withCniErrors(client), state, req, m.log)).portUuid).toBe('33333333-3333-4333-8333-333333333333');
    expect(client.plugs[1]?.reclaim).toEqual(holder);
    expect(m.records.some((r) => /reclaiming the DPU port/.test(String(r.msg)))).toBe(true);
  });

  it('the owner travels as the CNI error\'s details (the daemon protocol carries code, msg and details); other 102s are not owners', () => {
    const cni = withCniErrors(fakeClient()).plug(req);
    return cni.catch((e: unknown) => {
      expect(portOwnerOf(e)).toEqual(holder);
      expect(portOwnerOf(new CniError(102, 'VF in use', ''))).toBeUndefined();
      expect(portOwnerOf(new CniError(102, 'x', '{"portOwner":{"network":1}}'))).toBeUndefined();
    });
  });
});
