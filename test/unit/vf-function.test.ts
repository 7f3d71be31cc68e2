import { CniError } from '../../src/cni/errors';
import { OvsDpuClient } from '../../src/dpu/ovs/client';
import type { OvsSettings } from '../../src/dpu/ovs/commands';
import { checkUnderlayMtu, ENCAP_OVERHEAD } from '../../src/dpu/mtu';
import type { DpuTransport, ExecResult } from '../../src/dpu/ssh';
import {
  parseDevlinkPort, parseDevlinkRate, parseSmartnicConfig, parseUplink, restoreValues, splitJsonDocuments, vfFunctionMismatch, vfFunctionSetCommands,
} from '../../src/dpu/vf-function';
import { StateStore } from '../../src/store/attachments';
import { AttachmentSchema, parseRecord } from '../../src/store/records';
import { argvAsRunBySh } from './helpers/argv-echo';
import { Bed, PF0_VFS, vfMac } from './helpers/bed';
import { silentLogger } from './helpers/logger';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';

let nets: TestNetns[] = [];
let NS = '';
beforeAll(async () => {
  nets = [await createNetns()];
  NS = nets[0]!.path;
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

const HANDLE = 'pci/0000:03:00.0/1';
const PORTS = {
  port: {
    'pci/0000:03:00.0/65535': { type: 'eth', netdev: 'p0', flavour: 'physical', port: 0 },
    [HANDLE]: { type: 'eth', netdev: 'pf0vf0', flavour: 'pcivf', controller: 1, pfnum: 0, vfnum: 0, external: true, function: { hw_addr: '00:00:00:00:00:00', state: 'active' } },
  },
};

function devlinkBed(): Bed {
  const b = new Bed(nets.map((n) => n.path));
  b.dpu.vfFunction = { target: { path: 'devlink', handle: HANDLE }, values: { mac: '00:00:00:00:00:00', linkState: 'enable', minTxRate: 0, maxTxRate: 0 } };
  return b;
}

function expectNothingLeft(b: Bed): void {
  expect(b.host.link('host', PF0_VFS[0]!.netdev as string)).toMatchObject({ mac: vfMac(0, 0), mtu: 1500, up: false });
  expect(b.host.linkNames(NS)).toEqual([]);
  expect(b.stateFiles()).toEqual([]);
  expect(b.dpu.ports.size).toBe(0);
}

describe('DPU-side VF settings (dpu.vfSettings)', () => {
  it('auto, DPU offers a devlink port function: MAC and rates go there, not through the host PF; DEL restores them', async () => {
    const b = devlinkBed();
    const add = await b.run('ADD', { config: b.config({ mac: '02:aa:00:00:00:01', maxTxRate: 100 }) });
    expect(add.exitCode).toBe(0);
    expect(b.dpu.callsOf('facts')).toEqual([{ representor: 'pf0vf0', pfIndex: 0, vfIndex: 0, vfFunction: { rates: true } }]);
    expect(b.dpu.callsOf('setVfFunction')).toEqual([{ target: { path: 'devlink', handle: HANDLE }, values: { mac: '02:aa:00:00:00:01', maxTxRate: 100 } }]);
    expect(b.host.ipCalls().filter((c) => c.args.includes('vf'))).toEqual([]);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')?.vfFunction).toEqual({
      target: { path: 'devlink', handle: HANDLE }, applied: { mac: '02:aa:00:00:00:01', maxTxRate: 100 }, saved: { mac: '00:00:00:00:00:00', maxTxRate: 0 },
    });
    const check = await b.run('CHECK', { config: b.config({ mac: '02:aa:00:00:00:01', maxTxRate: 100, prevResult: add.json }) });
    expect(check.exitCode).toBe(0);
    b.dpu.vfFunction!.values.maxTxRate = 5;
    const drifted = await b.run('CHECK', { config: b.config({ mac: '02:aa:00:00:00:01', maxTxRate: 100, prevResult: add.json }) });
    expect(drifted.json).toMatchObject({ code: 120 });
    expect(drifted.json?.msg).toMatch(/VF function of pf0vf0: maxTxRate is 5, expected 100/);
    const del = await b.run('DEL');
    expect(del.exitCode).toBe(0);
    expect(b.dpu.callsOf('setVfFunction').at(-1)).toEqual({ target: { path: 'devlink', handle: HANDLE }, values: { mac: '00:00:00:00:00:00', maxTxRate: 0 } });
    expectNothingLeft(b);
  });

  it('a DEL that cannot restore the VF function gives the host side back, keeps the record (code 11) and a retry finishes', async () => {
    const b = devlinkBed();
    expect((await b.run('ADD', { config: b.config({ mac: '02:aa:00:00:00:01' }) })).exitCode).toBe(0);
    b.dpu.failures.setVfFunction = new CniError(11, 'DPU unreachable');
    const del = await b.run('DEL');
    expect(del.json).toMatchObject({ code: 11 });
    expect(del.json?.msg).toMatch(/host side released, but restoring the VF function or unplugging pf0vf0/);
    expect(new StateStore(b.stateDir).loadAttachment('c1', 'net1')).toMatchObject({ hostReleased: true, vfFunction: { applied: { mac: '02:aa:00:00:00:01' } } });
    expect(b.dpu.ports.size).toBe(1);
    delete b.dpu.failures.setVfFunction;
    expect((await b.run('DEL')).exitCode).toBe(0);
    expect(b.dpu.vfFunction?.values.mac).toBe('00:00:00:00:00:00');
    expectNothingLeft(b);
  });

  it('a failed plug after the VF function was set restores it (rollback)', async () => {
    const b = devlinkBed();
    b.dpu.failures.plug = new CniError(11, 'DPU unreachable');
    const out = await b.run('ADD', { config: b.config({ linkState: 'disable' }) });
    expect(out.json).toMatchObject({ code: 11 });
    expect(b.dpu.callsOf('setVfFunction').map((c) => (c as { values: unknown }).values)).toEqual([{ linkState: 'disable' }, { linkState: 'enable' }]);
    expectNothingLeft(b);
  });

  it('vlan, spoofchk or trust with a DPU that takes VF settings on its side is code 7 naming them, before anything changed', async () => {
    const b = devlinkBed();
    const out = await b.run('ADD', { config: b.config({ vlan: 100, spoofchk: 'off' }) });
    expect(out.json).toMatchObject({ code: 7 });
    expect(out.json?.msg).toMatch(/vlan, spoofchk: DPU .* takes VF settings on its side \(devlink\).*dpu.vfSettings to "host"/);
    expect(b.dpu.callsOf('setVfFunction')).toEqual([]);
    expectNothingLeft(b);
  });

  it('"dpu" with a DPU offering neither interface is code 7; "auto" falls back to the host PF', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const dpuOnly = await b.run('ADD', { config: b.config({ maxTxRate: 10, dpu: { ...(b.config().dpu as object), vfSettings: 'dpu' } }) });
    expect(dpuOnly.json).toMatchObject({ code: 7 });
    expect(dpuOnly.json?.msg).toMatch(/dpu.vfSettings: "dpu", but DPU .* offers neither a devlink port function .* nor \/sys\/class\/net\/p0\/smart_nic\/vf0\//);
    expectNothingLeft(b);
    const auto = await b.run('ADD', { config: b.config({ maxTxRate: 10 }) });
    expect(auto.exitCode).toBe(0);
    expect(b.host.ipCalls().filter((c) => c.args.includes('vf')).map((c) => c.args.slice(6))).toEqual([['max_tx_rate', '10']]);
  });

  it('"host" never asks the DPU for its VF function', async () => {
    const b = devlinkBed();
    const out = await b.run('ADD', { config: b.config({ maxTxRate: 10, dpu: { ...(b.config().dpu as object), vfSettings: 'host' } }) });
    expect(out.exitCode).toBe(0);
    expect(b.dpu.callsOf('facts')).toEqual([{ representor: 'pf0vf0', pfIndex: 0, vfIndex: 0 }]);
    expect(b.dpu.callsOf('setVfFunction')).toEqual([]);
  });

  it('an invalid vfSettings is code 7', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const out = await b.run('ADD', { config: b.config({ dpu: { ...(b.config().dpu as object), vfSettings: 'arm' } }) });
    expect(out.json).toMatchObject({ code: 7 });
    expect(out.json?.msg).toMatch(/dpu.vfSettings/);
  });
});

describe('a recorded VF function is re-validated like the rest of the record', () => {
  it('a planted handle, MAC or target kind is refused, never sent to the DPU', async () => {
    const b = devlinkBed();
    expect((await b.run('ADD', { config: b.config({ mac: '02:aa:00:00:00:01' }) })).exitCode).toBe(0);
    const good = new StateStore(b.stateDir).loadAttachment('c1', 'net1');
    const planted = (vfFunction: unknown) => JSON.stringify({ ...good, vfFunction });
    expect(() => parseRecord(AttachmentSchema, planted(good?.vfFunction), 'f')).not.toThrow();
    for (const bad of [
      { ...good?.vfFunction, target: { path: 'devlink', handle: 'pci/0000:03:00.0/1 && reboot' } },
      { ...good?.vfFunction, target: { path: 'devlink', handle: 'pci/0000:03:00.0/65535/x' } },
      { ...good?.vfFunction, target: { path: 'sysfs', file: '/etc/shadow' } },
      { ...good?.vfFunction, saved: { mac: '02:aa:00:00:00:01\nx' } },
      { ...good?.vfFunction, applied: { maxTxRate: -1 } },
    ]) {
      expect(() => parseRecord(AttachmentSchema, planted(bad), 'f')).toThrow(/invalid|must/i);
    }
  });
});

describe('MTU against the DPU uplink', () => {
  it('mtu + VXLAN overhead above the uplink MTU is code 7 with the numbers, and nothing is left', async () => {
    const b = new Bed(nets.map((n) => n.path));
    const out = await b.run('ADD', { config: b.config({ mtu: 1480 }) });
    expect(out.json).toMatchObject({ code: 7 });
    expect(out.json?.msg).toBe(
      'invalid network config: mtu: mtu 1480 needs an underlay MTU of at least 1530 (VXLAN over IPv4 adds 50 bytes); the DPU\'s uplink br-phy carrying localVtep 192.0.2.1 has MTU 1500: lower mtu to 1450 or raise the uplink MTU',
    );
    // static mode plugs alongside the move and IPAM; the refusal (before the link comes up) unplugs it again
    expect(b.dpu.callsOf('plug')).toHaveLength(1);
    expect(b.dpu.callsOf('unplug')).toHaveLength(1);
    // asked alongside the move and IPAM (no round trip in front of them), so IPAM ran and was undone
    expect(b.ipam.commands()).toEqual(['ADD', 'DEL']);
    expectNothingLeft(b);
  });

  it('IPv6 underlay counts 70 bytes; Geneve is defined for OVN (58/78); a DPU without localVtep is code 7', () => {
    const args = { localVtep: '2001:db8::1', encap: 'vxlan' as const, target: 'dpu' };
    expect(() => checkUnderlayMtu({ ...args, mtu: 1430, uplink: { dev: 'p0', mtu: 1500 } })).not.toThrow();
    expect(() => checkUnderlayMtu({ ...args, mtu: 1431, uplink: { dev: 'p0', mtu: 1500 } })).toThrow(/at least 1501 \(VXLAN over IPv6 adds 70 bytes\).*lower mtu to 1430/);
    expect(ENCAP_OVERHEAD.geneve).toEqual({ ipv4: 58, ipv6: 78 });
    expect(() => checkUnderlayMtu({ ...args, mtu: 1400, uplink: undefined })).toThrow(/dpu.localVtep: no interface on DPU dpu has address 2001:db8::1/);
  });
});

describe('parsing what the DPU prints', () => {
  it('concatenated JSON documents, with or without newlines', () => {
    expect(splitJsonDocuments('[{"a":"}"}]{"port":{}}\n{"rate":{"x":{"tx_max":1}}}')).toEqual([[{ a: '}' }], { port: {} }, { rate: { x: { tx_max: 1 } } }]);
  });

  it('the uplink, the representor port (VF flavour only), its rates in Mbit/s, the smart_nic config', () => {
    expect(parseUplink([{ ifname: 'br-phy', mtu: 9000, addr_info: [] }])).toEqual({ dev: 'br-phy', mtu: 9000 });
    expect(parseUplink([])).toBeUndefined();
    expect(parseDevlinkPort(PORTS, 'pf0vf0')).toEqual({ handle: HANDLE, values: { mac: '00:00:00:00:00:00', linkState: 'enable' } });
    expect(parseDevlinkPort(PORTS, 'p0')).toBeUndefined();
    expect(parseDevlinkRate({ rate: { [HANDLE]: { type: 'leaf', tx_max: 12500000 } } }, HANDLE)).toEqual({ minTxRate: 0, maxTxRate: 100 });
    expect(parseSmartnicConfig('MAC        : 0C:42:A1:00:00:01\nMaxTxRate  : 100\nState      : Follow\n')).toEqual({ mac: '0c:42:a1:00:00:01', maxTxRate: 100, linkState: 'auto' });
  });

  it('set commands per interface; restore only what was applied; CHECK compares', () => {
    expect(vfFunctionSetCommands({ path: 'devlink', handle: HANDLE }, { mac: '02:AA:00:00:00:01', linkState: 'auto', minTxRate: 10, maxTxRate: 100 })).toEqual([
      ['devlink', 'port', 'function', 'set', HANDLE, 'hw_addr', '02:aa:00:00:00:01', 'state', 'active'],
      ['devlink', 'port', 'function', 'rate', 'set', HANDLE, 'tx_share', '10mbit', 'tx_max', '100mbit'],
    ]);
    expect(vfFunctionSetCommands({ path: 'smartnic', pfIndex: 1, vfIndex: 7 }, { mac: '02:aa:00:00:00:01', linkState: 'disable', maxTxRate: 5 })).toEqual([
      ['dpu-guard', 'smartnic-write', '/sys/class/net/p1/smart_nic/vf7/mac', '02:aa:00:00:00:01'],
      ['dpu-guard', 'smartnic-write', '/sys/class/net/p1/smart_nic/vf7/vport_state', 'Down'],
      ['dpu-guard', 'smartnic-write', '/sys/class/net/p1/smart_nic/vf7/max_tx_rate', '5'],
    ]);
    expect(() => vfFunctionSetCommands({ path: 'devlink', handle: 'pci/0000:03:00.0/1 x' }, { mac: '02:aa:00:00:00:01' })).toThrow(/handle/);
    expect(restoreValues({ mac: '02:aa:00:00:00:01', maxTxRate: 100 }, {})).toEqual({ mac: '00:00:00:00:00:00', maxTxRate: 0 });
    expect(vfFunctionMismatch({ path: 'devlink', handle: HANDLE }, { linkState: 'auto' }, { linkState: 'enable' })).toBeUndefined();
    expect(vfFunctionMismatch({ path: 'devlink', handle: HANDLE }, { mac: '02:aa:00:00:00:01' }, { mac: '00:00:00:00:00:00' })).toMatch(/MAC is 00:00:00:00:00:00/);
  });
});

describe('OvsDpuClient.facts', () => {
  const s: OvsSettings = { bridgePrefix: 'br-vni', datapathType: 'system', localVtep: '192.0.2.1', remoteVteps: [], hwOffload: 'enable', timeoutMs: 10000 };
  class Transport implements DpuTransport {
    readonly target = 'root@192.0.2.10:22';
    readonly commands: string[] = [];
    constructor(private readonly answers: ExecResult[]) {}
    async exec(command: string): Promise<ExecResult> {
      this.commands.push(command);
      const a = this.answers.shift();
      if (!a) throw new Error(`unexpected ${command}`);
      return a;
    }
    close(): void {}
  }
  const UPLINK = '[{"ifname":"br-phy","mtu":1500}]\n';

  it('uplink, devlink ports and rates in one round trip', async () => {
    const t = new Transport([{ exitCode: 0, stdout: `${UPLINK}${JSON.stringify(PORTS)}{"rate":{}}`, stderr: '' }]);
    const facts = await new OvsDpuClient(t, s, silentLogger()).facts({ representor: 'pf0vf0', pfIndex: 0, vfIndex: 0, vfFunction: { rates: true } });
    expect(argvAsRunBySh(t.commands[0] as string)).toEqual([['ip', '-j', 'addr', 'show', 'to', '192.0.2.1'], ['devlink', '-j', 'port', 'show'], ['devlink', '-j', 'port', 'function', 'rate', 'show']]);
    expect(facts).toEqual({ uplink: { dev: 'br-phy', mtu: 1500 }, vfFunction: { target: { path: 'devlink', handle: HANDLE }, values: { mac: '00:00:00:00:00:00', linkState: 'enable', minTxRate: 0, maxTxRate: 0 } } });
  });

  it('no devlink on the DPU: the smart_nic files; neither: NIC mode; a refusing guard is an error', async () => {
    const smart = new Transport([{ exitCode: 1, stdout: UPLINK, stderr: 'Failed to connect to devlink Netlink' }, { exitCode: 0, stdout: 'MAC : 00:00:00:00:00:00\nMaxTxRate : 0\nState : Follow\n', stderr: '' }]);
    expect((await new OvsDpuClient(smart, s, silentLogger()).facts({ representor: 'pf0vf3', pfIndex: 0, vfIndex: 3, vfFunction: { rates: false } })).vfFunction).toEqual({
      target: { path: 'smartnic', pfIndex: 0, vfIndex: 3 }, values: { mac: '00:00:00:00:00:00', maxTxRate: 0, linkState: 'auto' },
    });
    expect(argvAsRunBySh(smart.commands[1] as string)).toEqual([['cat', '/sys/class/net/p0/smart_nic/vf3/config']]);
    const nic = new Transport([{ exitCode: 0, stdout: `${UPLINK}{"port":{}}`, stderr: '' }, { exitCode: 1, stdout: '', stderr: 'No such file' }]);
    expect(await new OvsDpuClient(nic, s, silentLogger()).facts({ representor: 'pf0vf3', pfIndex: 0, vfIndex: 3, vfFunction: { rates: false } })).toEqual({ uplink: { dev: 'br-phy', mtu: 1500 }, vfFunction: undefined });
    const refused = new Transport([{ exitCode: 126, stdout: '', stderr: 'dpu-guard: refused: command devlink is not allowed' }]);
    await expect(new OvsDpuClient(refused, s, silentLogger()).facts({ representor: 'pf0vf3', pfIndex: 0, vfIndex: 3 })).rejects.toThrow(/uplink query failed \(exit 126\).*as new as the plugin/);
  });
});
