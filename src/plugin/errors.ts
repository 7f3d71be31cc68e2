import { CniError, ErrorCode } from '../cni/errors';
import { KernelError, VfLookupError } from '../kernel/errors';

/**
 * The one place where what lower layers throw becomes a CNI error code. Lower layers speak their own terms
 * (kernel/: KernelError with a kind); a CniError passes through unchanged, anything unknown is left to
 * toErrorJson.
 */
export function toCniError(err: unknown): unknown {
  if (err instanceof CniError) return err;
  if (err instanceof KernelError) return kernelToCni(err);
  // dpu/ and store/ errors: their mapping goes here (i13-typed-errors).
  return err;
}

function kernelToCni(err: KernelError): CniError {
  // sysfs does not describe the VF or PF the config names: the operator has to fix pf/deviceID/sysfsRoot or SR-IOV.
  if (err instanceof VfLookupError) return new CniError(ErrorCode.VfNotFound, err.message, err.details);
  // ip, nsenter and sysctl failures keep code 5 whatever their kind: the message says what failed and why.
  return new CniError(ErrorCode.IoFailure, err.message, err.details);
}

/** Runs a command handler and maps whatever it throws. */
export async function mappingErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toCniError(err);
  }
}
