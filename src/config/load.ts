import type { z } from 'zod';
import { CniError, ErrorCode } from '../cni/errors';
import { type DpuConfig, MAC_ADDRESS, NetConfSchema, type NetConfInput, pfList } from './schema';

/** The validated config with the values runtimes may override already resolved. */
export interface NetConf extends NetConfInput {
  /** VF to use: runtimeConfig.deviceID, then deviceID, then pciBusID (Multus). */
  resolvedDeviceId?: string;
  /** MAC to set: CNI_ARGS MAC=, then runtimeConfig.mac, then args.cni.mac, then mac. */
  resolvedMac?: string;
  dpu?: DpuConfig;
  dpus?: Record<string, DpuConfig>;
  /** pf as a list (empty without one): ADD without a deviceID takes the first free VF of the first PF that has one. */
  pfs: string[];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${formatPath(i.path) || '(root)'}: ${i.code === 'invalid_key' ? `key ${i.issues.map((k) => k.message).join(', ')}` : i.message}`)
    .join('; ');
}

/** Validates the network config; bad types or values are code 7 naming the JSON path. */
export function loadNetConf(raw: Record<string, unknown>, cniArgs: Record<string, string>): NetConf {
  const parsed = NetConfSchema.safeParse(raw);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${formatIssues(parsed.error)}`);
  }
  const conf: NetConf = { ...parsed.data, pfs: pfList(parsed.data.pf) };
  conf.resolvedDeviceId = (conf.runtimeConfig?.deviceID ?? conf.deviceID ?? conf.pciBusID)?.toLowerCase();
  const argsMac = cniArgs.MAC;
  if (argsMac !== undefined && !MAC_ADDRESS.test(argsMac)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS MAC=${JSON.stringify(argsMac.slice(0, 40))} is not a MAC address`);
  }
  conf.resolvedMac = (argsMac ?? conf.runtimeConfig?.mac ?? conf.args?.cni?.mac ?? conf.mac)?.toLowerCase();
  return conf;
}

/** For commands that need a VF source (ADD): pf or a deviceID must be given. */
export function requireVfSource(conf: NetConf): void {
  if (!conf.resolvedDeviceId && conf.pfs.length === 0) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'invalid network config: pf: set "pf" (pick the first free VF) or "deviceID" / runtimeConfig.deviceID (a specific VF)');
  }
}
