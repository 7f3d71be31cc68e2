import * as z from 'zod';
import { DEFAULT_DAEMON_SOCKET, DEFAULT_NODE_CONFIG } from './defaults';
import { IPAM_TYPE } from '../cni/invoke';

// Each plugin process parses one config: compiling a parser for it (zod's JIT) costs more than it saves.
z.config({ jitless: true });

/**
 * The network configuration: the plugin's user interface. Every default lives here.
 * Unknown fields (top level and in dpu) are dropped: the spec lets a plugin ignore or refuse them.
 */

export const NETDEV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
export const PCI_ADDRESS = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
export const MAC_ADDRESS = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const ABSOLUTE_PATH = /^\/[^\0\n\r]*$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const SHA256_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const OVS_NAME_PREFIX = /^[A-Za-z][A-Za-z0-9_-]{0,6}$/;
/** A logical switch is <prefix><vni>: a prefix ending in a digit would make two VNIs' names ambiguous. */
export const OVN_SWITCH_PREFIX = /^[A-Za-z]([A-Za-z0-9_.-]{0,30}[A-Za-z_.-])?$/;
/** {pf} and {vf} are replaced by the PF index and the VF index. */
const REPRESENTOR_TEMPLATE = /^[A-Za-z0-9_-]*(\{pf\}|\{vf\})[A-Za-z0-9_{}-]*$/;

const ip = z.union([z.ipv4(), z.ipv6()]);
export const absolutePath = z.string().max(4096).regex(ABSOLUTE_PATH, 'must be an absolute path');
export const mac = z.string().regex(MAC_ADDRESS, 'must be a MAC address like 02:00:00:00:00:01');
export const pciAddress = z.string().regex(PCI_ADDRESS, 'must be a PCI address like 0000:03:00.2');

export const DEFAULTS = {
  mtu: 1450,
  sysfsRoot: '/sys',
  stateDir: '/var/lib/cni/dpu-overlay',
  logLevel: 'info',
  logFile: '/var/log/dpu-overlay.log',
  daemonLogFile: '/var/log/dpu-overlay-daemon.log',
  /** How often the daemon probes each DPU with attachments for a reboot, a new OVS database or lost ports. */
  daemonPollMs: 2000,
  /** How long the daemon keeps a VNI bridge without containers (a new container on the VNI reuses it and its tunnels). */
  daemonEmptyBridgeGraceMs: 30000,
  /** The node owner's values (host paths, DPU, keys, VTEPs, PF); see ownership.ts and node-file-read.ts. */
  nodeConfig: DEFAULT_NODE_CONFIG,
  dpu: {
    port: 22,
    user: 'root',
    timeoutMs: 10000,
    bridgePrefix: 'br-vni',
    datapathType: 'system',
    representorTemplate: 'pf{pf}vf{vf}',
    hwOffload: 'enable',
    /** Where VF settings (mac, linkState, rates) go: "auto" = the DPU side when it offers it, else the host PF. */
    vfSettings: 'auto',
    /** The dpu-overlay daemon's socket; when nothing answers there the plugin connects to the DPU itself. */
    daemonSocket: DEFAULT_DAEMON_SOCKET,
    /** "static": the remoteVteps VXLAN mesh; "ovn": OVN on the DPUs (src/dpu/ovn). */
    controlPlane: 'static',
    ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 },
  },
} as const;

const OvnConfigSchema = z.object({
  switchPrefix: z.string().regex(OVN_SWITCH_PREFIX, 'must be a letter, then up to 31 letters, digits, "_", "." or "-", not ending in a digit (switch names are <prefix><vni>)').default(DEFAULTS.dpu.ovn.switchPrefix),
  portSecurity: z.boolean().default(DEFAULTS.dpu.ovn.portSecurity),
  upTimeoutMs: z.number().int().min(1000).max(600000).default(DEFAULTS.dpu.ovn.upTimeoutMs),
});

export const DpuConfigSchema = z
  .object({
    host: z.union([ip, z.string().regex(HOSTNAME, 'must be a hostname or IP address')]),
    port: z.number().int().min(1).max(65535).default(DEFAULTS.dpu.port),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a POSIX user name').default(DEFAULTS.dpu.user),
    privateKeyFile: absolutePath,
    knownHostsFile: absolutePath.optional(),
    hostKeyFingerprint: z.string().regex(SHA256_FINGERPRINT, 'must be SHA256:<43 base64 chars> as printed by ssh-keygen -lf').optional(),
    timeoutMs: z.number().int().min(100).max(600000).default(DEFAULTS.dpu.timeoutMs),
    bridgePrefix: z.string().regex(OVS_NAME_PREFIX, 'must be a letter then up to 6 letters, digits, "_" or "-" (bridge names are netdevs, at most 15 bytes)').default(DEFAULTS.dpu.bridgePrefix),
    datapathType: z.enum(['system', 'netdev']).default(DEFAULTS.dpu.datapathType),
    representorTemplate: z.string().max(15).regex(REPRESENTOR_TEMPLATE, 'must contain {pf} and/or {vf} and otherwise only letters, digits, "_" and "-"').default(DEFAULTS.dpu.representorTemplate),
    localVtep: ip.optional(),
    remoteVteps: z.array(ip).max(1024).default([]),
    hwOffload: z.enum(['require', 'enable', 'ignore']).default(DEFAULTS.dpu.hwOffload),
    vfSettings: z.enum(['auto', 'dpu', 'host']).default(DEFAULTS.dpu.vfSettings),
    daemonSocket: z.union([absolutePath, z.literal('')], { error: 'must be an absolute path, or "" to always connect directly' }).default(DEFAULTS.dpu.daemonSocket),
    controlPlane: z.enum(['static', 'ovn']).default(DEFAULTS.dpu.controlPlane),
    ovn: OvnConfigSchema.prefault({}),
  })
  .refine((d) => d.controlPlane === 'ovn' || d.localVtep !== undefined, {
    message: 'must be set to the DPU\'s underlay IP address (static control plane); with controlPlane "ovn" the DPU\'s external_ids:ovn-encap-ip is used instead',
    path: ['localVtep'],
  })
  .superRefine((d, ctx) => {
    // A VXLAN tunnel's two ends are one address family: OVS cannot send from an IPv4 VTEP to an IPv6 one.
    if (d.controlPlane !== 'static' || d.localVtep === undefined) return;
    const family = (a: string) => (a.includes(':') ? 'IPv6' : 'IPv4');
    const mine = family(d.localVtep);
    const other = d.remoteVteps.findIndex((r) => family(r) !== mine);
    if (other >= 0) {
      ctx.addIssue({ code: 'custom', path: ['remoteVteps', other], message: `${d.remoteVteps[other]} is ${family(d.remoteVteps[other] as string)} but localVtep ${d.localVtep} is ${mine}: a VXLAN tunnel needs both ends in one address family; list the remote's ${mine} VTEP, or give this DPU a VTEP of the remote's family` });
    }
  })
  .refine((d) => d.knownHostsFile !== undefined || d.hostKeyFingerprint !== undefined, {
    message: 'set knownHostsFile or hostKeyFingerprint: the DPU host key must be verified',
    path: ['knownHostsFile'],
  });

const RuntimeConfigSchema = z.looseObject({
  mac: mac.optional(),
  deviceID: pciAddress.optional(),
  ips: z.array(z.string().max(64)).max(64).optional(),
});

const PrevResultSchema = z.looseObject({
  cniVersion: z.string().optional(),
  interfaces: z.array(z.looseObject({ name: z.string().max(64), mac: z.string().max(64).optional(), mtu: z.number().int().optional(), sandbox: z.string().max(4096).optional(), pciID: z.string().max(64).optional() })).max(64).optional(),
  ips: z.array(z.looseObject({ address: z.string().max(64), gateway: z.string().max(64).optional(), interface: z.number().int().min(0).optional() })).max(256).optional(),
  routes: z.array(z.looseObject({ dst: z.string().max(64), gw: z.string().max(64).optional() })).max(1024).optional(),
  dns: z.looseObject({}).optional(),
});

export const ipamType = z.string().regex(IPAM_TYPE, 'must be the file name of an IPAM plugin in CNI_PATH');

const IpamSchema = z.looseObject({
  type: ipamType,
});

/** VF admin settings (set through the PF): the same rules for the config and for the values saved to restore. */
export const VF_ADMIN_FIELDS = {
  vlan: z.number().int().min(0).max(4094).optional(),
  vlanQoS: z.number().int().min(0).max(7).optional(),
  spoofchk: z.enum(['on', 'off']).optional(),
  trust: z.enum(['on', 'off']).optional(),
  linkState: z.enum(['auto', 'enable', 'disable']).optional(),
  minTxRate: z.number().int().min(0).optional(),
  maxTxRate: z.number().int().min(0).optional(),
};

const pfName = z.string().regex(NETDEV_NAME, 'must be a network interface name (at most 15 bytes)');

/** pf as a list: one network may draw VFs from several PFs, in this order. */
export function pfList(pf: string | readonly string[] | undefined): string[] {
  return pf === undefined ? [] : typeof pf === 'string' ? [pf] : [...pf];
}

export const NetConfSchema = z.object({
  cniVersion: z.string(),
  name: z.string().max(253).regex(NETWORK_NAME, 'must start with a letter or digit and contain only letters, digits, "_", "." and "-"'),
  type: z.string().max(64).optional(),
  vni: z.number().int().min(1).max(16777215),
  pf: z.union([pfName, z.array(pfName).min(1).max(16).refine((l) => new Set(l).size === l.length, 'must not name a PF twice')], { error: 'must be a PF network interface name or a list of 1 to 16 of them' }).optional(),
  pfIndex: z.number().int().min(0).max(255).optional(),
  deviceID: pciAddress.optional(),
  pciBusID: pciAddress.optional(),
  mtu: z.number().int().min(68).max(65535).default(DEFAULTS.mtu),
  mac: mac.optional(),
  ...VF_ADMIN_FIELDS,
  sysfsRoot: absolutePath.default(DEFAULTS.sysfsRoot),
  stateDir: absolutePath.default(DEFAULTS.stateDir),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default(DEFAULTS.logLevel),
  logFile: absolutePath.default(DEFAULTS.logFile),
  ipam: IpamSchema.optional(),
  dpu: DpuConfigSchema.optional(),
  dpus: z.record(z.string().regex(NETDEV_NAME, 'must be a PF network interface name'), DpuConfigSchema).optional(),
  nodeConfig: absolutePath.default(DEFAULTS.nodeConfig),
  runtimeConfig: RuntimeConfigSchema.optional(),
  args: z.looseObject({ cni: z.looseObject({ mac: mac.optional(), ips: z.array(z.string().max(64)).max(64).optional() }).optional() }).optional(),
  prevResult: PrevResultSchema.optional(),
})
  .refine((c) => c.pfIndex === undefined || !Array.isArray(c.pf) || c.pf.length === 1, { message: 'applies to a single pf only: with several, each PF\'s index comes from sysfs (phys_port_name p<N>, else its PCI function); remove pfIndex', path: ['pfIndex'] })
  .refine((c) => c.dpu !== undefined || c.dpus === undefined || pfList(c.pf).every((p) => c.dpus !== undefined && Object.hasOwn(c.dpus, p)), { message: 'a PF in pf has no entry in dpus and there is no dpu for it: add it to dpus or set dpu', path: ['dpus'] })
  .refine((c) => c.vlanQoS === undefined || c.vlan !== undefined, { message: 'vlanQoS needs vlan', path: ['vlanQoS'] })
  .refine((c) => c.minTxRate === undefined || c.maxTxRate === undefined || c.maxTxRate === 0 || c.minTxRate <= c.maxTxRate, { message: 'minTxRate must not exceed maxTxRate', path: ['minTxRate'] });

export type NetConfInput = z.infer<typeof NetConfSchema>;
export type DpuConfig = z.infer<typeof DpuConfigSchema>;
