import { StateStore } from '../../src/store/attachments';
import { Bed, PF0_VFS } from './helpers/bed';
import { deadClaim } from './helpers/dead-owner';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';

let net: TestNetns;
beforeAll(async () => {
  net = await createNetns();
});
afterAll(() => {
  net.close();
  removeTmpDirs();
});

describe('DEL after an ADD that was repeated', () => {
  it('also frees the claim a dead ADD of the same attachment left before its record (a daemon killed mid-ADD)', async () => {
    const b = new Bed([net.path]);
    expect((await b.run('ADD', { netns: net.path })).exitCode).toBe(0);
    const state = new StateStore(b.stateDir);
    const recorded = state.listAllocations();
    const stale = PF0_VFS.map((v) => v.pci).find((pci) => !recorded.includes(pci)) as string;
    deadClaim(state, stale, { containerId: 'c1', ifname: 'net1', network: 'ovl' });
    deadClaim(state, PF0_VFS[3]!.pci, { containerId: 'other', ifname: 'net1', network: 'ovl' });
    expect((await b.run('DEL', { netns: net.path })).exitCode).toBe(0);
    expect(state.listAllocations()).toEqual([PF0_VFS[3]!.pci]);
  });
});
