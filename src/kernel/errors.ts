import { LayerError } from '../util/layer-error';
/**
 * What went wrong on the host, in kernel terms. plugin/layer-errors.ts maps these to CNI codes; kernel/ knows
 * nothing of CNI.
 */
export type KernelErrorKind = 'not-found' | 'exists' | 'busy' | 'permission' | 'timeout' | 'io' | 'invalid';

export class KernelError extends LayerError<KernelErrorKind> {
  constructor(kind: KernelErrorKind, msg: string, details = '') {
    super(kind, msg, details);
    this.name = 'KernelError';
  }
}

/** An SR-IOV device that sysfs does not describe as configured (no PF, no VFs, not a VF, no netdev). */
export class VfLookupError extends KernelError {
  constructor(msg: string) {
    super('not-found', msg);
    this.name = 'VfLookupError';
  }
}

/** The kind of failure a command's stderr reports (iproute2, nsenter, tee: all print strerror or RTNETLINK text). */
export function kindOfStderr(stderr: string): KernelErrorKind {
  if (/: timed out after \d+ ms/.test(stderr)) return 'timeout';
  if (/File exists/.test(stderr)) return 'exists';
  if (/does not exist|Cannot find device|No such device|No such file or directory/.test(stderr)) return 'not-found';
  if (/Device or resource busy/.test(stderr)) return 'busy';
  if (/Operation not permitted|Permission denied/.test(stderr)) return 'permission';
  if (/Invalid argument|Numerical result out of range|Error: (argument|either|invalid)/i.test(stderr)) return 'invalid';
  return 'io';
}
