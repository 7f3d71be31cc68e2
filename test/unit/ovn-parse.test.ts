import { isConnected, lspRow, nbResultLines, parseChassis, parseNbResult, selectRows, untolerated } from '../../src/dpu/ovn/parse';

describe('ovsdb-client results (it exits 0 even when an op fails)', () => {
  it('a successful ENSURE and ADD_LSP have no errors', () => {
    expect(parseNbResult('[{},{"uuid":["uuid","d9c0a7e0-0dfb-4f1e-8a5c-000000000064"]}]').errors).toEqual([]);
    expect(parseNbResult('[{},{"uuid":["uuid","0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60"]},{"count":1}]').errors).toEqual([]);
  });

  it('"duplicate uuid" on ENSURE is the switch existing: tolerated there, and only there', () => {
    const r = parseNbResult('[{},{"details":"This UUID would duplicate a UUID already present within the table or deleted within the same transaction.","error":"duplicate uuid","syntax":"\\"d9c0a7e0-0dfb-4f1e-8a5c-000000000064\\""}]');
    expect(r.errors).toEqual([{ index: 1, error: 'duplicate uuid', details: expect.stringContaining('would duplicate') }]);
    expect(untolerated(r, ['duplicate uuid'])).toBeUndefined();
    expect(untolerated(r, [])?.error).toBe('duplicate uuid');
  });

  it('a timed-out wait (not ours, or gone) is op 0 failing with the rest not run', () => {
    const r = parseNbResult('[{"details":"\\"where\\" clause test failed","error":"timed out"},null]');
    expect(r.errors).toEqual([{ index: 0, error: 'timed out', details: '"where" clause test failed' }]);
    expect(r.results[1]).toBeNull();
    expect(untolerated(r, ['timed out'])).toBeUndefined();
  });

  it('a commit-time error comes after the last op', () => {
    const r = parseNbResult('[{},{"uuid":["uuid","0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60"]},{"count":1},{"details":"Transaction causes multiple rows in \\"Logical_Switch_Port\\" table to have identical values","error":"constraint violation"}]');
    expect(r.errors.map((e) => [e.index, e.error])).toEqual([[3, 'constraint violation']]);
  });

  it('a string that looks like an error inside a value is not one', () => {
    const r = parseNbResult('[{"rows":[{"name":"x\\",\\"error\\":\\"timed out","external_ids":["map",[["error","boom"]]]}]}]');
    expect(r.errors).toEqual([]);
  });

  it('refuses what is not a result', () => {
    for (const bad of ['', 'not json', '{"error":"x"}', '[1]']) expect(() => parseNbResult(bad)).toThrow(/unexpected ovsdb-client output/);
  });

  it('select rows and logical port rows', () => {
    const line = '[{"rows":[{"_uuid":["uuid","0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60"],"addresses":"02:aa:00:00:00:01 10.0.0.2","external_ids":["map",[["dpu-overlay.container","c1"]]],"name":"p","options":["map",[["requested-chassis","a"]]],"port_security":["set",[]],"up":true}]}]';
    const [row] = selectRows(parseNbResult(line), 0);
    expect(lspRow(row ?? {})).toEqual({ uuid: '0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60', name: 'p', addresses: ['02:aa:00:00:00:01 10.0.0.2'], portSecurity: [], options: { 'requested-chassis': 'a' }, up: true, ids: { 'dpu-overlay.container': 'c1' } });
    expect(() => selectRows(parseNbResult('[{}]'), 0)).toThrow(/no rows/);
    expect(nbResultLines('[{}]\n0f6a1a55-3f2d-4c43-9d8e-1b2c3d4e5f60\n{"data":[],"headings":[]}\n[{"count":1}]\n')).toEqual(['[{}]', '[{"count":1}]']);
  });
});

describe('the chassis settings and connection-status', () => {
  it('reads system-id, the first encap IP and type; an unset key is an empty line', () => {
    expect(parseChassis('dpuo-a\n"198.51.100.2"\ngeneve\n', 't')).toEqual({ systemId: 'dpuo-a', encapIp: '198.51.100.2', encapType: 'geneve' });
    expect(parseChassis('"dpuo-a"\n"198.51.100.2,198.51.100.3"\n"vxlan,geneve"\n', 't')).toEqual({ systemId: 'dpuo-a', encapIp: '198.51.100.2', encapType: 'vxlan' });
    expect(parseChassis('dpuo-a\n\n\n', 't')).toEqual({ systemId: 'dpuo-a' });
  });

  it('no usable system-id is code 112 saying how to set the DPU up', () => {
    expect(() => parseChassis('\n\n\n', 't')).toThrow(/system-id is not set.*install.sh --dpu --ovn/);
    expect(() => parseChassis('"a\\"b"\n\n\n', 't')).toThrow(/not a name/);
  });

  it('connection-status: only "connected" is connected', () => {
    expect(isConnected('connected\n')).toBe(true);
    expect(isConnected('not connected\n')).toBe(false);
    expect(isConnected('')).toBe(false);
  });
});
