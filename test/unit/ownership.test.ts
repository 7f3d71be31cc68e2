import { DpuConfigSchema, NetConfSchema } from '../../src/config/schema';
import { loadNetConf } from '../../src/config/load';
import { FIELD_OWNERSHIP, ownerOf, splitByOwner } from '../../src/config/ownership';
import { parseNodeFile } from '../../src/config/node-file';
import { errorOf } from './helpers/errors';

const NAD = { cniVersion: '1.0.0', name: 'dpu-vni100', type: 'dpu-overlay', vni: 100, ipam: { type: 'host-local' }, dpu: { hwOffload: 'enable' } };
const NODE_DPU = { host: '192.0.2.10', privateKeyFile: '/etc/cni/dpu-overlay/id_ed25519', knownHostsFile: '/etc/cni/dpu-overlay/known_hosts', localVtep: '198.51.100.1', remoteVteps: ['198.51.100.2'] };
const NODE = { pf: 'ens1f0np0', stateDir: '/var/lib/x', logFile: '/var/log/x.log', dpu: { ...NODE_DPU, representorTemplate: 'pf{pf}vf{vf}' } };
const PATH = '/etc/cni/dpu-overlay/node.json';
const node = (values?: Record<string, unknown>) => ({ path: PATH, ...(values ? { values } : {}) });

describe('the ownership table', () => {
  it('names every field once, each with an owner', () => {
    const fields = FIELD_OWNERSHIP.map((f) => f.field);
    expect(new Set(fields).size).toBe(fields.length);
  });

  it('every field the schema knows (top level and dpu) has an owner: a field added later must say whose it is', () => {
    const top = Object.keys(NetConfSchema.shape);
    const dpu = Object.keys(DpuConfigSchema.shape).map((k) => `dpu.${k}`);
    const missing = [...top.filter((f) => f !== 'dpu'), ...dpu].filter((f) => ownerOf(f) === undefined);
    expect(missing).toEqual([]);
  });

  it('host paths, the DPU\'s address and identity, port naming and the daemon are the node\'s', () => {
    for (const f of ['stateDir', 'logFile', 'nodeConfig', 'sysfsRoot', 'dpu.privateKeyFile', 'dpu.knownHostsFile', 'dpu.host', 'dpu.port', 'dpu.user', 'dpu.hostKeyFingerprint', 'dpu.representorTemplate', 'dpu.bridgePrefix', 'pf', 'pfIndex', 'dpus', 'dpu.daemonSocket', 'dpu.localVtep', 'dpu.remoteVteps', 'spoofchk', 'trust', 'dpu.ovn']) {
      expect([f, ownerOf(f)]).toEqual([f, 'node']);
    }
    for (const f of ['vni', 'mtu', 'ipam', 'mac', 'vlan', 'maxTxRate', 'runtimeConfig', 'prevResult', 'dpu.hwOffload']) expect([f, ownerOf(f)]).toEqual([f, 'network']);
  });

  it('splitByOwner: a conflist written the old way, as network config and node file', () => {
    const { network, node: n } = splitByOwner({ ...NAD, ...NODE, nodeConfig: '/x', dpu: { ...NODE.dpu, hwOffload: 'require' } });
    expect(network).toEqual({ ...NAD, dpu: { hwOffload: 'require' } });
    expect(n).toEqual(NODE);
  });
});

describe('a network config setting a node field', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['logFile', { logFile: '/dev/ptmx' }, 'logFile'],
    ['stateDir', { stateDir: '/tmp/s' }, 'stateDir'],
    ['sysfsRoot', { sysfsRoot: '/tmp' }, 'sysfsRoot'],
    ['the representor template (another pod\'s port)', { dpu: { hwOffload: 'enable', representorTemplate: 'pf0vf{pf}' } }, 'dpu.representorTemplate'],
    ['pfIndex', { pfIndex: 0 }, 'pfIndex'],
    ['the daemon socket', { dpu: { daemonSocket: '/run/other.sock' } }, 'dpu.daemonSocket'],
    ['the DPU address', { dpu: { host: '203.0.113.1' } }, 'dpu.host'],
    ['one OVN setting', { dpu: { ovn: { switchPrefix: 'x' } } }, 'dpu.ovn.switchPrefix'],
    ['a dpus entry', { dpus: { ens1f0np0: { host: '203.0.113.1' } } }, 'dpus.ens1f0np0.host'],
    ['spoofchk', { spoofchk: 'off' }, 'spoofchk'],
  ])('%s: code 7 naming it and what to do', (_n, extra, field) => {
    const err = errorOf(() => loadNetConf({ ...NAD, ...extra }, {}, node(NODE)));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`${field} is the node owner's: remove it from the network config or move it into the node file ${PATH}`);
  });

  it('names every such field at once (the migration of an old conflist)', () => {
    const old = { ...NAD, pf: 'ens1f0np0', stateDir: '/s', logFile: '/l', dpu: { ...NODE_DPU, hwOffload: 'enable' } };
    const err = errorOf(() => loadNetConf(old, {}, node(undefined)));
    expect(err.code).toBe(7);
    expect(err.message).toMatch(/dpu\.host, dpu\.privateKeyFile, dpu\.knownHostsFile, dpu\.localVtep, dpu\.remoteVteps, pf, stateDir, logFile are the node owner's: remove them .* node file \/etc\/cni\/dpu-overlay\/node\.json \(there is none yet/);
    expect(err.message).toContain('come only from the node file');
  });

  it('equal to the node\'s value (node file, else the built-in default): accepted, deeply compared', () => {
    const same = { ...NAD, stateDir: '/var/lib/x', sysfsRoot: '/sys', logLevel: 'info', dpu: { hwOffload: 'enable', port: 22, remoteVteps: ['198.51.100.2'], ovn: { switchPrefix: 'vni' } } };
    expect(loadNetConf(same, {}, node(NODE)).stateDir).toBe('/var/lib/x');
    expect(errorOf(() => loadNetConf({ ...same, dpu: { remoteVteps: ['198.51.100.2', '198.51.100.3'] } }, {}, node(NODE))).message).toContain('dpu.remoteVteps is');
  });

  it('without a node file the built-in defaults are the node\'s values', () => {
    expect(loadNetConf({ ...NAD, dpu: undefined, stateDir: '/var/lib/cni/dpu-overlay' }, {}).stateDir).toBe('/var/lib/cni/dpu-overlay');
    expect(errorOf(() => loadNetConf({ ...NAD, dpu: undefined, stateDir: '/tmp' }, {})).code).toBe(7);
  });

  it('nodeConfig: refused unless it is the node file in use', () => {
    expect(errorOf(() => loadNetConf({ ...NAD, nodeConfig: '/tmp/mine.json' }, {}, node(NODE))).message).toMatch(/nodeConfig: a network config cannot choose the node file \(this node's is \/etc\/cni\/dpu-overlay\/node\.json/);
    expect(loadNetConf({ ...NAD, nodeConfig: PATH }, {}, node(NODE)).nodeConfig).toBe(PATH);
  });

  it('delegated by the node file: the network\'s value wins', () => {
    const c = loadNetConf({ ...NAD, dpu: { remoteVteps: ['198.51.100.9'], timeoutMs: 2000 } }, {}, node({ ...NODE, delegate: ['dpu.remoteVteps', 'dpu.timeoutMs'] }));
    expect(c.dpu).toMatchObject({ host: NODE_DPU.host, remoteVteps: ['198.51.100.9'], timeoutMs: 2000 });
  });

  it('host paths, the DPU\'s identity and port naming cannot be delegated; an unknown field neither', () => {
    for (const f of ['logFile', 'stateDir', 'dpu.representorTemplate', 'dpu.host', 'dpu.daemonSocket', 'nodeConfig']) {
      expect(errorOf(() => parseNodeFile(JSON.stringify({ delegate: [f] }), PATH)).message).toContain(`delegate: ${f} cannot be delegated`);
    }
    expect(errorOf(() => parseNodeFile(JSON.stringify({ delegate: ['vni'] }), PATH)).message).toContain('is not a node field');
    expect(errorOf(() => parseNodeFile(JSON.stringify({ delegate: 'pf' }), PATH)).message).toContain('delegate must be a list');
  });
});

describe('the node\'s limits on what networks choose', () => {
  const limited = node({ ...NODE, limits: { maxMtu: 1500, maxTxRate: 1000 } });

  it('mtu and tx rates within the limits: accepted; above: code 7 naming the limit', () => {
    expect(loadNetConf({ ...NAD, mtu: 1500, maxTxRate: 1000, minTxRate: 10 }, {}, limited).mtu).toBe(1500);
    expect(errorOf(() => loadNetConf({ ...NAD, mtu: 9000 }, {}, limited)).message).toContain('mtu 9000 is above this node\'s limit 1500 (limits.maxMtu in the node file');
    expect(errorOf(() => loadNetConf({ ...NAD, maxTxRate: 5000 }, {}, limited)).code).toBe(7);
    expect(errorOf(() => loadNetConf({ ...NAD, maxTxRate: 0 }, {}, limited)).message).toContain('maxTxRate 0 is above');
  });

  it('limits hold only known non-negative integers', () => {
    expect(errorOf(() => parseNodeFile(JSON.stringify({ limits: { maxMTU: 1 } }), PATH)).message).toContain('limits: unknown key "maxMTU"');
    expect(errorOf(() => parseNodeFile(JSON.stringify({ limits: { maxMtu: -1 } }), PATH)).message).toContain('limits.maxMtu must be');
  });
});
