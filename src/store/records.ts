import * as z from 'zod';
import type { CniResult } from '../cni/types';
import type { ProcessIdentity } from '../kernel/process';
import { ifnameProblem } from '../cni/env';
import type { VfAdminRecord, VfFunctionTarget, VfFunctionValues, VfRecord } from '../model/vf';
import { StoreError } from './errors';
import { formatIssues } from '../config/load';
import { absolutePath, type DpuConfig, DpuConfigSchema, ipamType, mac, NETDEV_NAME, NETWORK_NAME, pciAddress, VF_ADMIN_FIELDS } from '../config/schema';

/** VF settings applied on the DPU side (DPU mode): where, what ADD set, and what was there before. */
export interface VfFunctionRecord {
  target: VfFunctionTarget;
  applied: VfFunctionValues;
  saved: VfFunctionValues;
}

export interface DpuRecord {
  target: string;
  bridge: string;
  representor: string;
  portUuid?: string;
  /** OVN mode: the logical switch port ADD made (bridge is then br-int). */
  lsp?: { uuid: string; name: string };
  /** True while the DPU still holds a port that a DEL could not remove yet. */
  unplugPending?: boolean;
  /** The DPU settings ADD used: how the dpu-overlay daemon reaches the DPU again to re-plug the port. */
  config?: DpuConfig;
}

/** Everything DEL, CHECK and GC need, even after the network config file changed (docs/design/records-and-recovery.md). */
export interface Attachment {
  version: 1;
  phase: 'adding' | 'ready';
  network: string;
  containerId: string;
  ifname: string;
  netns: string;
  /** dev:inode of the netns at ADD, to recognise it on a DEL without CNI_NETNS. */
  netnsId?: string;
  /** The host's boot id at ADD: netnsId means nothing in another boot (inode numbers are reused). */
  netnsBoot?: string;
  /** The node file ADD read (from a root-controlled place): the daemon reconciles the bridge with its VTEPs. */
  nodeConfig?: string;
  /** The ADD process while phase is "adding": only an ADD whose process is gone may be cleaned up. */
  owner?: ProcessIdentity;
  vni: number;
  vf: VfRecord;
  tmpName: string;
  mac?: string;
  mtu: number;
  adminSaved?: VfAdminRecord;
  vfFunction?: VfFunctionRecord;
  /** The network config of ADD, replayed to the IPAM plugin on DEL. */
  rawConfig: string;
  ipamType?: string;
  cniPath: string[];
  dpu?: DpuRecord;
  /** The `dpus` entry (a PF name) whose DPU this attachment uses; absent: `dpu` (and every record from before `dpus`). */
  dpuKey?: string;
  /** Set once DEL has given the VF, IPs and allocation back; only the DPU part may be left. */
  hostReleased?: boolean;
  result?: CniResult;
}

export interface AllocationOwner {
  containerId: string;
  ifname: string;
  network: string;
  /** The claiming process (ADD), so a claim whose ADD still runs is never taken for an orphan. */
  pid?: number;
  startTime?: number;
}

/** ":" can be in neither a container ID nor an ifname, so two attachments never share a key. */
export function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}

/**
 * The records under stateDir, re-validated on every read with the config's own rules: root acts on
 * them later (runs the IPAM plugin they name, moves the netdevs they name), so a planted or corrupted
 * record must be refused, never interpreted.
 */

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const containerId = z.string().max(256).regex(CONTAINER_ID, 'must be a CNI container ID');
const ifname = z.string().refine((n) => ifnameProblem(n) === undefined, 'must be an interface name as CNI_IFNAME allows');
const netdev = z.string().regex(NETDEV_NAME, 'must be a network interface name');
const network = z.string().max(253).regex(NETWORK_NAME, 'must be a network name');
const u32 = z.number().int().min(0).max(0xffffffff);

const ProcessIdentitySchema = z.object({ pid: z.number().int().min(1).max(0x3fffffff), startTime: z.number().int().min(0) });

const VfRecordSchema = z.object({
  pci: pciAddress,
  index: z.number().int().min(0).max(65535),
  pfName: netdev,
  pfPci: pciAddress,
  pfIndex: z.number().int().min(0).max(255),
  originalName: netdev,
  originalMac: mac,
  originalMtu: z.number().int().min(0).max(65535),
  linkIdentity: z.object({ ifindex: u32, peer: z.object({ netnsId: z.number().int().min(-1).max(0x7fffffff), ifindex: u32 }).optional() }).optional(),
});

const VfAdminSchema = z.object({ mac: mac.optional(), ...VF_ADMIN_FIELDS });

const VfFunctionValuesSchema = z.object({ mac: mac.optional(), linkState: VF_ADMIN_FIELDS.linkState, minTxRate: VF_ADMIN_FIELDS.minTxRate, maxTxRate: VF_ADMIN_FIELDS.maxTxRate });
const VfFunctionRecordSchema = z.object({
  target: z.discriminatedUnion('path', [
    z.object({ path: z.literal('devlink'), handle: z.string().regex(/^pci\/[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]\/(0|[1-9][0-9]{0,8})$/, 'must be a devlink port handle pci/<address>/<index>') }),
    z.object({ path: z.literal('smartnic'), pfIndex: z.number().int().min(0).max(255), vfIndex: z.number().int().min(0).max(65535) }),
  ]),
  applied: VfFunctionValuesSchema,
  saved: VfFunctionValuesSchema,
});

const DpuRecordSchema = z.object({
  target: z.string().max(400).regex(/^[^\0\n\r]+$/, 'must be a DPU address'),
  bridge: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,14}$/, 'must be an OVS bridge name'),
  representor: z.string().regex(/^[A-Za-z0-9_-]{0,15}$/, 'must be a representor name'),
  portUuid: z.uuid().optional(),
  lsp: z.object({ uuid: z.uuid(), name: z.string().regex(/^dpuo-[A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9a-f]{16}$/, 'must be a logical port name made by the plugin') }).optional(),
  unplugPending: z.boolean().optional(),
  config: DpuConfigSchema.optional(),
});

export const AttachmentSchema = z.object({
  version: z.literal(1),
  phase: z.enum(['adding', 'ready']),
  network,
  containerId,
  ifname,
  netns: absolutePath,
  netnsId: z.string().regex(/^\d+:\d+$/, 'must be DEV:INODE').optional(),
  netnsBoot: z.string().regex(/^[0-9a-f-]{36}$/, 'must be a boot id').optional(),
  nodeConfig: absolutePath.optional(),
  owner: ProcessIdentitySchema.optional(),
  vni: z.number().int().min(1).max(16777215),
  vf: VfRecordSchema,
  tmpName: z.string().regex(/^dpuo[0-9a-f]{8}$/, 'must be a temporary name made by the plugin (dpuo + 8 hex digits)'),
  mac: mac.optional(),
  mtu: z.number().int().min(68).max(65535),
  adminSaved: VfAdminSchema.optional(),
  vfFunction: VfFunctionRecordSchema.optional(),
  rawConfig: z.string().max(16 * 1024 * 1024),
  ipamType: ipamType.optional(),
  cniPath: z.array(absolutePath).max(256),
  dpu: DpuRecordSchema.optional(),
  dpuKey: netdev.optional(),
  hostReleased: z.boolean().optional(),
  result: z.looseObject({ cniVersion: z.string().max(32) }).optional(),
});

export const AllocationOwnerSchema = z.object({
  containerId,
  ifname,
  network,
  pid: z.number().int().min(1).optional(),
  startTime: z.number().int().min(0).optional(),
  time: z.string().max(64).optional(),
});

/** A record under stateDir that is unreadable or breaks the rules; it is reported, never acted on. */
export class InvalidRecordError extends StoreError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super('invalid-record', `state record ${file} is invalid (${problem}); it was not acted on: inspect it, fix or remove it (and free what it held by hand)`);
    this.name = 'InvalidRecordError';
  }
}

export function parseRecord<T>(schema: z.ZodType, text: string, file: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidRecordError(file, `not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new InvalidRecordError(file, formatIssues(parsed.error));
  return parsed.data as T;
}

/**
 * The keys of a network config that a delegated IPAM plugin reads on DEL (host-local, static, dhcp, whereabouts):
 * a record keeps only these of ADD's config, so a config carrying a large DPU section (hundreds of VTEPs) or any
 * other bulk does not make every record, and the daemon's poll that reads them all, that large.
 */
const IPAM_CONFIG_KEYS = ['cniVersion', 'name', 'type', 'ipam', 'dns', 'args', 'runtimeConfig'] as const;
/** The config a record keeps, serialised: far above any real IPAM section. */
export const MAX_RECORDED_CONFIG_BYTES = 256 * 1024;

/** Thrown when what a record would keep of the config passes MAX_RECORDED_CONFIG_BYTES. */
export class RecordTooLargeError extends StoreError {
  constructor(bytes: number) {
    super('record-too-large', `invalid network config: the parts kept for DEL (${IPAM_CONFIG_KEYS.join(', ')}) take ${bytes} bytes, more than the ${MAX_RECORDED_CONFIG_BYTES} a record may keep; shrink the ipam section`);
    this.name = 'RecordTooLargeError';
  }
}

/** What an attachment record keeps of ADD's network config (its text, as the IPAM plugin will read it on DEL). */
export function recordedConfig(rawConfig: string): string {
  const conf = JSON.parse(rawConfig) as Record<string, unknown>;
  const kept: Record<string, unknown> = {};
  for (const k of IPAM_CONFIG_KEYS) if (Object.hasOwn(conf, k)) kept[k] = conf[k];
  const text = JSON.stringify(kept);
  if (Buffer.byteLength(text) > MAX_RECORDED_CONFIG_BYTES) throw new RecordTooLargeError(Buffer.byteLength(text));
  return text;
}
