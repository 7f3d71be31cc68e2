import { CniError, ErrorCode } from '../cni/errors';
import { DpuError } from '../dpu/errors';
import { KernelError, VfLookupError } from '../kernel/errors';
import { StoreError } from '../store/errors';
import { LayerError } from '../util/layer-error';
import { dpuErrorToCni } from './dpu-errors';
import { storeErrorToCni } from './store-errors';

/**
 * The one place where plugin/ turns the lower layers' typed errors into CNI errors: KernelError, DpuError and
 * StoreError by their kind,
 * any other typed error as 999 (internal, as libcni reports errors it does not know) with its message.
 * CniErrors and plain exceptions pass unchanged (skel makes the latter code 5).
 */
export function layerErrorToCni(err: unknown): unknown {
  if (err instanceof CniError) return err;
  if (err instanceof KernelError) return kernelErrorToCni(err);
  if (err instanceof DpuError) return dpuErrorToCni(err);
  if (err instanceof StoreError) return storeErrorToCni(err);
  if (err instanceof LayerError) return new CniError(ErrorCode.Internal, err.message, err.details);
  return err;
}

/** Runs a command handler, rethrowing what it throws as layerErrorToCni makes it. */
export async function withCniErrorsFrom<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw layerErrorToCni(err);
  }
}

function kernelErrorToCni(err: KernelError): CniError {
  // sysfs does not describe the VF or PF the config names: the operator has to fix pf/deviceID/sysfsRoot or SR-IOV.
  if (err instanceof VfLookupError) return new CniError(ErrorCode.VfNotFound, err.message, err.details);
  // ip, nsenter and sysctl failures keep code 5 whatever their kind: the message says what failed and why.
  return new CniError(ErrorCode.IoFailure, err.message, err.details);
}
