import { CniError } from '../../../src/cni/errors';

/** The CniError thrown by fn (fails the test if fn does not throw one). */
export function errorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }
  throw new Error('expected a CniError, nothing was thrown');
}

export function codeOf(fn: () => unknown): number {
  return errorOf(fn).code;
}
