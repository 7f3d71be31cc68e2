import { CniError, ErrorCode } from '../cni/errors';
import type { DpuClient } from '../dpu/api';
import { DpuError, type DpuErrorKind } from '../dpu/errors';

/** The CNI code of each DPU error kind (docs/operations.md "Error codes"). */
export const DPU_ERROR_CODES: { readonly [K in DpuErrorKind]: number } = {
  // Outages: the runtime retries.
  unreachable: ErrorCode.TryAgainLater,
  timeout: ErrorCode.TryAgainLater,
  'channel-lost': ErrorCode.TryAgainLater,
  'ovn-nb-unreachable': ErrorCode.TryAgainLater,
  'port-not-up': ErrorCode.TryAgainLater,
  auth: ErrorCode.DpuAuthFailure,
  'host-key': ErrorCode.DpuHostKeyMismatch,
  'command-failed': ErrorCode.DpuCommandFailed,
  'bad-output': ErrorCode.DpuCommandFailed,
  'output-too-large': ErrorCode.DpuCommandFailed,
  'not-set-up': ErrorCode.DpuCommandFailed,
  'name-conflict': ErrorCode.DpuCommandFailed,
  'port-owned': ErrorCode.VfInUse,
  'offload-required-missing': ErrorCode.HwOffloadRequired,
  'check-mismatch': ErrorCode.CheckFailed,
  unavailable: ErrorCode.PluginNotAvailable,
  'bad-config': ErrorCode.InvalidNetworkConfig,
  'vtep-not-found': ErrorCode.InvalidNetworkConfig,
  'mtu-too-small': ErrorCode.InvalidNetworkConfig,
};

/** The CNI error of a DPU error: its kind's code (999, internal, for a kind this plugin does not know), message and details. */
export function dpuErrorToCni(err: DpuError): CniError {
  const code = Object.hasOwn(DPU_ERROR_CODES, err.kind) ? DPU_ERROR_CODES[err.kind] : ErrorCode.Internal;
  return new CniError(code, err.message, err.details);
}

/** Outages worth retrying by themselves (code 11); refused keys, pins and bad settings need an operator. */
export function isTransientDpuError(err: unknown): boolean {
  return err instanceof DpuError && dpuErrorToCni(err).code === ErrorCode.TryAgainLater;
}

function mapped<T>(p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw err instanceof DpuError ? dpuErrorToCni(err) : err;
  });
}

/** The client as plugin/ sees it: every DpuError it throws arrives as the CniError it maps to. */
export function withCniErrors(client: DpuClient): DpuClient {
  return {
    get target() {
      return client.target;
    },
    get connectMs() {
      return client.connectMs;
    },
    plug: (req) => mapped(client.plug(req)),
    unplug: (req) => mapped(client.unplug(req)),
    check: (req) => mapped(client.check(req)),
    gc: (network, vni, keep) => mapped(client.gc(network, vni, keep)),
    status: () => mapped(client.status()),
    facts: (req) => mapped(client.facts(req)),
    setVfFunction: (target, values) => mapped(client.setVfFunction(target, values)),
    ...(client.warm ? { warm: () => client.warm?.() } : {}),
    close: () => client.close(),
  };
}
