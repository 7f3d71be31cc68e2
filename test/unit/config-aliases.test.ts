import { applyConventions, SRIOV_CNI_ALIASES, unknownFieldsWarning } from '../../src/config/aliases';
import { loadNetConf } from '../../src/config/load';
import { errorOf } from './helpers/errors';

const dpu = { host: 'dpu1', privateKeyFile: '/k', knownHostsFile: '/kh', localVtep: '192.0.2.1' };
const base = { cniVersion: '1.1.0', name: 'ovl', type: 'dpu-overlay', vni: 7, pf: 'ens1f0' };

describe("sriov-cni's spellings", () => {
  it.each(Object.entries(SRIOV_CNI_ALIASES))('%s is read as %s', (alias, canonical) => {
    const value = alias === 'link_state' ? 'disable' : 100;
    const conf = loadNetConf({ ...base, [alias]: value }, {}) as unknown as Record<string, unknown>;
    expect(conf[canonical]).toBe(value);
    expect(conf.unknownFields).toEqual([]);
  });

  it('both spellings with the same value are fine', () => {
    expect(loadNetConf({ ...base, max_tx_rate: 10, maxTxRate: 10 }, {}).maxTxRate).toBe(10);
  });

  it('both spellings with different values are code 7 naming both', () => {
    const err = errorOf(() => loadNetConf({ ...base, max_tx_rate: 10, maxTxRate: 20 }, {}));
    expect(err.code).toBe(7);
    expect(err.message).toMatch(/max_tx_rate: sriov-cni's spelling of maxTxRate, which is also set to another value/);
  });

  it('an alias is validated with the canonical rules', () => {
    const err = errorOf(() => loadNetConf({ ...base, link_state: 'sideways' }, {}));
    expect([err.code, err.message]).toEqual([7, expect.stringContaining('linkState: ')]);
  });

  it('min_tx_rate above max_tx_rate is refused as the canonical names are', () => {
    expect(errorOf(() => loadNetConf({ ...base, min_tx_rate: 200, max_tx_rate: 100 }, {})).code).toBe(7);
  });

  it('does not change the caller\'s object', () => {
    const raw = { ...base, max_tx_rate: 5 };
    applyConventions(raw);
    expect(raw).toEqual({ ...base, max_tx_rate: 5 });
  });
});

describe('unknown fields', () => {
  it('are collected at the top level, in dpu and in each dpus entry, and dropped from the result', () => {
    const conf = loadNetConf({ ...base, maxTxrate: 5, vlanProto: '802.1ad', dpu: { ...dpu, knownHostFile: '/x' }, dpus: { ens1f0: { ...dpu, hwoffload: 'require' } } }, {});
    expect(conf.unknownFields).toEqual(['maxTxrate', 'vlanProto', 'dpu.knownHostFile', 'dpus.ens1f0.hwoffload']);
    expect(conf.maxTxRate).toBeUndefined();
  });

  it('the spec\'s and the runtimes\' own fields are not reported', () => {
    const conf = loadNetConf({ ...base, capabilities: { mac: true }, dns: {}, 'cni.dev/valid-attachments': [], runtimeConfig: {}, args: {}, prevResult: {} }, {});
    expect(conf.unknownFields).toEqual([]);
  });

  it('make one warning line, bounded however many there are', () => {
    expect(unknownFieldsWarning([])).toBeUndefined();
    expect(unknownFieldsWarning(['max_txrate'])).toBe('ignored unknown config field "max_txrate": check the spelling (see docs/configuration.md)');
    const many = Array.from({ length: 500 }, (_, i) => `f${i}${'x'.repeat(1000)}\n`);
    const line = unknownFieldsWarning(many) as string;
    expect(line).not.toContain('\n');
    expect(line).toMatch(/and 480 more/);
    expect(line.length).toBeLessThan(2500);
  });
});
