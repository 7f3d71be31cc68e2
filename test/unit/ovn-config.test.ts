import type { NetConf } from '../../src/config/load';
import { loadSplit } from './helpers/split';
import { DEFAULTS } from '../../src/config/schema';
import { errorOf } from './helpers/errors';

const dpu = { host: 'dpu1.example.net', privateKeyFile: '/etc/dpu-overlay/id_ed25519', knownHostsFile: '/etc/dpu-overlay/known_hosts' };
const base = { cniVersion: '1.1.0', name: 'ovl', type: 'dpu-overlay', vni: 5001, pf: 'ens1f0' };
const load = (d: Record<string, unknown>): NetConf => loadSplit({ ...base, dpu: { ...dpu, ...d } }, {});

describe('dpu.controlPlane and dpu.ovn', () => {
  it('defaults to the static control plane, and OVN settings have their defaults', () => {
    const c = load({ localVtep: '192.0.2.1' });
    expect(c.dpu?.controlPlane).toBe('static');
    expect(c.dpu?.ovn).toEqual({ switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 });
    expect(DEFAULTS.dpu.ovn).toEqual({ switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 });
  });

  it('ovn mode needs neither localVtep nor remoteVteps', () => {
    const c = load({ controlPlane: 'ovn', ovn: { switchPrefix: 'tenant-a.', portSecurity: false, upTimeoutMs: 2000 } });
    expect(c.dpu).toMatchObject({ controlPlane: 'ovn', ovn: { switchPrefix: 'tenant-a.', portSecurity: false, upTimeoutMs: 2000 } });
    expect(c.dpu?.localVtep).toBeUndefined();
  });

  it('static mode without localVtep is code 7 naming the field and the way out', () => {
    const err = errorOf(() => load({}));
    expect(err.code).toBe(7);
    expect(err.message).toMatch(/^invalid network config: dpu\.localVtep: must be set to the DPU's underlay IP address .*controlPlane "ovn"/);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown control plane', { controlPlane: 'evpn' }, 'dpu.controlPlane'],
    ['a switch prefix ending in a digit (vni 23 of "v1" is vni 123 of "v")', { ovn: { switchPrefix: 'v1' } }, 'dpu.ovn.switchPrefix'],
    ['a switch prefix with a quote', { ovn: { switchPrefix: 'v"' } }, 'dpu.ovn.switchPrefix'],
    ['a switch prefix starting with a digit', { ovn: { switchPrefix: '1v' } }, 'dpu.ovn.switchPrefix'],
    ['an empty switch prefix', { ovn: { switchPrefix: '' } }, 'dpu.ovn.switchPrefix'],
    ['a switch prefix of 33 characters', { ovn: { switchPrefix: `a${'b'.repeat(32)}` } }, 'dpu.ovn.switchPrefix'],
    ['upTimeoutMs below 1000', { ovn: { upTimeoutMs: 999 } }, 'dpu.ovn.upTimeoutMs'],
    ['upTimeoutMs above 600000', { ovn: { upTimeoutMs: 600001 } }, 'dpu.ovn.upTimeoutMs'],
    ['portSecurity not a boolean', { ovn: { portSecurity: 'yes' } }, 'dpu.ovn.portSecurity'],
  ])('refused: %s', (_name, d, path) => {
    const err = errorOf(() => load({ controlPlane: 'ovn', ...d }));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`${path}: `);
  });
});
