import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DpuConfig } from '../../src/config/schema';
import type { TunnelTarget } from '../../src/dpu/ovs/tunnels';
import { TunnelFollower } from '../../src/daemon/tunnel-follow';
import type { Attachment } from '../../src/store/attachments';
import { recordedConfig } from '../../src/store/records';
import { memoryLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const dpu = { host: '192.0.2.2', privateKeyFile: '/etc/dpu-overlay/id_ed25519', knownHostsFile: '/etc/dpu-overlay/known_hosts', daemonSocket: '' };

function setup(): { dir: string; node: string; write: (remotes: string[]) => void; att: (vni: number) => Attachment } {
  const dir = tmpDir();
  chmodSync(dir, 0o755);
  const node = join(dir, 'node.json');
  const write = (remotes: string[]) => {
    writeFileSync(`${node}.tmp`, JSON.stringify({ pf: 'ens1f0', dpu: { ...dpu, localVtep: '2001:db8::1', remoteVteps: remotes } }), { mode: 0o644 });
    renameSync(`${node}.tmp`, node);
  };
  const raw = { cniVersion: '1.1.0', name: 'ovl', type: 'dpu-overlay', vni: 100 };
  const att = (vni: number) => ({
    version: 1, phase: 'ready', network: 'ovl', containerId: `c${vni}`, ifname: 'eth0', netns: '/run/netns/x', vni, tmpName: 'dpuo00000000', mtu: 1430, cniPath: [],
    vf: { pci: '0000:03:00.2', index: 0, pfName: 'ens1f0', pfPci: '0000:03:00.0', pfIndex: 0, originalName: 'ens1f0v0', originalMac: '02:00:00:00:00:01', originalMtu: 1500 },
    // what ADD records of its config (the IPAM keys only: no vni, no dpu section)
    rawConfig: recordedConfig(JSON.stringify({ ...raw, vni, ipam: { type: 'host-local', subnet: '10.1.0.0/24' } })),
    dpu: { target: 'root@192.0.2.2:22', bridge: `br-vni${vni}`, representor: 'pf0vf0', portUuid: '11111111-1111-4111-8111-111111111111', config: { ...dpu, hwOffload: 'require' } },
  }) as unknown as Attachment;
  return { dir, node, write, att };
}

describe('the daemon follows node files (static mode)', () => {
  it('reconciles every bridge with the node file read again, once per change; a broken file leaves bridges alone', async () => {
    const { write, att, node } = setup();
    write(['2001:db8::2', '2001:db8::3']);
    const calls: Array<{ remotes: string[]; targets: TunnelTarget[] }> = [];
    const offload: string[] = [];
    const m = memoryLogger();
    const f = new TunnelFollower(() => ({ reconcile: async (d: DpuConfig, targets: TunnelTarget[]) => (calls.push({ remotes: d.remoteVteps, targets }), offload.push(d.hwOffload), []) }), m.log, node);
    const records = [att(100), att(200)];
    await f.poll(records);
    expect(calls).toEqual([{ remotes: ['2001:db8::2', '2001:db8::3'], targets: [{ bridge: 'br-vni100', vni: 100 }, { bridge: 'br-vni200', vni: 200 }] }]);
    expect(m.records.filter((r) => r.msg === 'cannot read the node file to reconcile tunnels; bridges left as they are')).toEqual([]);
    expect(offload).toEqual(['require']); // the network's own DPU setting, from the record
    await f.poll(records);
    expect(calls).toHaveLength(1); // nothing changed
    write(['2001:db8::2']);
    await f.poll(records);
    expect(calls[1]?.remotes).toEqual(['2001:db8::2']);
    expect(m.records.some((r) => r.msg === 'node file or bridges changed: reconciling VNI bridge tunnels with remoteVteps')).toBe(true);
    writeFileSync(node, '{"dpu":', { mode: 0o644 });
    await f.poll(records);
    expect(calls).toHaveLength(2);
    expect(m.records.some((r) => r.msg === 'cannot read the node file to reconcile tunnels; bridges left as they are')).toBe(true);
  });

  it('a bridge follows the node file its attachment\'s ADD read (recorded), not the daemon\'s --node-config', async () => {
    const { dir, node, write, att } = setup();
    write(['2001:db8::2', '2001:db8::3']);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ pf: 'ens1f0', dpu: { ...dpu, localVtep: '2001:db8::1', remoteVteps: ['2001:db8::9'] } }), { mode: 0o644 });
    const calls: string[][] = [];
    const f = new TunnelFollower(() => ({ reconcile: async (d: DpuConfig) => (calls.push(d.remoteVteps), []) }), memoryLogger().log, node);
    const a = Object.assign(att(100), { nodeConfig: other });
    await f.poll([a]);
    expect(calls).toEqual([['2001:db8::9']]);
  });

  it('OVN-mode and released attachments are not its business', async () => {
    const { write, att, node } = setup();
    write(['2001:db8::2']);
    const calls: TunnelTarget[][] = [];
    const f = new TunnelFollower(() => ({ reconcile: async (_d: DpuConfig, t: TunnelTarget[]) => (calls.push(t), []) }), memoryLogger().log, node);
    const ovn = att(300);
    (ovn.dpu as { lsp?: unknown }).lsp = { uuid: '22222222-2222-4222-8222-222222222222', name: 'dpuo-x' };
    const released = { ...att(400), hostReleased: true };
    await f.poll([ovn, released]);
    expect(calls).toEqual([]);
  });
});
