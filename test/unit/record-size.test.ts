/** Attachment records keep what DEL needs of ADD's config (the IPAM plugin's part), with a size cap; old records still read. */
import { AttachmentSchema, MAX_RECORDED_CONFIG_BYTES, parseRecord, recordedConfig, RecordTooLargeError } from '../../src/store/records';
import { storeErrorToCni } from '../../src/plugin/store-errors';

const vteps = Array.from({ length: 300 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
const full = {
  cniVersion: '1.1.0', name: 'vni100', type: 'dpu-overlay', vni: 100, mtu: 1450,
  ipam: { type: 'host-local', subnet: '10.1.0.0/24', dataDir: '/var/lib/x' }, runtimeConfig: { ips: ['10.1.0.5/24'] }, args: { cni: { ips: ['10.1.0.5'] } },
  dpu: { host: '192.0.2.1', remoteVteps: vteps }, junk: 'x'.repeat(4 * 1024 * 1024),
};

describe('recordedConfig', () => {
  test('keeps what an IPAM plugin reads on DEL and drops the rest (DPU section, bulk)', () => {
    const kept = JSON.parse(recordedConfig(JSON.stringify(full))) as Record<string, unknown>;
    expect(kept).toEqual({ cniVersion: '1.1.0', name: 'vni100', type: 'dpu-overlay', ipam: full.ipam, runtimeConfig: full.runtimeConfig, args: full.args });
    expect(recordedConfig(JSON.stringify(full)).length).toBeLessThan(1024);
  });

  test('an IPAM section past the cap is refused with code 7 saying what to shrink', () => {
    const big = { ...full, ipam: { type: 'static', addresses: Array.from({ length: 20000 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}/32` })) } };
    let err: unknown;
    try {
      recordedConfig(JSON.stringify(big));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RecordTooLargeError);
    expect(storeErrorToCni(err as RecordTooLargeError)).toMatchObject({ code: 7, message: expect.stringMatching(new RegExp(`more than the ${MAX_RECORDED_CONFIG_BYTES} a record may keep; shrink the ipam section`)) });
  });

  test('a record from before (the whole config kept) still reads', () => {
    const old = {
      version: 1, phase: 'ready', network: 'vni100', containerId: 'c1', ifname: 'net1', netns: '/run/netns/x', vni: 100,
      vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'eth1', originalMac: '02:00:00:00:00:01', originalMtu: 1500 },
      tmpName: 'dpuo0123abcd', mtu: 1450, rawConfig: JSON.stringify(full), ipamType: 'host-local', cniPath: ['/opt/cni/bin'],
    };
    expect(parseRecord<{ rawConfig: string }>(AttachmentSchema, JSON.stringify(old), 'old').rawConfig).toBe(JSON.stringify(full));
  });
});
