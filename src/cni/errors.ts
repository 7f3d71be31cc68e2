import { LayerError } from '../util/layer-error';

/** CNI SPEC 1.1.0 "Error" codes; plugin-specific codes start at 100 (see docs/operations.md "Error codes"). */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  // dpu-overlay specific
  NoFreeVf: 100,
  VfNotFound: 101,
  VfInUse: 102,
  IpamFailure: 103,
  DpuAuthFailure: 110,
  DpuHostKeyMismatch: 111,
  DpuCommandFailed: 112,
  HwOffloadRequired: 113,
  CheckFailed: 120,
  // SPEC 1.1.0: internal error, what libcni's skel reports for an error that is not a CNI error
  Internal: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

/**
 * The executable holds two bundles (src/entry.ts, src/main.ts), each with its own CniError class: an error that
 * crosses from one to the other goes as this plain data and is made a CniError of the receiving side again.
 */
export interface CniErrorData {
  cniError: { code: number; msg: string; details: string };
}

export function toCniErrorData(err: unknown): unknown {
  return err instanceof CniError ? ({ cniError: { code: err.code, msg: err.message, details: err.details } } satisfies CniErrorData) : err;
}

export function fromCniErrorData(err: unknown): unknown {
  const data = (err as Partial<CniErrorData> | undefined)?.cniError;
  return data && typeof data.code === 'number' && typeof data.msg === 'string' ? new CniError(data.code, data.msg, typeof data.details === 'string' ? data.details : '') : err;
}

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export function toErrorJson(err: unknown, cniVersion: string): CniErrorJson {
  if (err instanceof CniError) {
    const out: CniErrorJson = { cniVersion, code: err.code, msg: err.message };
    if (err.details) out.details = err.details;
    return out;
  }
  // A lower layer's typed error that plugin/ did not map: a bug, reported as libcni reports unknown errors.
  if (err instanceof LayerError) return { cniVersion, code: ErrorCode.Internal, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  const message = err instanceof Error ? err.message : String(err);
  return { cniVersion, code: ErrorCode.IoFailure, msg: message };
}
