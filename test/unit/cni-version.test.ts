import type { CniResult } from '../../src/cni/types';
import { compareVersions, convertResult, parseResult, requireSupportedVersion, requireVersionForCommand, SUPPORTED_VERSIONS, versionInfo } from '../../src/cni/version';
import { codeOf } from './helpers/errors';


const result: CniResult = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/a' },
    { name: 'net1', mac: '02:00:00:00:00:02', mtu: 1450, sandbox: '/run/netns/a', pciID: '0000:03:00.2', socketPath: '/x' },
  ],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 5, table: 100, scope: 0 }],
  dns: { nameservers: ['10.1.0.53'], search: ['svc'] },
};

describe('version negotiation', () => {
  it('supports exactly 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0', () => {
    expect([...SUPPORTED_VERSIONS]).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    expect(versionInfo()).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });
  it.each(SUPPORTED_VERSIONS)('accepts %s', (v) => {
    expect(requireSupportedVersion(v)).toBe(v);
  });
  it.each([['0.2.0'], ['0.1.0'], ['1.2.0'], ['2.0.0'], ['1.1'], [''], [undefined], [110], [null]])('rejects %j with code 1', (v) => {
    expect(codeOf(() => requireSupportedVersion(v))).toBe(1);
  });
  it.each(['0.3.0', '0.3.1'])('CHECK with %s is code 1', (v) => {
    expect(codeOf(() => requireVersionForCommand('CHECK', v))).toBe(1);
  });
  it.each(['0.4.0', '1.0.0', '1.1.0'])('CHECK with %s is fine', (v) => {
    expect(() => requireVersionForCommand('CHECK', v)).not.toThrow();
  });
  it.each(['GC', 'STATUS'])('%s before 1.1.0 is code 1, at 1.1.0 fine', (c) => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0']) expect(codeOf(() => requireVersionForCommand(c, v))).toBe(1);
    expect(() => requireVersionForCommand(c, '1.1.0')).not.toThrow();
  });
  it.each(['ADD', 'DEL'])('%s works with every version', (c) => {
    for (const v of SUPPORTED_VERSIONS) expect(() => requireVersionForCommand(c, v)).not.toThrow();
  });
  it('compares versions numerically', () => {
    expect(compareVersions('0.10.0', '0.4.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(compareVersions('0.3.1', '0.4.0')).toBeLessThan(0);
  });
});

describe('convertResult', () => {
  it.each(['0.3.0', '0.3.1', '0.4.0'])('%s: IPs carry version "4"/"6"; interfaces lose mtu/pciID/socketPath; routes only dst/gw', (v) => {
    expect(convertResult(result, v)).toEqual({
      cniVersion: v,
      interfaces: [
        { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/a' },
        { name: 'net1', mac: '02:00:00:00:00:02', sandbox: '/run/netns/a' },
      ],
      ips: [
        { version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 1 },
        { version: '6', address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      dns: { nameservers: ['10.1.0.53'], search: ['svc'] },
    });
  });

  it('1.0.0: no IP version; interfaces and routes trimmed to 1.0.0 fields', () => {
    expect(convertResult(result, '1.0.0')).toEqual({
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/a' },
        { name: 'net1', mac: '02:00:00:00:00:02', sandbox: '/run/netns/a' },
      ],
      ips: result.ips,
      routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }],
      dns: result.dns,
    });
  });

  it('1.1.0 keeps interface mtu/pciID/socketPath and route extras', () => {
    expect(convertResult(result, '1.1.0')).toEqual(result);
  });

  it('does not modify its input', () => {
    const copy = JSON.parse(JSON.stringify(result)) as CniResult;
    convertResult(result, '0.3.1');
    expect(result).toEqual(copy);
  });

  it('omits absent sections instead of emitting empty ones', () => {
    expect(convertResult({ cniVersion: '1.1.0', interfaces: [{ name: 'net1' }] }, '0.4.0')).toEqual({ cniVersion: '0.4.0', interfaces: [{ name: 'net1' }] });
  });
});

describe('parseResult', () => {
  it('reads a 0.3.1 result into the 1.1.0 shape (drops IP version)', () => {
    expect(parseResult({ cniVersion: '0.3.1', ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1' }], routes: [{ dst: '0.0.0.0/0' }], dns: {} }, '1.1.0')).toEqual({
      cniVersion: '1.1.0',
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    });
  });
  it('uses the fallback version when the result has none', () => {
    expect(parseResult({ ips: [{ address: '10.0.0.2/24' }] }, '0.4.0').ips).toEqual([{ address: '10.0.0.2/24' }]);
  });
  it('round-trips convertResult for every version (for the fields that version has)', () => {
    for (const v of SUPPORTED_VERSIONS) {
      const back = parseResult(convertResult(result, v), v);
      expect(back.ips).toEqual(result.ips);
      expect(back.interfaces?.map((i) => i.name)).toEqual(['eth0', 'net1']);
    }
  });
  it.each([[null], [[]], ['x'], [5]])('non-object %j is code 6', (raw) => {
    expect(codeOf(() => parseResult(raw, '1.1.0'))).toBe(6);
  });
  it('an unsupported result version is code 1', () => {
    expect(codeOf(() => parseResult({ cniVersion: '0.2.0', ip4: {} }, '1.1.0'))).toBe(1);
  });
  it('ignores non-array sections', () => {
    expect(parseResult({ cniVersion: '1.0.0', ips: 'x', interfaces: {}, routes: 3 }, '1.1.0')).toEqual({ cniVersion: '1.1.0' });
  });
});
