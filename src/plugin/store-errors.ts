import { CniError, ErrorCode } from '../cni/errors';
import type { StoreError, StoreErrorKind } from '../store/errors';

/** The CNI code of each state store error kind (docs/operations.md "Error codes"). */
export const STORE_ERROR_CODES: { readonly [K in StoreErrorKind]: number } = {
  io: ErrorCode.IoFailure,
  'untrusted-dir': ErrorCode.InvalidNetworkConfig,
  'invalid-record': ErrorCode.IoFailure,
  'record-rejected': ErrorCode.IoFailure,
  'record-too-large': ErrorCode.InvalidNetworkConfig,
};

/** The CNI error of a store error: its kind's code (999, internal, for a kind this plugin does not know) and message. */
export function storeErrorToCni(err: StoreError): CniError {
  const code = Object.hasOwn(STORE_ERROR_CODES, err.kind) ? STORE_ERROR_CODES[err.kind] : ErrorCode.Internal;
  return new CniError(code, err.message, err.details);
}
