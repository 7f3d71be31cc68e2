import { CniError } from '../../../src/cni/errors';
import { layerErrorToCni } from '../../../src/plugin/layer-errors';
import { DpuError } from '../../../src/dpu/errors';
import { dpuErrorToCni } from '../../../src/plugin/dpu-errors';
import { StoreError } from '../../../src/store/errors';
import { storeErrorToCni } from '../../../src/plugin/store-errors';

/** The CniError thrown by fn, or the one plugin/ maps its DpuError/StoreError to (fails the test if fn does not throw one). */
export function errorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    const mapped = layerErrorToCni(err);
    expect(mapped).toBeInstanceOf(CniError);
    return mapped as CniError;
  }
  throw new Error('expected a CniError, nothing was thrown');
}

export function codeOf(fn: () => unknown): number {
  return errorOf(fn).code;
}

/** What p rejects with, as the CniError plugin/ makes of it (a DpuError or StoreError by its kind); fails the test if p resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<CniError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection, the promise resolved');
    },
    (e: unknown) => e,
  );
  const mapped = layerErrorToCni(err);
  expect(mapped).toBeInstanceOf(CniError);
  return mapped as CniError;
}

/** dpu/ throws its own DpuError (never a CniError): the one p rejects with, as the CniError plugin/ maps it to. */
export async function dpuRejectionOf(p: Promise<unknown>): Promise<CniError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection, the promise resolved');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DpuError);
  return dpuErrorToCni(err as DpuError);
}

/** dpu/ throws its own DpuError (never a CniError): the one fn throws, as the CniError plugin/ maps it to. */
export function dpuErrorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DpuError);
    return dpuErrorToCni(err as DpuError);
  }
  throw new Error('expected a DpuError, nothing was thrown');
}

/** store/ throws its own StoreError (never a CniError): the one fn throws, as the CniError plugin/ maps it to. */
export function storeErrorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return storeErrorToCni(err as StoreError);
  }
  throw new Error('expected a StoreError, nothing was thrown');
}
