/**
 * Who owns each configuration field: the one table the loader (load.ts), the node file reader, the docs
 * (docs/security.md) and the fuzzer read. Zod-free: the forwarder loads it on every call.
 *
 * A network config reaches the plugin from whoever may define a network: under Multus a namespace tenant (the
 * NetworkAttachmentDefinition's author). So it chooses only what concerns its own attachment; everything that
 * reaches outside it (host paths, the DPU and its identity, which representors and bridges exist, the daemon) is
 * the node owner's, set in the root-owned node file. A network config may repeat a node value (it is compared and
 * ignored), but not change it, unless the node file delegates that field.
 */

export type Owner = 'network' | 'node';

export interface FieldOwnership {
  /** Top-level name, or dpu.<name> (the same key in a dpus entry belongs to the same owner). */
  field: string;
  owner: Owner;
  /** A node field the node file may delegate to networks ("delegate"); never a host path nor the daemon's socket. */
  delegable?: boolean;
  why: string;
}

export const FIELD_OWNERSHIP: readonly FieldOwnership[] = [
  { field: 'cniVersion', owner: 'network', why: 'the CNI protocol version of this network' },
  { field: 'name', owner: 'network', why: 'the network\'s name' },
  { field: 'type', owner: 'network', why: 'the plugin\'s name' },
  { field: 'vni', owner: 'network', why: 'which overlay the attachment joins' },
  { field: 'mtu', owner: 'network', why: 'the interface MTU, within the node\'s limits.maxMtu' },
  { field: 'mac', owner: 'network', why: 'the VF\'s MAC address' },
  { field: 'deviceID', owner: 'network', why: 'a specific VF (a device plugin\'s choice); only a free one is used' },
  { field: 'pciBusID', owner: 'network', why: 'as deviceID (Multus)' },
  { field: 'vlan', owner: 'network', why: 'the VF\'s VLAN' },
  { field: 'vlanQoS', owner: 'network', why: 'the VF\'s VLAN priority' },
  { field: 'linkState', owner: 'network', why: 'the VF\'s link state' },
  { field: 'minTxRate', owner: 'network', why: 'the VF\'s minimum rate, within the node\'s limits.maxTxRate' },
  { field: 'maxTxRate', owner: 'network', why: 'the VF\'s rate limit, within the node\'s limits.maxTxRate' },
  { field: 'ipam', owner: 'network', why: 'the IPAM plugin (looked up in CNI_PATH only) and its settings' },
  { field: 'runtimeConfig', owner: 'network', why: 'set by the runtime' },
  { field: 'args', owner: 'network', why: 'set by the runtime' },
  { field: 'prevResult', owner: 'network', why: 'set by the runtime' },
  { field: 'dpu.hwOffload', owner: 'network', why: 'whether this network requires hardware offload' },
  { field: 'pf', owner: 'node', delegable: true, why: 'which PFs\' VFs this host hands out' },
  { field: 'pfIndex', owner: 'node', why: 'names representors: a wrong index reaches another attachment\'s port' },
  { field: 'sysfsRoot', owner: 'node', why: 'a host path' },
  { field: 'stateDir', owner: 'node', why: 'a host path, root\'s records of every attachment' },
  { field: 'logFile', owner: 'node', why: 'a host path opened for writing as root' },
  { field: 'logLevel', owner: 'node', delegable: true, why: 'what goes into the node\'s log' },
  { field: 'nodeConfig', owner: 'node', why: 'the node file itself: from DPU_OVERLAY_NODE_CONFIG, the daemon\'s --node-config or /etc/cni/dpu-overlay/node.json' },
  { field: 'spoofchk', owner: 'node', why: 'off lets the VF send as any MAC address' },
  { field: 'trust', owner: 'node', why: 'on lets the VF change its MAC and go promiscuous' },
  { field: 'dpus', owner: 'node', why: 'the DPUs behind each PF: addresses, keys, VTEPs (each entry as dpu)' },
  { field: 'dpu.host', owner: 'node', why: 'the DPU\'s address: the plugin logs in there as root' },
  { field: 'dpu.port', owner: 'node', why: 'the DPU\'s SSH port' },
  { field: 'dpu.user', owner: 'node', why: 'the DPU login' },
  { field: 'dpu.privateKeyFile', owner: 'node', why: 'a host path to the node\'s key' },
  { field: 'dpu.knownHostsFile', owner: 'node', why: 'a host path: the DPU\'s identity' },
  { field: 'dpu.hostKeyFingerprint', owner: 'node', why: 'the DPU\'s identity' },
  { field: 'dpu.timeoutMs', owner: 'node', delegable: true, why: 'how long a DPU request may take' },
  { field: 'dpu.bridgePrefix', owner: 'node', why: 'names the DPU\'s bridges: another prefix reaches other bridges' },
  { field: 'dpu.datapathType', owner: 'node', why: 'how the DPU\'s OVS runs' },
  { field: 'dpu.representorTemplate', owner: 'node', why: 'names representors: another template reaches another attachment\'s port' },
  { field: 'dpu.localVtep', owner: 'node', why: 'the DPU\'s underlay address' },
  { field: 'dpu.remoteVteps', owner: 'node', delegable: true, why: 'the other DPUs of the static mesh' },
  { field: 'dpu.vfSettings', owner: 'node', why: 'where VF settings are applied' },
  { field: 'dpu.daemonSocket', owner: 'node', why: 'a host path: the daemon receives every command\'s environment' },
  { field: 'dpu.controlPlane', owner: 'node', why: 'how the DPUs are wired (static mesh or OVN)' },
  { field: 'dpu.ovn', owner: 'node', delegable: true, why: 'the OVN settings of this node\'s DPUs' },
];

/** Node file keys that are not fields of the config: what the node owner grants networks. */
export const NODE_FILE_EXTRA_KEYS = ['delegate', 'limits'] as const;
/** Numeric bounds the node sets on values networks choose: limits.<key>. */
export const NODE_LIMIT_KEYS = ['maxMtu', 'maxTxRate'] as const;

const OWNER = new Map(FIELD_OWNERSHIP.map((f) => [f.field, f]));

/** The owner of a top-level field or of dpu.<key> (also for a dpus entry's key); undefined for a field the schema does not know. */
export function ownerOf(field: string): Owner | undefined {
  return OWNER.get(field)?.owner;
}

export function isDelegable(field: string): boolean {
  return OWNER.get(field)?.delegable === true;
}

/** The node file's top-level config keys: every node field but nodeConfig, and dpu (its node keys). */
export const NODE_FILE_KEYS: readonly string[] = [...FIELD_OWNERSHIP.filter((f) => f.owner === 'node' && !f.field.includes('.') && f.field !== 'nodeConfig').map((f) => f.field), 'dpu'];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A config written the old way (one object with every value) split into what the network may set and what
 * belongs in the node file: for the migration of a conflist, and for the test harnesses.
 */
export function splitByOwner(conf: Json): { network: Json; node: Json } {
  const network: Json = {};
  const node: Json = {};
  for (const [key, value] of Object.entries(conf)) {
    if (key === 'nodeConfig') continue;
    if (key === 'dpu' && isObject(value)) {
      const netDpu: Json = {};
      const nodeDpu: Json = {};
      for (const [k, v] of Object.entries(value)) (ownerOf(`dpu.${k}`) === 'network' ? netDpu : nodeDpu)[k] = v;
      if (Object.keys(netDpu).length) network.dpu = netDpu;
      if (Object.keys(nodeDpu).length) node.dpu = nodeDpu;
    } else if (ownerOf(key) === 'node') node[key] = value;
    else network[key] = value;
  }
  return { network, node };
}
