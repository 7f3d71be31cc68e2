import { createHash } from 'node:crypto';
import { DpuError } from '../errors';
import type { DpuConfig } from '../../config/schema';
import type { OwnedPort, PlugRequest, PortOwner } from '../api';
import { type Argv, ovsJson, ovsString } from '../quote';

/** external_ids keys the plugin owns on the DPU. */
export const EXT = {
  managed: 'dpu-overlay.managed',
  role: 'dpu-overlay.role',
  vni: 'dpu-overlay.vni',
  network: 'dpu-overlay.network',
  container: 'dpu-overlay.container',
  ifname: 'dpu-overlay.ifname',
  netns: 'dpu-overlay.netns',
  remote: 'dpu-overlay.remote',
} as const;

export type OvsSettings = Pick<DpuConfig, 'bridgePrefix' | 'datapathType' | 'localVtep' | 'remoteVteps' | 'hwOffload' | 'timeoutMs'>;

export function bridgeName(prefix: string, vni: number): string {
  const name = `${prefix}${vni}`;
  if (name.length > 15) throw new DpuError('bad-config', `invalid network config: dpu.bridgePrefix: bridge name ${name} is longer than 15 bytes`);
  return name;
}

/** Tunnel port names are unique per OVS instance, so they hash VNI and remote together. */
export function tunnelPortName(vni: number, remote: string): string {
  return `vx${createHash('sha256').update(`${vni}/${remote}`).digest('hex').slice(0, 8)}`;
}

export function vsctl(s: Pick<OvsSettings, 'timeoutMs'>, ...commands: string[][]): string[] {
  const argv = ['ovs-vsctl', `--timeout=${Math.max(1, Math.ceil(s.timeoutMs / 1000))}`, '-f', 'json'];
  for (const c of commands) argv.push('--', ...c);
  return argv;
}

export function ext(key: string, value: string | number): string {
  return `external_ids:${key}=${ovsString(String(value))}`;
}

export function ownerIds(o: PortOwner & { vni: number; netns?: string }): string[] {
  const ids = [ext(EXT.role, 'container'), ext(EXT.vni, o.vni), ext(EXT.network, o.network), ext(EXT.container, o.containerId), ext(EXT.ifname, o.ifname)];
  if (o.netns !== undefined) ids.push(ext(EXT.netns, o.netns));
  return ids;
}

/** Ensures a tunnel per remote VTEP on the bridge (idempotent; tunnels.ts removes those no longer configured). */
export function tunnelCommands(s: OvsSettings, bridge: string, vni: number): string[][] {
  return s.remoteVteps.flatMap((remote) => {
    const port = tunnelPortName(vni, remote);
    return [
      ['--may-exist', 'add-port', bridge, port],
      ['set', 'Interface', port, 'type=vxlan', `options:key=${vni}`, `options:remote_ip=${remote}`, `options:local_ip=${s.localVtep}`],
      ['set', 'Port', port, 'protected=true', ext(EXT.role, 'tunnel'), ext(EXT.vni, vni), ext(EXT.remote, remote)],
    ];
  });
}

/** The part of an ADD's ovs-vsctl transaction for one request; tag keeps its @ids unique in a batch. */
function plugTxn(s: OvsSettings, req: PlugRequest, bridge: string, tag = ''): string[][] {
  const txn: string[][] = [
    ['--may-exist', 'add-br', bridge],
    ['set', 'Bridge', bridge, `datapath_type=${s.datapathType}`, ext(EXT.managed, 'true'), ext(EXT.vni, req.vni)],
    ...tunnelCommands(s, bridge, req.vni),
    [`--id=@i${tag}`, 'create', 'Interface', `name=${req.representor}`, `mtu_request=${req.mtu}`, ...ownerIds(req)],
    [`--id=@p${tag}`, 'create', 'Port', `name=${req.representor}`, `interfaces=@i${tag}`, ...ownerIds(req)],
    ['add', 'Bridge', bridge, 'ports', `@p${tag}`],
    ['--columns=other_config', 'find', 'Open_vSwitch'],
  ];
  if (s.hwOffload === 'enable') txn.push(['set', 'Open_vSwitch', '.', 'other_config:hw-offload=true']);
  return txn;
}

/**
 * Removes one container port only while it is still that owner's (the plugin's owner external_ids and the name),
 * in one OVSDB transaction: a wait with timeout 0 on the Port, then the Bridge's reference goes (the Port and its
 * Interface with it). A port meanwhile removed or taken by another owner makes the wait fail ("timed out"), and
 * the transaction changes nothing. This is the only way the plugin removes a container port: the plug transaction
 * never deletes by name, so an existing port of that name makes its create fail on OVS's unique name index.
 * guard/dpu-guard.sh rebuilds it byte for byte.
 */
export function removeOwnedPortTxn(p: OwnedPort): unknown[] {
  const u = ['uuid', p.uuid];
  const owner = [[EXT.container, p.owner.containerId], [EXT.ifname, p.owner.ifname], [EXT.network, p.owner.network], [EXT.role, 'container']];
  return [
    'Open_vSwitch',
    { op: 'wait', table: 'Port', where: [['_uuid', '==', u], ['name', '==', p.name], ['external_ids', 'includes', ['map', owner]]], columns: ['name'], until: '==', rows: [{ name: p.name }], timeout: 0 },
    { op: 'mutate', table: 'Bridge', where: [['ports', 'includes', u]], mutations: [['ports', 'delete', ['set', [u]]]] },
  ];
}

export function removeOwnedPortCommand(p: OwnedPort): Argv {
  return ['ovsdb-client', 'transact', ovsJson(removeOwnedPortTxn(p))];
}

/** What a plug transaction prints per request: the Interface UUID, the Port UUID, the Open_vSwitch other_config table. */
export const PLUG_OUTPUTS = 3;

function representorsUp(s: OvsSettings, reqs: readonly PlugRequest[]): Argv[] {
  const commands: Argv[] = reqs.map((r) => ['ip', 'link', 'set', 'dev', r.representor, 'mtu', String(r.mtu), 'up']);
  if (s.hwOffload === 'require') commands.push(['ovs-vsctl', '--timeout=1', 'wait-until', 'Open_vSwitch', '.', 'other_config:hw-offload=true']);
  return commands;
}

/**
 * ADD: bring the representor up, then one ovs-vsctl transaction that ensures the VNI bridge and its
 * tunnels and (re)creates the representor's port there. Prints the new Interface and Port UUIDs.
 * reads: read-only subcommands for the end of the same transaction (the bridge's tunnels, tunnels.ts): they see
 * what the transaction made, with temporary UUIDs for its new rows, and save an ovs-vsctl run of their own.
 */
export function plugCommands(s: OvsSettings, req: PlugRequest, reads: string[][] = []): { commands: Argv[]; bridge: string } {
  const bridge = bridgeName(s.bridgePrefix, req.vni);
  return { commands: [...reclaimCommands([req]), ...representorsUp(s, [req]), vsctl(s, ...plugTxn(s, req, bridge), ...reads)], bridge };
}

/** The owner-checked removals a plug asks for first (its own earlier port, or a stale attachment's); each prints one result line. */
export function reclaimCommands(reqs: readonly PlugRequest[]): Argv[] {
  return reqs.flatMap((r) => (r.reclaim ? [removeOwnedPortCommand({ uuid: r.reclaim.portUuid, name: r.representor, owner: r.reclaim })] : []));
}

/** Several ADDs in one ovs-vsctl transaction (the daemon's batching); prints PLUG_OUTPUTS lines per request, in order, then the reads'. */
export function plugBatchCommands(s: OvsSettings, reqs: readonly PlugRequest[], reads: (bridges: string[]) => string[][] = () => []): { commands: Argv[]; bridges: string[] } {
  const bridges = reqs.map((r) => bridgeName(s.bridgePrefix, r.vni));
  return { commands: [...reclaimCommands(reqs), ...representorsUp(s, reqs), vsctl(s, ...reqs.flatMap((r, k) => plugTxn(s, r, bridges[k] as string, String(k))), ...reads(bridges))], bridges };
}

export function bridgeUsageQueries(bridge: string, vni: number): string[][] {
  return [
    ['--columns=_uuid,ports', 'find', 'Bridge', `name=${bridge}`],
    ['--columns=_uuid', 'find', 'Port', ext(EXT.role, 'tunnel'), ext(EXT.vni, vni)],
    ['--columns=_uuid', 'find', 'Port', `name=${bridge}`],
  ];
}

export function findOwnerPortsCommand(s: Pick<OvsSettings, 'timeoutMs'>, filter: Partial<PortOwner> & { vni?: number }): Argv {
  const where = [ext(EXT.role, 'container')];
  if (filter.network !== undefined) where.push(ext(EXT.network, filter.network));
  if (filter.containerId !== undefined) where.push(ext(EXT.container, filter.containerId));
  if (filter.ifname !== undefined) where.push(ext(EXT.ifname, filter.ifname));
  if (filter.vni !== undefined) where.push(ext(EXT.vni, filter.vni));
  return vsctl(s, ['--columns=_uuid,name,external_ids', 'find', 'Port', ...where]);
}

/**
 * DEL/GC: each port removed by its own owner-checked transaction (a no-op for a port meanwhile removed or replaced),
 * then one ovs-vsctl reading what is left on the bridge. Prints one result line per port, then the usage tables.
 */
export function removePortsCommands(s: OvsSettings, bridge: string, vni: number, ports: readonly OwnedPort[]): Argv[] {
  return [...ports.map(removeOwnedPortCommand), vsctl(s, ...bridgeUsageQueries(bridge, vni))];
}

/** What a removal prints per request after the result lines: the three bridge usage tables. */
export const UNPLUG_OUTPUTS = 3;

/**
 * Several DELs in one line (the daemon's batching): one owner-checked transaction per port, so one that changes
 * nothing cannot abort the others, then the usage tables of every request's bridge, read after all removals.
 */
export function removePortsBatchCommands(s: OvsSettings, reqs: ReadonlyArray<{ bridge: string; vni: number; port: OwnedPort }>): Argv[] {
  return [...reqs.map((r) => removeOwnedPortCommand(r.port)), vsctl(s, ...reqs.flatMap((r) => bridgeUsageQueries(r.bridge, r.vni)))];
}

/** Deletes the bridge only if its ports are still exactly `ports` (OVSDB wait with timeout 0): a concurrent ADD wins. */
export function removeBridgeIfUnchangedCommand(bridgeUuid: string, ports: string[]): Argv {
  const txn = [
    'Open_vSwitch',
    { op: 'wait', table: 'Bridge', where: [['_uuid', '==', ['uuid', bridgeUuid]]], columns: ['ports'], until: '==', rows: [{ ports: ['set', ports.map((p) => ['uuid', p])] }], timeout: 0 },
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', ['uuid', bridgeUuid]]] },
  ];
  return ['ovsdb-client', 'transact', JSON.stringify(txn)];
}

/** The port of a representor's name and its owner, wherever it is (a plug found the name taken). */
export function portByNameCommand(s: Pick<OvsSettings, 'timeoutMs'>, representor: string): Argv {
  return vsctl(s, ['--columns=_uuid,name,external_ids', 'find', 'Port', `name=${representor}`]);
}

export function checkCommand(s: OvsSettings, bridge: string, vni: number, representor: string): Argv {
  return vsctl(
    s,
    ['--columns=_uuid,ports,datapath_type', 'find', 'Bridge', `name=${bridge}`],
    ['--columns=_uuid,name,external_ids', 'find', 'Port', `name=${representor}`],
    ['--columns=name,options', 'find', 'Interface', 'type=vxlan', `options:key=${vni}`],
    ['--columns=other_config', 'find', 'Open_vSwitch'],
  );
}

export function statusCommand(s: OvsSettings): Argv {
  return vsctl(s, ['--columns=other_config', 'find', 'Open_vSwitch']);
}

/** The kernel's boot id: it changes when the DPU reboots. */
export const BOOT_ID_COMMAND: Argv = ['cat', '/proc/sys/kernel/random/boot_id'];

/**
 * The daemon's recovery probe: boot id, the Open_vSwitch row's UUID (kept across ovs-vswitchd and ovsdb-server
 * restarts, new when the database is created again) and every container port, in one round trip.
 */
export function probeCommands(s: Pick<OvsSettings, 'timeoutMs'>): Argv[] {
  return [BOOT_ID_COMMAND, vsctl(s, ['--columns=_uuid', 'find', 'Open_vSwitch'], ['--columns=_uuid,name,external_ids', 'find', 'Port', ext(EXT.role, 'container')])];
}

export const OFFLOADED_FLOWS_COMMAND: Argv = ['ovs-appctl', 'dpctl/dump-flows', 'type=offloaded'];

/** The per-VNI tunnels a bridge must have, by port name. */
export function expectedTunnels(s: OvsSettings, vni: number): Map<string, string> {
  return new Map(s.remoteVteps.map((r) => [tunnelPortName(vni, r), r]));
}

export function isOwnedBy(ids: Record<string, string>, o: PortOwner): boolean {
  return ids[EXT.container] === o.containerId && ids[EXT.ifname] === o.ifname && ids[EXT.network] === o.network;
}

export type { PlugRequest };
