import { EXT, expectedTunnels, ext, type OvsSettings, tunnelCommands, tunnelPortName, vsctl } from './commands';
import { mapOf, type OvsTable, rows, uuidOf, uuidSet } from './parse';
import type { Argv } from '../quote';

/**
 * Static mode: a VNI bridge's VXLAN tunnels follow remoteVteps. Tunnels are added by every ADD (commands.ts
 * tunnelCommands); this file finds the ones that differ from the configuration and removes, owner-checked,
 * those to remotes no longer configured. Kept apart from the plug and unplug transactions on purpose.
 */

/** One VNI bridge to bring in line with the configured VTEPs. */
export interface TunnelTarget {
  bridge: string;
  vni: number;
}

/** A tunnel port this plugin made: its name is tunnelPortName(vni, remote) and its external_ids say so. */
export interface OwnedTunnel {
  uuid: string;
  name: string;
  remote: string;
}

export interface TunnelDiff {
  bridge: string;
  vni: number;
  /** False when the bridge does not exist: nothing to reconcile. */
  exists: boolean;
  /** Configured remotes without a tunnel on the bridge. */
  missing: string[];
  /** Configured remotes whose tunnel has other options (remote_ip, local_ip: a renumbered VTEP). */
  stale: string[];
  /** Tunnels on the bridge to remotes no longer configured: removed by reconciliation. */
  extra: OwnedTunnel[];
}

/** Tables printed per target by tunnelQueryCommand. */
export const TUNNEL_QUERY_OUTPUTS = 3;

/** The reading, per bridge: the bridge's ports, this VNI's tunnel ports and their interfaces (TUNNEL_QUERY_OUTPUTS tables each). */
export function tunnelQueries(targets: readonly TunnelTarget[]): string[][] {
  return targets.flatMap((t) => [
    ['--columns=_uuid,ports', 'find', 'Bridge', `name=${t.bridge}`],
    ['--columns=_uuid,name,external_ids', 'find', 'Port', ext(EXT.role, 'tunnel'), ext(EXT.vni, t.vni)],
    ['--columns=name,options', 'find', 'Interface', 'type=vxlan', `options:key=${t.vni}`],
  ]);
}

/** The reading as an ovs-vsctl run of its own. */
export function tunnelQueryCommand(s: Pick<OvsSettings, 'timeoutMs'>, targets: readonly TunnelTarget[]): Argv {
  return vsctl(s, ...tunnelQueries(targets));
}

/** Compares one target's three tables (tunnelQueryCommand) with the configured VTEPs. */
export function tunnelDiff(s: Pick<OvsSettings, 'localVtep' | 'remoteVteps'>, target: TunnelTarget, tables: ReadonlyArray<OvsTable | string | undefined>): TunnelDiff {
  const [bridgeT, portsT, ifacesT] = tables;
  const bridge = rows(bridgeT)[0];
  const diff: TunnelDiff = { ...target, exists: bridge !== undefined, missing: [], stale: [], extra: [] };
  if (!bridge) return diff;
  const onBridge = new Set(uuidSet(bridge.ports));
  const tunnels = rows(portsT).flatMap((r) => {
    const uuid = uuidOf(r._uuid);
    const ids = mapOf(r.external_ids);
    const remote = ids[EXT.remote];
    // Only ports with this plugin's tunnel name and ids, on this bridge: anything else is not ours to judge.
    if (!uuid || !onBridge.has(uuid) || remote === undefined || r.name !== tunnelPortName(target.vni, remote)) return [];
    return [{ uuid, name: String(r.name), remote }];
  });
  const options = new Map(rows(ifacesT).map((r) => [String(r.name), mapOf(r.options)]));
  const expected = expectedTunnels(s as OvsSettings, target.vni);
  const present = new Set(tunnels.map((t) => t.name));
  for (const [name, remote] of expected) {
    if (!present.has(name)) diff.missing.push(remote);
    else {
      const o = options.get(name);
      if (o?.remote_ip !== remote || o?.local_ip !== s.localVtep) diff.stale.push(remote);
    }
  }
  diff.extra = tunnels.filter((t) => !expected.has(t.name));
  return diff;
}

export function differs(d: TunnelDiff): boolean {
  return d.missing.length + d.stale.length + d.extra.length > 0;
}

/** A few addresses and how many in all: a message stays readable with 1024 remotes. */
function listed(addresses: readonly string[]): string {
  const shown = [...addresses].sort().slice(0, 8).join(', ');
  return addresses.length > 8 ? `${shown}, ... (${addresses.length} in all)` : shown;
}

/** What differs, for CHECK's message and the logs. */
export function describeDiff(d: TunnelDiff): string {
  const parts: string[] = [];
  if (d.missing.length) parts.push(`no tunnel to ${listed(d.missing)}`);
  if (d.stale.length) parts.push(`tunnel to ${listed(d.stale)} has other endpoints than localVtep and remoteVteps say (a renumbered VTEP?)`);
  if (d.extra.length) parts.push(`tunnel to ${listed(d.extra.map((t) => t.remote))}, which ${d.extra.length === 1 ? 'is' : 'are'} not in remoteVteps`);
  return `VNI bridge ${d.bridge}: ${parts.join('; ')}`;
}

/**
 * Removes one tunnel port from its VNI bridge only while the Port row is still exactly the plugin's tunnel to
 * that remote (OVSDB wait with timeout 0: its name and its external_ids), like the bridge removal. The guard
 * rebuilds the name from VNI and remote, so no other port can be removed this way.
 */
export function removeTunnelCommand(bridge: string, vni: number, t: OwnedTunnel): Argv {
  const ids = [[EXT.remote, t.remote], [EXT.role, 'tunnel'], [EXT.vni, String(vni)]];
  const txn = [
    'Open_vSwitch',
    { op: 'wait', table: 'Port', where: [['_uuid', '==', ['uuid', t.uuid]]], columns: ['name', 'external_ids'], until: '==', rows: [{ name: t.name, external_ids: ['map', ids] }], timeout: 0 },
    { op: 'mutate', table: 'Bridge', where: [['name', '==', bridge]], mutations: [['ports', 'delete', ['uuid', t.uuid]]] },
  ];
  return ['ovsdb-client', 'transact', JSON.stringify(txn)];
}

/** The commands that bring the bridges in line: (re)create missing or stale tunnels, remove the extra ones. */
export function reconcileCommands(s: OvsSettings, diffs: readonly TunnelDiff[]): Argv[] {
  const commands: Argv[] = [];
  const toAdd = diffs.filter((d) => d.exists && d.missing.length + d.stale.length > 0);
  if (toAdd.length) commands.push(vsctl(s, ...toAdd.flatMap((d) => tunnelCommands(s, d.bridge, d.vni))));
  for (const d of diffs) for (const t of d.extra) commands.push(removeTunnelCommand(d.bridge, d.vni, t));
  return commands;
}
