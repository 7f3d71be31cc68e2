import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { loadNetConf, requireVfSource } from '../../src/config/load';
import { mergeNodeFile, NODE_FILE_MAX_BYTES, nodeConfigPath, readNodeFile } from '../../src/config/node-file';
import { DEFAULTS } from '../../src/config/schema';
import { splitByOwner } from '../../src/config/ownership';
import { Bed } from './helpers/bed';
import { errorOf } from './helpers/errors';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(() => removeTmpDirs());

const ME = process.getuid?.() ?? 0;
const asRoot = ME === 0 ? it : it.skip;

/** What a cluster-wide network config (one Multus NAD) sets: nothing host-specific. */
const NAD = { cniVersion: '1.0.0', name: 'dpu-vni100', type: 'dpu-overlay', vni: 100, ipam: { type: 'host-local' }, dpu: { hwOffload: 'require' } };
const NODE_DPU = { host: '192.0.2.10', privateKeyFile: '/etc/cni/dpu-overlay/id_ed25519', knownHostsFile: '/etc/cni/dpu-overlay/known_hosts', localVtep: '198.51.100.1', remoteVteps: ['198.51.100.2'] };
const NODE = { pf: 'ens1f0np0', sysfsRoot: '/host/sys', stateDir: '/var/lib/x', logFile: '/var/log/x.log', logLevel: 'debug', dpu: NODE_DPU };

function nodeFile(values: Record<string, unknown> | undefined, path = '/etc/cni/dpu-overlay/node.json') {
  return { path, ...(values ? { values } : {}) };
}

describe('merge: the network config wins field by field, dpu key by key, dpus entry by entry', () => {
  it('a cluster-wide NAD with a node file: the node supplies the host values, the NAD its own', () => {
    const c = loadNetConf(NAD, {}, nodeFile(NODE));
    expect(c).toMatchObject({ vni: 100, pf: 'ens1f0np0', sysfsRoot: '/host/sys', stateDir: '/var/lib/x', logFile: '/var/log/x.log', logLevel: 'debug', ipam: { type: 'host-local' } });
    expect(c.dpu).toMatchObject({ ...NODE_DPU, hwOffload: 'require', port: 22 });
  });

  it('a node field the node file delegates: the network config\'s value wins', () => {
    const net = { ...NAD, pf: 'ens2f0', logLevel: 'warn' };
    const c = loadNetConf(net, {}, nodeFile({ ...NODE, delegate: ['pf', 'logLevel'] }));
    expect([c.pf, c.logLevel, c.stateDir]).toEqual(['ens2f0', 'warn', '/var/lib/x']);
  });

  it('dpu key by key: an array is one value (remoteVteps replaced, not joined)', () => {
    const merged = mergeNodeFile({ dpu: { remoteVteps: ['203.0.113.9'], port: 2222 } }, { dpu: NODE_DPU });
    expect(merged.dpu).toEqual({ ...NODE_DPU, remoteVteps: ['203.0.113.9'], port: 2222 });
  });

  it('dpus entry by entry, each entry key by key over the node file\'s', () => {
    const node = { dpus: { p0: { ...NODE_DPU }, p1: { ...NODE_DPU, host: '192.0.2.11' } } };
    const merged = mergeNodeFile({ dpus: { p1: { hwOffload: 'ignore' }, p2: { host: 'x' } } }, node);
    expect(merged.dpus).toEqual({ p0: NODE_DPU, p1: { ...NODE_DPU, host: '192.0.2.11', hwOffload: 'ignore' }, p2: { host: 'x' } });
    const c = loadNetConf({ ...NAD, dpu: undefined, dpus: { p1: { hwOffload: 'ignore' } } }, {}, nodeFile(node));
    expect(c.dpus?.p1).toMatchObject({ host: '192.0.2.11', hwOffload: 'ignore', port: 22 });
  });

  it('a NAD dpu without host is settings for this host\'s DPUs: over dpu and each dpus entry; no DPU of its own beside dpus', () => {
    const node = { pf: ['ens1f0np0', 'ens1f1np1'], dpus: { ens1f0np0: NODE_DPU, ens1f1np1: { ...NODE_DPU, host: '192.0.2.11', localVtep: '198.51.100.9' } } };
    const c = loadNetConf(NAD, {}, nodeFile(node));
    expect(c.dpu).toBeUndefined();
    expect(c.dpus?.ens1f0np0).toMatchObject({ host: '192.0.2.10', hwOffload: 'require' });
    expect(c.dpus?.ens1f1np1).toMatchObject({ host: '192.0.2.11', localVtep: '198.51.100.9', hwOffload: 'require' });
    // with a dpu in the node file too, that one gets the settings as well
    const both = loadNetConf(NAD, {}, nodeFile({ ...node, dpu: NODE_DPU }));
    expect(both.dpu).toMatchObject({ host: '192.0.2.10', hwOffload: 'require' });
    // a network dpu with a host is a DPU, not settings: the node file's dpus entries are left as they are
    const full = mergeNodeFile({ dpu: { ...NODE_DPU, host: '192.0.2.99' } }, node);
    expect((full.dpus as Record<string, unknown>).ens1f1np1).toEqual(node.dpus.ens1f1np1);
    expect(full.dpu).toMatchObject({ host: '192.0.2.99' });
  });

  it('keys the node file does not own, and a missing file, change nothing', () => {
    expect(mergeNodeFile(NAD, undefined)).toBe(NAD);
    expect(mergeNodeFile({ vni: 1 }, {})).toEqual({ vni: 1 });
  });

  it('a network value of the wrong shape is left for validation to refuse, never merged into', () => {
    const err = errorOf(() => loadNetConf({ ...NAD, dpu: 'x' }, {}, nodeFile(NODE)));
    expect(err.code).toBe(7);
    expect(err.message).toContain('dpu: ');
  });

  it('a PF named __proto__ is only a name: merged as an own key, refused by validation (zod alone drops it), no prototype touched', () => {
    const merged = mergeNodeFile(JSON.parse('{"dpus":{"__proto__":{"host":"x"}}}') as Record<string, unknown>, { dpus: {} });
    expect(Object.getPrototypeOf(merged.dpus)).toBe(Object.prototype);
    expect(Object.keys(merged.dpus as object)).toEqual(['__proto__']);
    const err = errorOf(() => loadNetConf({ ...NAD, dpu: undefined }, {}, nodeFile(merged)));
    expect([err.code, err.message]).toEqual([7, 'invalid network config: dpus.__proto__: key must be a PF network interface name']);
    expect(({} as Record<string, unknown>).host).toBeUndefined();
  });

  it('the node file\'s values are validated like the network config\'s, naming the field', () => {
    const err = errorOf(() => loadNetConf(NAD, {}, nodeFile({ ...NODE, dpu: { ...NODE_DPU, localVtep: 'nope' } })));
    expect(err.code).toBe(7);
    expect(err.message).toContain('dpu.localVtep: ');
  });

  it('the daemon gets the merged dpu config: the DPU client of a command is made with it', async () => {
    const nets: TestNetns[] = [await createNetns()];
    try {
      const b = new Bed(nets.map((n) => n.path));
      const { network, node } = splitByOwner(b.config({ dpu: { ...NODE_DPU, localVtep: '192.0.2.1', daemonSocket: '/run/x/dpu.sock' } }));
      writeFileSync(b.nodeConfig, JSON.stringify(node), { mode: 0o644 });
      const env = { DPU_OVERLAY_NODE_CONFIG: b.nodeConfig };
      const out = await b.run('ADD', { env, config: { ...network, dpu: { hwOffload: 'ignore' } } });
      expect(out.exitCode).toBe(0);
      expect(b.dpuConfigs[0]).toMatchObject({ ...NODE_DPU, localVtep: '192.0.2.1', hwOffload: 'ignore', daemonSocket: '/run/x/dpu.sock' });
      expect((await b.run('DEL', { env, config: { ...network, dpu: { hwOffload: 'ignore' } } })).exitCode).toBe(0);
      expect(b.dpuConfigs[1]?.host).toBe(NODE_DPU.host);
    } finally {
      for (const n of nets) n.close();
    }
  });
});

describe('a required value with no source: code 7 naming the field and both places', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['dpu.host', { ...NODE_DPU, host: undefined }, 'dpu.host: '],
    ['dpu.privateKeyFile', { ...NODE_DPU, privateKeyFile: undefined }, 'dpu.privateKeyFile: '],
    ['dpu.localVtep', { ...NODE_DPU, localVtep: undefined }, 'dpu.localVtep: '],
    ['knownHostsFile or hostKeyFingerprint', { ...NODE_DPU, knownHostsFile: undefined }, 'dpu.knownHostsFile: set knownHostsFile or hostKeyFingerprint'],
  ])('%s', (_name, dpu, field) => {
    const err = errorOf(() => loadNetConf(NAD, {}, nodeFile({ dpu: JSON.parse(JSON.stringify(dpu)) as Record<string, unknown> }, '/etc/n.json')));
    expect(err.code).toBe(7);
    expect(err.message).toContain(field);
    expect(err.message).toMatch(/in the network config (n?or) in the node file \/etc\/n\.json[;)]/);
    expect(err.message).not.toContain('no such file');
  });

  it('with no node file at all, says so', () => {
    const err = errorOf(() => loadNetConf(NAD, {}, nodeFile(undefined, '/etc/cni/dpu-overlay/node.json')));
    expect(err.message).toMatch(/dpu\.host: not set in the network config nor in the node file \/etc\/cni\/dpu-overlay\/node\.json \(there is no such file\); set it in one of them/);
  });

  it('pf (ADD without a deviceID) names the node file too', () => {
    const err = errorOf(() => requireVfSource(loadNetConf(NAD, {}, nodeFile({ dpu: NODE_DPU }, '/etc/n.json'))));
    expect(err.code).toBe(7);
    expect(err.message).toMatch(/^invalid network config: pf: .*node file \/etc\/n\.json/);
  });

  it('a wrong value is not called missing', () => {
    const err = errorOf(() => loadNetConf(NAD, {}, nodeFile({ dpu: { ...NODE_DPU, host: '-bad' } })));
    expect(err.message).toContain('dpu.host: ');
    expect(err.message).not.toContain('not set');
  });

  it('no dpu anywhere is still host-only mode', () => {
    expect(loadNetConf({ ...NAD, dpu: undefined }, {}, nodeFile({ pf: 'ens1f0' })).dpu).toBeUndefined();
  });
});

describe('the node file\'s path: DPU_OVERLAY_NODE_CONFIG, else the fallback (the daemon\'s --node-config), else the default', () => {
  it('defaults to /etc/cni/dpu-overlay/node.json', () => {
    expect(DEFAULTS.nodeConfig).toBe('/etc/cni/dpu-overlay/node.json');
    expect(nodeConfigPath({})).toBe(DEFAULTS.nodeConfig);
    expect(nodeConfigPath({ DPU_OVERLAY_NODE_CONFIG: '' })).toBe(DEFAULTS.nodeConfig);
    expect(loadNetConf({ ...NAD, dpu: undefined }, {}).nodeConfig).toBe(DEFAULTS.nodeConfig);
  });

  it('the environment wins over the fallback', () => {
    expect(nodeConfigPath({}, '/etc/d.json')).toBe('/etc/d.json');
    expect(nodeConfigPath({ DPU_OVERLAY_NODE_CONFIG: '/etc/e.json' }, '/etc/d.json')).toBe('/etc/e.json');
  });

  it('a relative path in the environment is refused with code 4', () => {
    const err = errorOf(() => nodeConfigPath({ DPU_OVERLAY_NODE_CONFIG: 'node.json' }));
    expect(err.code).toBe(4);
    expect(err.message).toContain('DPU_OVERLAY_NODE_CONFIG must be an absolute path');
  });
});

describe('readNodeFile: a root-owned regular file, not writable by group or others', () => {
  function dir(): string {
    const d = tmpDir('dpuo-node-');
    chmodSync(d, 0o755);
    return d;
  }
  function write(text: string, mode = 0o644): string {
    const path = join(dir(), 'node.json');
    writeFileSync(path, text, { mode });
    chmodSync(path, mode);
    return path;
  }
  const read = (path: string) => readNodeFile(path, ME);

  it('reads the object', () => {
    const path = write(JSON.stringify(NODE));
    expect(read(path)).toEqual({ path, values: NODE });
  });

  it('a missing file, or a missing directory, is no node file', () => {
    const d = dir();
    expect(read(join(d, 'node.json'))).toEqual({ path: join(d, 'node.json') });
    expect(read(join(d, 'nope', 'node.json'))).toEqual({ path: join(d, 'nope', 'node.json') });
  });

  it.each<[string, string, RegExp]>([
    ['an unknown key (a typo)', JSON.stringify({ ...NODE, dpuu: {} }), /unknown key "dpuu"; it may hold only pf, pfIndex, sysfsRoot, stateDir, logFile, logLevel, spoofchk, trust, dpus, dpu, delegate, limits/],
    ['a network-wide key', JSON.stringify({ vni: 100 }), /unknown key "vni"/],
    ['a misspelt dpu key (its default would be used silently)', JSON.stringify({ dpu: { timeoutMS: 1 } }), /dpu: unknown key "timeoutMS"; check its spelling/],
    ['a misspelt key in a dpus entry', JSON.stringify({ dpus: { p0: { knownHostFile: '/k' } } }), /dpus\.p0: unknown key "knownHostFile"/],
    ['not JSON', '{"pf": ', /is not valid JSON/],
    ['an array', '[]', /must hold one JSON object/],
    ['dpu not an object', JSON.stringify({ dpu: 'x' }), /dpu must be an object/],
    ['dpus entry not an object', JSON.stringify({ dpus: { p0: 1 } }), /dpus\.p0 must be an object/],
    ['deep nesting', `{"pf":${'['.repeat(100)}${']'.repeat(100)}}`, /deeper than 64/],
  ])('%s: code 7 naming the file', (_n, text, msg) => {
    const path = write(text);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`node file ${path}`);
    expect(err.message).toMatch(msg);
  });

  it.each([[0o664], [0o646], [0o666]])('mode %o: refused, saying chmod go-w', (mode) => {
    const path = write(JSON.stringify(NODE), mode);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`is writable by group or others (mode ${mode.toString(8)}); chmod go-w ${path}`);
  });

  it('mode 0600 and 0640 are fine', () => {
    expect(read(write('{}', 0o600)).values).toEqual({});
    expect(read(write('{}', 0o640)).values).toEqual({});
  });

  asRoot('a file owned by another user: refused, saying chown', () => {
    const path = write('{}');
    chownSync(path, 4321, 0);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`is owned by uid 4321, not 0; chown root ${path}`);
  });

  it('a directory others can write (they could swap the file): refused', () => {
    const path = write('{}');
    chmodSync(join(path, '..'), 0o777);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toMatch(/its directory .* is writable by group or others .*chmod go-w/);
  });

  it('a symbolic link is never followed', () => {
    const target = write(JSON.stringify(NODE));
    const link = join(dir(), 'node.json');
    symlinkSync(target, link);
    const err = errorOf(() => read(link));
    expect(err.code).toBe(7);
    expect(err.message).toContain('is a symbolic link');
  });

  it.each([['a directory', (p: string) => mkdirSync(p)], ['a FIFO', (p: string) => execFileSync('mkfifo', ['-m', '0644', p])]])('%s is not a regular file', (_n, make) => {
    const path = join(dir(), 'node.json');
    make(path);
    chmodSync(path, 0o755);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toContain('is not a regular file');
  });

  it('an empty file, or a procfs file (size 0), is refused unread', () => {
    const err = errorOf(() => read(write('')));
    expect(err.code).toBe(7);
    expect(err.message).toContain('is empty');
    if (ME === 0) expect(errorOf(() => readNodeFile('/proc/sys/kernel/hostname')).message).toContain('is empty');
  });

  it('a file that is not JSON is not quoted in the error (nodeConfig may name any root-owned file)', () => {
    const path = write('root:$y$j9T$secrethash:19000:0:99999:7:::\n');
    const err = errorOf(() => read(path));
    expect(err.message).toMatch(/is not valid JSON( \(at byte \d+\))?$/);
    expect(err.message).not.toContain('secret');
  });

  it(`larger than ${NODE_FILE_MAX_BYTES} bytes: refused`, () => {
    const path = write(`{"pf":"${'x'.repeat(NODE_FILE_MAX_BYTES)}"}`);
    const err = errorOf(() => read(path));
    expect(err.code).toBe(7);
    expect(err.message).toContain('is larger than');
  });
});
