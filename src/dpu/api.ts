/** What the plugin asks of the DPU; the SSH/OVS implementation is in ovs.ts and ssh.ts. */
import type { DpuFacts, DpuFactsRequest } from './vf-function';
import type { VfFunctionTarget, VfFunctionValues } from '../model/vf';

export type { DpuFacts, DpuFactsRequest } from './vf-function';
// The DPU client's own vocabulary: its callers name these through the interface they call.
export type { VfFunctionTarget, VfFunctionValues } from '../model/vf';

export interface PortOwner {
  network: string;
  containerId: string;
  ifname: string;
}

/** OVN mode: the logical switch port an ADD created (its UUID is new per ADD, like portUuid). */
export interface LspRef {
  uuid: string;
  name: string;
}

/** A container port on the DPU and the owner its external_ids name (removed only while they still do). */
export interface OwnedPort {
  uuid: string;
  name: string;
  owner: PortOwner;
}

/** A port of the representor's name that a plug may replace: its own earlier port, or that of an attachment with no record. */
export interface Reclaim extends PortOwner {
  portUuid: string;
}

export interface PlugRequest extends PortOwner {
  vni: number;
  netns: string;
  representor: string;
  mtu: number;
  /** OVN mode: the container's MAC and its IPAM addresses (no prefix length), for addresses and port_security. */
  mac?: string;
  ips?: string[];
  /** OVN mode: the host's name, kept in the logical port's owner keys. */
  host?: string;
  /** OVN mode (CHECK): the logical port ADD made. */
  lsp?: LspRef;
  /** Replace this port of the representor's name, only while it still has this owner (see DpuPortOwned). */
  reclaim?: Reclaim;
}

export interface PlugResult {
  bridge: string;
  portUuid: string;
  lsp?: LspRef;
}

export interface UnplugRequest extends PortOwner {
  vni: number;
  representor: string;
  /** The port ADD created; without it, ports are found by owner. */
  portUuid?: string;
  /** OVN mode: the logical port ADD created; without it, it is found by its name. */
  lsp?: LspRef;
}

export interface DpuClient {
  /** user@host:port, for messages and the attachment cache. */
  readonly target: string;
  plug(req: PlugRequest): Promise<PlugResult>;
  /** Removes the port only while it still belongs to this owner; removes an emptied VNI bridge. */
  unplug(req: UnplugRequest): Promise<void>;
  check(req: PlugRequest): Promise<void>;
  /** Removes this network's ports whose owner is not in keep; returns how many went. */
  gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number>;
  status(): Promise<void>;
  /** One round trip before ADD changes anything: the uplink holding localVtep and, if asked, the VF function interface. */
  facts(req: DpuFactsRequest): Promise<DpuFacts>;
  /** Gives the VF function these values on the DPU side (DPU-mode VF settings). */
  setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void>;
  /** Optional: start connecting now; errors are reported by the first request. */
  warm?(): void;
  /** How long connecting took (SSH handshake, or the daemon's socket), for the closing log line. */
  readonly connectMs?: number;
  close(): void;
}

export function representorName(template: string, pfIndex: number, vfIndex: number): string {
  return template.replaceAll('{pf}', String(pfIndex)).replaceAll('{vf}', String(vfIndex));
}

/** How logs and errors name a DPU: the SSH login it is reached by. */
export function dpuTarget(d: { user: string; host: string; port: number }): string {
  return `${d.user}@${d.host}:${d.port}`;
}
