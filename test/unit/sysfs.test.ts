import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Sysfs } from '../../src/kernel/sysfs';
import { buildSysfs, type FakeVf } from './helpers/sysfs-tree';
import { removeTmpDirs, tmpDir } from './helpers/tmp';
import { errorOf as cniErrorOf } from './helpers/errors';
import { VfLookupError } from '../../src/kernel/errors';
import { layerErrorToCni as toCniError } from '../../src/plugin/layer-errors';

/** sysfs throws VfLookupError; plugin/ turns it into code 101. */
const errorOf = (fn: () => unknown) =>
  cniErrorOf(() => {
    try {
      return fn();
    } catch (err) {
      expect(err).toBeInstanceOf(VfLookupError);
      throw toCniError(err);
    }
  });

afterAll(removeTmpDirs);


/** 12 VFs, created in a scrambled order so that directory order is not VF order. */
const twelve: FakeVf[] = Array.from({ length: 12 }, (_, i) => ({ pci: `0000:03:${String(1 + Math.floor(i / 8)).padStart(2, '0')}.${i % 8}`, netdev: `ens1f0v${i}` }));

function tree() {
  const root = tmpDir();
  const order = [7, 0, 11, 3, 10, 1, 9, 2, 8, 4, 6, 5];
  buildSysfs(root, [
    { name: 'ens1f0', pci: '0000:03:00.0', vfs: order.map((i) => twelve[i] as FakeVf), indexes: order },
    { name: 'ens1f1', pci: '0000:03:00.1', vfs: [{ pci: '0000:04:00.2', netdev: 'ens1f1v0' }, { pci: '0000:04:00.3' }] },
    { name: 'eno1', pci: '0000:00:1f.6', vfs: [] },
  ]);
  return { root, sysfs: new Sysfs(root) };
}

describe('listVfs', () => {
  it('lists VFs ordered by numeric VF index (virtfn10 after virtfn9)', () => {
    const { sysfs } = tree();
    const vfs = sysfs.listVfs('ens1f0');
    expect(vfs.map((v) => v.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(vfs.map((v) => v.pci)).toEqual(twelve.map((v) => v.pci));
    expect(vfs.map((v) => v.netdev)).toEqual(twelve.map((v) => v.netdev));
  });

  it('fills in the PF and its index from the PF PCI function', () => {
    const { sysfs } = tree();
    expect(sysfs.listVfs('ens1f0')[3]).toEqual({ pci: '0000:03:01.3', index: 3, pfPci: '0000:03:00.0', pfName: 'ens1f0', pfIndex: 0, netdev: 'ens1f0v3' });
    expect(sysfs.listVfs('ens1f1').map((v) => [v.pfIndex, v.pfPci])).toEqual([
      [1, '0000:03:00.1'],
      [1, '0000:03:00.1'],
    ]);
  });

  it('a pfIndex override wins over the PCI function', () => {
    const { sysfs } = tree();
    expect(sysfs.listVfs('ens1f1', 0).every((v) => v.pfIndex === 0)).toBe(true);
    expect(sysfs.listVfs('ens1f0', 3)[0]?.pfIndex).toBe(3);
  });

  it('a VF without a netdev (driver unbound or moved away) has none', () => {
    const { sysfs } = tree();
    expect(sysfs.listVfs('ens1f1')[1]).toMatchObject({ pci: '0000:04:00.3', netdev: undefined });
  });

  it('ignores entries that are not virtfnN', () => {
    const { root, sysfs } = tree();
    mkdirSync(join(root, 'bus/pci/devices/0000:03:00.1/virtfn_extra'));
    symlinkSync('../0000:04:00.2', join(root, 'bus/pci/devices/0000:03:00.1/virtfnX'));
    expect(sysfs.listVfs('ens1f1').map((v) => v.index)).toEqual([0, 1]);
  });

  it('a missing PF is code 101 naming the PF', () => {
    const { sysfs } = tree();
    const err = errorOf(() => sysfs.listVfs('ens9f9'));
    expect(err.code).toBe(101);
    expect(err.message).toContain('ens9f9');
  });

  it('a PF without VFs is code 101 and says how to enable SR-IOV', () => {
    const { sysfs } = tree();
    const err = errorOf(() => sysfs.listVfs('eno1'));
    expect(err.code).toBe(101);
    expect(err.message).toMatch(/no VFs.*sriov_numvfs/);
  });

  it('reads below its root only', () => {
    const { sysfs } = tree();
    const other = new Sysfs(tmpDir());
    expect(sysfs.listVfs('ens1f0')).toHaveLength(12);
    expect(errorOf(() => other.listVfs('ens1f0')).code).toBe(101);
  });
});

describe('vfByPci', () => {
  it('finds the VF through physfn, with its index and PF', () => {
    const { sysfs } = tree();
    expect(sysfs.vfByPci('0000:03:02.2')).toEqual({ pci: '0000:03:02.2', index: 10, pfPci: '0000:03:00.0', pfName: 'ens1f0', pfIndex: 0, netdev: 'ens1f0v10' });
    expect(sysfs.vfByPci('0000:04:00.3')).toEqual({ pci: '0000:04:00.3', index: 1, pfPci: '0000:03:00.1', pfName: 'ens1f1', pfIndex: 1, netdev: undefined });
  });

  it('a pfIndex override wins', () => {
    const { sysfs } = tree();
    expect(sysfs.vfByPci('0000:04:00.2', 5).pfIndex).toBe(5);
  });

  it('a PF (no physfn) is not a VF: code 101', () => {
    const { sysfs } = tree();
    const err = errorOf(() => sysfs.vfByPci('0000:03:00.0'));
    expect(err.code).toBe(101);
    expect(err.message).toMatch(/not an SR-IOV VF/);
  });

  it('an unknown address is code 101', () => {
    const { sysfs } = tree();
    expect(errorOf(() => sysfs.vfByPci('0000:99:00.2')).code).toBe(101);
  });

  it('a VF whose PF does not list it is code 101', () => {
    const { root, sysfs } = tree();
    rmSync(join(root, 'bus/pci/devices/0000:03:00.1/virtfn1'));
    expect(errorOf(() => sysfs.vfByPci('0000:04:00.3')).code).toBe(101);
  });

  it('a VF whose PF has no netdev is code 101', () => {
    const { root, sysfs } = tree();
    rmSync(join(root, 'bus/pci/devices/0000:03:00.1/net'), { recursive: true });
    expect(errorOf(() => sysfs.vfByPci('0000:04:00.2')).code).toBe(101);
  });
});

describe('netdevOf / pfPciOf', () => {
  it('netdevOf gives the netdev name or undefined', () => {
    const { sysfs } = tree();
    expect(sysfs.netdevOf('0000:03:01.2')).toBe('ens1f0v2');
    expect(sysfs.netdevOf('0000:04:00.3')).toBeUndefined();
    expect(sysfs.netdevOf('0000:77:00.0')).toBeUndefined();
  });
  it('pfPciOf resolves class/net/<pf>/device', () => {
    const { sysfs } = tree();
    expect(sysfs.pfPciOf('ens1f1')).toBe('0000:03:00.1');
    expect(errorOf(() => sysfs.pfPciOf('nope')).code).toBe(101);
  });
});

describe('isNetdevOfVf: which netdev in a container is the VF', () => {
  const sysfs = new Sysfs('/sys');
  const pci = '0000:03:00.2';
  it('a netdev with a parent device is the VF exactly when that parent is its PCI function', () => {
    expect(sysfs.isNetdevOfVf({ name: 'x', ifindex: 9, parentBus: 'pci', parentDev: pci }, { pci })).toBe(true);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9, parentBus: 'pci', parentDev: '0000:03:00.3' }, { pci })).toBe(false);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9, parentBus: 'platform', parentDev: pci }, { pci })).toBe(false);
  });
  it('a parentless netdev is never the VF unless ADD recorded a link identity, whatever /sys is', () => {
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9 }, { pci })).toBe(false);
    expect(new Sysfs('/tmp/emulated').isNetdevOfVf({ name: 'eth0', ifindex: 9, peer: { netnsId: 0, ifindex: 4 } }, { pci })).toBe(false);
  });
  it('a kernel that reports no parent device: the ifindex ADD saw, and no veth peer', () => {
    const vf = { pci, linkIdentity: { ifindex: 9 } };
    expect(sysfs.isNetdevOfVf({ name: 'renamed', ifindex: 9 }, vf)).toBe(true);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 10 }, vf)).toBe(false);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9, peer: { netnsId: 0, ifindex: 4 } }, vf)).toBe(false);
  });
  it('an emulated VF (veth): the ifindex and the peer ADD saw', () => {
    const vf = { pci, linkIdentity: { ifindex: 9, peer: { netnsId: 1, ifindex: 4 } } };
    expect(sysfs.isNetdevOfVf({ name: 'x', ifindex: 9, peer: { netnsId: 1, ifindex: 4 } }, vf)).toBe(true);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9, peer: { netnsId: 0, ifindex: 4 } }, vf)).toBe(false);
    expect(sysfs.isNetdevOfVf({ name: 'eth0', ifindex: 9 }, vf)).toBe(false);
  });
});
