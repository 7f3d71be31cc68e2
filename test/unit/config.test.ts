import { loadNetConf, type NetConf, requireVfSource } from '../../src/config/load';
import { DEFAULTS } from '../../src/config/schema';
import { errorOf } from './helpers/errors';

const FP = 'SHA256:' + 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456'; // 43 chars
const dpu = { host: 'dpu1.example.net', privateKeyFile: '/etc/dpu-overlay/id_ed25519', knownHostsFile: '/etc/dpu-overlay/known_hosts', localVtep: '192.0.2.1' };
const base = { cniVersion: '1.1.0', name: 'ovl', type: 'dpu-overlay', vni: 5001, pf: 'ens1f0' };

function load(extra: Record<string, unknown>, args: Record<string, string> = {}): NetConf {
  return loadNetConf({ ...base, ...extra }, args);
}

function withDpu(extra: Record<string, unknown>): Record<string, unknown> {
  return { dpu: { ...dpu, ...extra } };
}


function expectRejected(extra: Record<string, unknown>, path: string): void {
  const err = errorOf(() => load(extra));
  expect(err.code).toBe(7);
  expect(err.message).toMatch(/^invalid network config: /);
  expect(err.message).toContain(`${path}: `);
}

describe('accepted values', () => {
  it.each<[string, Record<string, unknown>, (c: NetConf) => unknown, unknown]>([
    ['vni 1', { vni: 1 }, (c) => c.vni, 1],
    ['vni 16777215', { vni: 16777215 }, (c) => c.vni, 16777215],
    ['mtu 68', { mtu: 68 }, (c) => c.mtu, 68],
    ['mtu 9000', { mtu: 9000 }, (c) => c.mtu, 9000],
    ['mtu 65535', { mtu: 65535 }, (c) => c.mtu, 65535],
    ['vlan 0', { vlan: 0 }, (c) => c.vlan, 0],
    ['vlan 4094', { vlan: 4094 }, (c) => c.vlan, 4094],
    ['vlan + vlanQoS 7', { vlan: 10, vlanQoS: 7 }, (c) => c.vlanQoS, 7],
    ['mac', { mac: '02:AB:cd:00:00:01' }, (c) => c.mac, '02:AB:cd:00:00:01'],
    ['deviceID', { deviceID: '0000:03:00.2' }, (c) => c.deviceID, '0000:03:00.2'],
    ['pciBusID', { pciBusID: '0000:af:1f.7' }, (c) => c.pciBusID, '0000:af:1f.7'],
    ['pfIndex 255', { pfIndex: 255 }, (c) => c.pfIndex, 255],
    ['pf 15 bytes', { pf: 'abcdefghijklmno' }, (c) => c.pf, 'abcdefghijklmno'],
    ['spoofchk off', { spoofchk: 'off' }, (c) => c.spoofchk, 'off'],
    ['trust on', { trust: 'on' }, (c) => c.trust, 'on'],
    ['linkState disable', { linkState: 'disable' }, (c) => c.linkState, 'disable'],
    ['tx rates', { minTxRate: 100, maxTxRate: 1000 }, (c) => [c.minTxRate, c.maxTxRate], [100, 1000]],
    ['maxTxRate 0 means unlimited', { minTxRate: 100, maxTxRate: 0 }, (c) => c.maxTxRate, 0],
    ['sysfsRoot', { sysfsRoot: '/tmp/fake sys' }, (c) => c.sysfsRoot, '/tmp/fake sys'],
    ['stateDir', { stateDir: '/run/dpu' }, (c) => c.stateDir, '/run/dpu'],
    ['logLevel', { logLevel: 'silent' }, (c) => c.logLevel, 'silent'],
    ['logFile', { logFile: '/var/log/x.log' }, (c) => c.logFile, '/var/log/x.log'],
    ['ipam', { ipam: { type: 'host-local', subnet: '10.0.0.0/24' } }, (c) => c.ipam, { type: 'host-local', subnet: '10.0.0.0/24' }],
    ['dpu.host IPv4', withDpu({ host: '192.0.2.7' }), (c) => c.dpu?.host, '192.0.2.7'],
    ['dpu.host IPv6', withDpu({ host: 'fd00::7' }), (c) => c.dpu?.host, 'fd00::7'],
    ['dpu.host name', withDpu({ host: 'bf3-a' }), (c) => c.dpu?.host, 'bf3-a'],
    ['dpu.port 1', withDpu({ port: 1 }), (c) => c.dpu?.port, 1],
    ['dpu.port 65535', withDpu({ port: 65535 }), (c) => c.dpu?.port, 65535],
    ['dpu.user', withDpu({ user: 'ovs_admin' }), (c) => c.dpu?.user, 'ovs_admin'],
    ['dpu.hostKeyFingerprint alone', withDpu({ knownHostsFile: undefined, hostKeyFingerprint: FP }), (c) => c.dpu?.hostKeyFingerprint, FP],
    ['dpu.timeoutMs', withDpu({ timeoutMs: 100 }), (c) => c.dpu?.timeoutMs, 100],
    ['dpu.bridgePrefix 7 chars', withDpu({ bridgePrefix: 'b_vni-x' }), (c) => c.dpu?.bridgePrefix, 'b_vni-x'],
    ['dpu.datapathType netdev', withDpu({ datapathType: 'netdev' }), (c) => c.dpu?.datapathType, 'netdev'],
    ['dpu.representorTemplate {vf} only', withDpu({ representorTemplate: 'vf{vf}_r' }), (c) => c.dpu?.representorTemplate, 'vf{vf}_r'],
    ['dpu.representorTemplate {pf} only', withDpu({ representorTemplate: 'p{pf}' }), (c) => c.dpu?.representorTemplate, 'p{pf}'],
    ['dpu.localVtep IPv6', withDpu({ localVtep: '2001:db8::1' }), (c) => c.dpu?.localVtep, '2001:db8::1'],
    ['dpu.remoteVteps', withDpu({ remoteVteps: ['192.0.2.2', '192.0.2.3'] }), (c) => c.dpu?.remoteVteps, ['192.0.2.2', '192.0.2.3']],
    ['dpu.remoteVteps over an IPv6 underlay', withDpu({ localVtep: '2001:db8::1', remoteVteps: ['2001:db8::2', '2001:db8:1::3'] }), (c) => c.dpu?.remoteVteps, ['2001:db8::2', '2001:db8:1::3']],
    ['dpu.hwOffload require', withDpu({ hwOffload: 'require' }), (c) => c.dpu?.hwOffload, 'require'],
    ['dpu.hwOffload ignore', withDpu({ hwOffload: 'ignore' }), (c) => c.dpu?.hwOffload, 'ignore'],
  ])('%s', (_name, extra, get, want) => {
    expect(get(load(extra))).toEqual(want);
  });
});

describe('rejected values name the JSON path, code 7', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['vni 0', { vni: 0 }, 'vni'],
    ['vni 16777216', { vni: 16777216 }, 'vni'],
    ['vni not an integer', { vni: 1.5 }, 'vni'],
    ['vni as a string', { vni: '5001' }, 'vni'],
    ['vni missing', { vni: undefined }, 'vni'],
    ['name missing', { name: undefined }, 'name'],
    ['name with a slash', { name: 'a/b' }, 'name'],
    ['name starting with a dot', { name: '.x' }, 'name'],
    ['cniVersion a number', { cniVersion: 1 }, 'cniVersion'],
    ['mtu 67', { mtu: 67 }, 'mtu'],
    ['mtu 65536', { mtu: 65536 }, 'mtu'],
    ['mtu a string', { mtu: '1500' }, 'mtu'],
    ['vlan 4095', { vlan: 4095 }, 'vlan'],
    ['vlan -1', { vlan: -1 }, 'vlan'],
    ['vlanQoS 8', { vlan: 1, vlanQoS: 8 }, 'vlanQoS'],
    ['vlanQoS without vlan', { vlanQoS: 3 }, 'vlanQoS'],
    ['mac too short', { mac: '02:00:00:00:00' }, 'mac'],
    ['mac with dashes', { mac: '02-00-00-00-00-01' }, 'mac'],
    ['mac not hex', { mac: '02:00:00:00:00:0g' }, 'mac'],
    ['deviceID without domain', { deviceID: '03:00.2' }, 'deviceID'],
    ['deviceID function 8', { deviceID: '0000:03:00.8' }, 'deviceID'],
    ['pciBusID garbage', { pciBusID: '0000:03:00.2; reboot' }, 'pciBusID'],
    ['runtimeConfig.deviceID', { runtimeConfig: { deviceID: 'x' } }, 'runtimeConfig.deviceID'],
    ['runtimeConfig.mac', { runtimeConfig: { mac: 'nope' } }, 'runtimeConfig.mac'],
    ['args.cni.mac', { args: { cni: { mac: 'nope' } } }, 'args.cni.mac'],
    ['pf 16 bytes', { pf: 'abcdefghijklmnop' }, 'pf'],
    ['pf with a slash', { pf: 'ens1/0' }, 'pf'],
    ['pfIndex 256', { pfIndex: 256 }, 'pfIndex'],
    ['spoofchk yes', { spoofchk: 'yes' }, 'spoofchk'],
    ['linkState up', { linkState: 'up' }, 'linkState'],
    ['minTxRate above maxTxRate', { minTxRate: 2000, maxTxRate: 1000 }, 'minTxRate'],
    ['minTxRate negative', { minTxRate: -1 }, 'minTxRate'],
    ['sysfsRoot relative', { sysfsRoot: 'sys' }, 'sysfsRoot'],
    ['stateDir relative', { stateDir: './state' }, 'stateDir'],
    ['stateDir with a newline', { stateDir: '/var/lib/x\ny' }, 'stateDir'],
    ['logFile relative', { logFile: 'x.log' }, 'logFile'],
    ['logLevel verbose', { logLevel: 'verbose' }, 'logLevel'],
    ['ipam.type a path', { ipam: { type: '../../bin/sh' } }, 'ipam.type'],
    ['ipam without type', { ipam: {} }, 'ipam.type'],
    ['dpu not an object', { dpu: 'dpu1' }, 'dpu'],
    ['dpu.host missing', withDpu({ host: undefined }), 'dpu.host'],
    ['dpu.host starting with "-"', withDpu({ host: '-oProxyCommand=x' }), 'dpu.host'],
    ['dpu.host with a space', withDpu({ host: 'a b' }), 'dpu.host'],
    ['dpu.host with user@', withDpu({ host: 'root@dpu' }), 'dpu.host'],
    ['dpu.port 0', withDpu({ port: 0 }), 'dpu.port'],
    ['dpu.port 65536', withDpu({ port: 65536 }), 'dpu.port'],
    ['dpu.port a string', withDpu({ port: '22' }), 'dpu.port'],
    ['dpu.user root; id', withDpu({ user: 'root;id' }), 'dpu.user'],
    ['dpu.privateKeyFile relative', withDpu({ privateKeyFile: 'id_ed25519' }), 'dpu.privateKeyFile'],
    ['dpu.knownHostsFile relative', withDpu({ knownHostsFile: '~/.ssh/known_hosts' }), 'dpu.knownHostsFile'],
    ['dpu.hostKeyFingerprint MD5 style', withDpu({ hostKeyFingerprint: 'MD5:aa:bb' }), 'dpu.hostKeyFingerprint'],
    ['dpu.hostKeyFingerprint too short', withDpu({ hostKeyFingerprint: 'SHA256:' + 'A'.repeat(42) }), 'dpu.hostKeyFingerprint'],
    ['dpu.hostKeyFingerprint bad chars', withDpu({ hostKeyFingerprint: 'SHA256:' + '-'.repeat(43) }), 'dpu.hostKeyFingerprint'],
    ['dpu.timeoutMs 99', withDpu({ timeoutMs: 99 }), 'dpu.timeoutMs'],
    ['dpu.bridgePrefix 8 chars', withDpu({ bridgePrefix: 'brvnixyz' }), 'dpu.bridgePrefix'],
    ['dpu.bridgePrefix starting with a digit', withDpu({ bridgePrefix: '1br' }), 'dpu.bridgePrefix'],
    ['dpu.bridgePrefix with a dot', withDpu({ bridgePrefix: 'br.v' }), 'dpu.bridgePrefix'],
    ['dpu.bridgePrefix empty', withDpu({ bridgePrefix: '' }), 'dpu.bridgePrefix'],
    ['dpu.datapathType dpdk', withDpu({ datapathType: 'dpdk' }), 'dpu.datapathType'],
    ['dpu.representorTemplate without placeholders', withDpu({ representorTemplate: 'pf0vf0' }), 'dpu.representorTemplate'],
    ['dpu.representorTemplate with $()', withDpu({ representorTemplate: '$(id){vf}' }), 'dpu.representorTemplate'],
    ['dpu.representorTemplate with ;', withDpu({ representorTemplate: 'pf{pf};vf{vf}' }), 'dpu.representorTemplate'],
    ['dpu.representorTemplate with a space', withDpu({ representorTemplate: 'pf {vf}' }), 'dpu.representorTemplate'],
    ['dpu.representorTemplate too long', withDpu({ representorTemplate: 'representor{vf}x' }), 'dpu.representorTemplate'],
    ['dpu.localVtep a name', withDpu({ localVtep: 'dpu1' }), 'dpu.localVtep'],
    ['dpu.localVtep missing', withDpu({ localVtep: undefined }), 'dpu.localVtep'],
    ['dpu.remoteVteps not IPs', withDpu({ remoteVteps: ['192.0.2.2', 'dpu2'] }), 'dpu.remoteVteps[1]'],
    ['dpu.remoteVteps a CIDR', withDpu({ remoteVteps: ['192.0.2.0/24'] }), 'dpu.remoteVteps[0]'],
    ['dpu.remoteVteps an IPv6 remote with an IPv4 localVtep', withDpu({ remoteVteps: ['192.0.2.2', '2001:db8::2'] }), 'dpu.remoteVteps[1]'],
    ['dpu.remoteVteps an IPv4 remote with an IPv6 localVtep', withDpu({ localVtep: '2001:db8::1', remoteVteps: ['192.0.2.2'] }), 'dpu.remoteVteps[0]'],
    ['dpu.remoteVteps not an array', withDpu({ remoteVteps: '192.0.2.2' }), 'dpu.remoteVteps'],
    ['dpu.hwOffload on', withDpu({ hwOffload: 'on' }), 'dpu.hwOffload'],
    ['dpu without knownHostsFile and hostKeyFingerprint', withDpu({ knownHostsFile: undefined }), 'dpu.knownHostsFile'],
  ])('%s', (_name, extra, path) => {
    expectRejected(extra, path);
  });

  it('the message says what is wrong with the host key settings', () => {
    expect(errorOf(() => load(withDpu({ knownHostsFile: undefined }))).message).toMatch(/knownHostsFile or hostKeyFingerprint/);
  });

  it('a network config that is not an object at all is code 7', () => {
    expect(errorOf(() => loadNetConf([] as unknown as Record<string, unknown>, {})).code).toBe(7);
  });
});

describe('defaults', () => {
  it('applies every default', () => {
    const c = load(withDpu({}));
    expect(c.mtu).toBe(1450);
    expect(c.sysfsRoot).toBe('/sys');
    expect(c.stateDir).toBe('/var/lib/cni/dpu-overlay');
    expect(c.logLevel).toBe('info');
    expect(c.dpu).toMatchObject({ port: 22, user: 'root', timeoutMs: 10000, bridgePrefix: 'br-vni', datapathType: 'system', representorTemplate: 'pf{pf}vf{vf}', hwOffload: 'enable', remoteVteps: [] });
    expect(DEFAULTS.mtu).toBe(1450);
  });

  it('explicit values win over defaults', () => {
    const c = load({ mtu: 9000, ...withDpu({ port: 2222, bridgePrefix: 'ov', hwOffload: 'ignore' }) });
    expect([c.mtu, c.dpu?.port, c.dpu?.bridgePrefix, c.dpu?.hwOffload]).toEqual([9000, 2222, 'ov', 'ignore']);
  });

  it('dpu is optional (host-only mode)', () => {
    expect(load({}).dpu).toBeUndefined();
  });
});

describe('unknown fields', () => {
  it('ignores unknown top-level fields (and drops them)', () => {
    const c = load({ futureField: { x: 1 }, capabilities: { mac: true } }) as unknown as Record<string, unknown>;
    expect(c.futureField).toBeUndefined();
    expect(c.vni).toBe(5001);
  });

  it('keeps unknown ipam fields for the IPAM plugin', () => {
    expect(load({ ipam: { type: 'whereabouts', range: '10.0.0.0/24' } }).ipam).toEqual({ type: 'whereabouts', range: '10.0.0.0/24' });
  });
});

describe('deviceID precedence: runtimeConfig.deviceID > deviceID > pciBusID', () => {
  const A = '0000:03:00.2';
  const B = '0000:03:00.3';
  const C = '0000:03:00.4';
  it.each<[string, Record<string, unknown>, string | undefined]>([
    ['all three', { runtimeConfig: { deviceID: A }, deviceID: B, pciBusID: C }, A],
    ['deviceID and pciBusID', { deviceID: B, pciBusID: C }, B],
    ['pciBusID only', { pciBusID: C }, C],
    ['none', {}, undefined],
  ])('%s', (_n, extra, want) => {
    expect(load(extra).resolvedDeviceId).toBe(want);
  });

  it('lower-cases the PCI address (sysfs names are lower case)', () => {
    expect(load({ deviceID: '0000:AF:00.2' }).resolvedDeviceId).toBe('0000:af:00.2');
  });
});

describe('MAC precedence: CNI_ARGS MAC= > runtimeConfig.mac > args.cni.mac > mac', () => {
  const all = { runtimeConfig: { mac: '02:00:00:00:00:02' }, args: { cni: { mac: '02:00:00:00:00:03' } }, mac: '02:00:00:00:00:04' };
  it.each<[string, Record<string, unknown>, Record<string, string>, string | undefined]>([
    ['CNI_ARGS wins', all, { MAC: '02:00:00:00:00:01' }, '02:00:00:00:00:01'],
    ['then runtimeConfig.mac', all, {}, '02:00:00:00:00:02'],
    ['then args.cni.mac', { args: all.args, mac: all.mac }, {}, '02:00:00:00:00:03'],
    ['then mac', { mac: all.mac }, {}, '02:00:00:00:00:04'],
    ['none', {}, { IgnoreUnknown: 'true' }, undefined],
  ])('%s', (_n, extra, args, want) => {
    expect(load(extra, args).resolvedMac).toBe(want);
  });

  it('lower-cases the MAC', () => {
    expect(load({ mac: '02:AB:CD:EF:00:01' }).resolvedMac).toBe('02:ab:cd:ef:00:01');
  });

  it('a malformed CNI_ARGS MAC is an environment error (code 4)', () => {
    const err = errorOf(() => load({}, { MAC: '02:00:00:00:00:01;x' }));
    expect(err.code).toBe(4);
    expect(err.message).toContain('CNI_ARGS MAC=');
  });
});

describe('requireVfSource', () => {
  it('accepts pf', () => {
    expect(() => requireVfSource(load({ pf: 'ens1f0' }))).not.toThrow();
  });
  it('accepts a deviceID without pf', () => {
    expect(() => requireVfSource(load({ pf: undefined, deviceID: '0000:03:00.2' }))).not.toThrow();
  });
  it('accepts runtimeConfig.deviceID without pf', () => {
    expect(() => requireVfSource(load({ pf: undefined, runtimeConfig: { deviceID: '0000:03:00.2' } }))).not.toThrow();
  });
  it('rejects neither pf nor deviceID with code 7 naming pf', () => {
    const err = errorOf(() => requireVfSource(load({ pf: undefined })));
    expect(err.code).toBe(7);
    expect(err.message).toContain('pf: ');
  });
});
