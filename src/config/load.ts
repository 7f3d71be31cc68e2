import type { z } from 'zod';
import { CniError, ErrorCode } from '../cni/errors';
import { applyConventions } from './aliases';
import { mergeNodeFile, NODE_FILE_KEYS, type NodeFile } from './node-file';
import { DEFAULTS, type DpuConfig, MAC_ADDRESS, NetConfSchema, type NetConfInput, pfList } from './schema';

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
  /** Fields the plugin ignores (aliases.ts): the caller logs them, loading stays side-effect free. */
  unknownFields: string[];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

function formatIssue(i: z.core.$ZodIssue): string {
  return `${formatPath(i.path) || '(root)'}: ${i.code === 'invalid_key' ? `key ${i.issues.map((k) => k.message).join(', ')}` : i.message}`;
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.slice(0, 5).map(formatIssue).join('; ');
}

/** zod drops a record key "__proto__" without an issue (JSON.parse makes it an own key): a PF never has that name. */
function refuseProtoKey(dpus: unknown): void {
  if (typeof dpus === 'object' && dpus !== null && Object.hasOwn(dpus, '__proto__')) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, 'invalid network config: dpus.__proto__: key must be a PF network interface name');
  }
}

function valueAt(obj: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = obj;
  for (const key of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function nodeFileName(node: NodeFile): string {
  return `the node file ${node.path}${node.values ? '' : ' (there is no such file)'}`;
}

/** Like formatIssues, saying for an absent node-file value both places it could come from. */
function formatMerged(error: z.ZodError, merged: Record<string, unknown>, node: NodeFile): string {
  const nodeKeys: readonly PropertyKey[] = NODE_FILE_KEYS;
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const absent = nodeKeys.includes(i.path[0] as PropertyKey) && valueAt(merged, i.path) === undefined;
      if (!absent) return formatIssue(i);
      // zod calls an absent value an invalid type or union; a refinement's own message says what is wanted
      return i.code === 'custom'
        ? `${formatPath(i.path)}: ${i.message} (in the network config or in ${nodeFileName(node)})`
        : `${formatPath(i.path)}: not set in the network config nor in ${nodeFileName(node)}; set it in one of them`;
    })
    .join('; ');
}

/**
 * Validates the network config over the node file's values (node-file.ts: read by the caller, so loading stays
 * side-effect free); bad types or values are code 7 naming the JSON path.
 */
export function loadNetConf(raw: Record<string, unknown>, cniArgs: Record<string, string>, nodeFile?: NodeFile): NetConf {
  const node = nodeFile ?? { path: typeof raw.nodeConfig === 'string' ? raw.nodeConfig : DEFAULTS.nodeConfig };
  const { config, unknownFields } = applyConventions(raw);
  const merged = mergeNodeFile(config, node.values);
  refuseProtoKey(merged.dpus);
  const parsed = NetConfSchema.safeParse(merged);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${formatMerged(parsed.error, merged, node)}`);
  }
  const conf: NetConf = { ...parsed.data, pfs: pfList(parsed.data.pf), unknownFields };
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
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: pf: set "pf" (pick the first free VF; in the network config or in the node file ${conf.nodeConfig}) or "deviceID" / runtimeConfig.deviceID (a specific VF)`);
  }
}
