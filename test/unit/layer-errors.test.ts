import { CniError, toErrorJson } from '../../src/cni/errors';
import type { DpuClient } from '../../src/dpu/api';
import { DpuError, type DpuErrorKind } from '../../src/dpu/errors';
import { DPU_ERROR_CODES, dpuErrorToCni, isTransientDpuError, withCniErrors } from '../../src/plugin/dpu-errors';
import { layerErrorToCni, withCniErrorsFrom } from '../../src/plugin/layer-errors';
import { STORE_ERROR_CODES, storeErrorToCni } from '../../src/plugin/store-errors';
import { StoreError, type StoreErrorKind } from '../../src/store/errors';
import { InvalidRecordError } from '../../src/store/records';
import { LayerError } from '../../src/util/layer-error';

// The codes docs/operations.md "Error codes" promises: written out here, so a change to the tables is a change to this test.
const DPU_CODES: Array<[DpuErrorKind, number]> = [
  ['unreachable', 11],
  ['timeout', 11],
  ['channel-lost', 11],
  ['ovn-nb-unreachable', 11],
  ['port-not-up', 11],
  ['auth', 110],
  ['host-key', 111],
  ['command-failed', 112],
  ['bad-output', 112],
  ['output-too-large', 112],
  ['not-set-up', 112],
  ['name-conflict', 112],
  ['port-owned', 102],
  ['offload-required-missing', 113],
  ['check-mismatch', 120],
  ['unavailable', 50],
  ['bad-config', 7],
  ['vtep-not-found', 7],
  ['mtu-too-small', 7],
];

const STORE_CODES: Array<[StoreErrorKind, number]> = [
  ['io', 5],
  ['untrusted-dir', 7],
  ['invalid-record', 5],
  ['record-rejected', 5],
  ['record-too-large', 7],
];

class OtherLayerError extends LayerError<'odd'> {}

describe('DPU errors', () => {
  it('every kind has a code, and only these', () => {
    expect(Object.keys(DPU_ERROR_CODES).sort()).toEqual(DPU_CODES.map(([k]) => k).sort());
  });

  it.each(DPU_CODES)('%s is code %d with the message and details unchanged', (kind, code) => {
    const err = dpuErrorToCni(new DpuError(kind, `DPU root@192.0.2.10:22: ${kind}`, 'd'));
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code, message: `DPU root@192.0.2.10:22: ${kind}`, details: 'd' });
    expect(layerErrorToCni(new DpuError(kind, 'm'))).toMatchObject({ code, message: 'm' });
    expect(isTransientDpuError(new DpuError(kind, 'm'))).toBe(code === 11);
  });

  it('a kind this plugin does not know (a newer layer) is 999 with its message', () => {
    expect(dpuErrorToCni(new DpuError('brand-new' as DpuErrorKind, 'what happened'))).toMatchObject({ code: 999, message: 'what happened' });
  });

  it('a client seen through withCniErrors rejects with the mapped CniError; CniErrors and other errors pass unchanged', async () => {
    const fail = (err: unknown) => () => Promise.reject(err);
    const inner = { target: 'root@192.0.2.10:22', plug: fail(new DpuError('host-key', 'pin mismatch')), status: fail(new CniError(50, 'from the daemon')), check: fail(new TypeError('bug')), close: () => undefined } as unknown as DpuClient;
    const client = withCniErrors(inner);
    expect(client.target).toBe('root@192.0.2.10:22');
    expect(client.warm).toBeUndefined();
    await expect(client.plug({} as never)).rejects.toMatchObject({ constructor: CniError, code: 111, message: 'pin mismatch' });
    await expect(client.status()).rejects.toMatchObject({ code: 50, message: 'from the daemon' });
    await expect(client.check({} as never)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('store errors', () => {
  it('every kind has a code, and only these', () => {
    expect(Object.keys(STORE_ERROR_CODES).sort()).toEqual(STORE_CODES.map(([k]) => k).sort());
  });

  it.each(STORE_CODES)('%s is code %d with the message unchanged', (kind, code) => {
    expect(storeErrorToCni(new StoreError(kind, `stateDir: ${kind}`))).toMatchObject({ code, message: `stateDir: ${kind}` });
    expect(layerErrorToCni(new StoreError(kind, 'm'))).toMatchObject({ code, message: 'm' });
  });

  it('an InvalidRecordError is a StoreError of kind invalid-record: code 5 naming the file', () => {
    const err = new InvalidRecordError('/var/lib/x/att', 'not JSON');
    expect(err).toBeInstanceOf(StoreError);
    expect(layerErrorToCni(err)).toMatchObject({ code: 5, message: expect.stringContaining('/var/lib/x/att') });
  });
});

describe('unmapped errors', () => {
  it('a typed error of another layer becomes 999 (internal, as libcni maps unknown errors) with its message', () => {
    expect(layerErrorToCni(new OtherLayerError('odd', 'odd thing', 'more'))).toMatchObject({ constructor: CniError, code: 999, message: 'odd thing', details: 'more' });
  });

  it('a typed error that reaches skel unmapped is still a CNI error object: 999 and its message, no stack', () => {
    expect(toErrorJson(new DpuError('timeout', 'slow DPU'), '1.1.0')).toEqual({ cniVersion: '1.1.0', code: 999, msg: 'slow DPU' });
  });

  it('CniErrors and plain exceptions pass unchanged (skel makes the latter code 5)', () => {
    const cni = new CniError(7, 'bad');
    const plain = new TypeError('boom');
    expect(layerErrorToCni(cni)).toBe(cni);
    expect(layerErrorToCni(plain)).toBe(plain);
    expect(toErrorJson(plain, '1.1.0')).toEqual({ cniVersion: '1.1.0', code: 5, msg: 'boom' });
  });

  it('withCniErrorsFrom maps what a handler throws, synchronously or not', async () => {
    await expect(
      withCniErrorsFrom(() => {
        throw new StoreError('untrusted-dir', 'invalid network config: stateDir: ...');
      }),
    ).rejects.toMatchObject({ constructor: CniError, code: 7 });
    await expect(withCniErrorsFrom(() => Promise.reject(new DpuError('auth', 'refused')))).rejects.toMatchObject({ constructor: CniError, code: 110, message: 'refused' });
    await expect(withCniErrorsFrom(async () => 'ok')).resolves.toBe('ok');
  });
});
