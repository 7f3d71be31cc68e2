import { createHash } from 'node:crypto';
import type { DpuConfig } from '../../config/schema';
import type { LspRef, OwnedPort, PlugRequest, PortOwner } from '../api';
import { EXT, ownerIds, reclaimCommands, removeOwnedPortCommand } from '../ovs/commands';
import { type Argv, ovsJson, ovsString } from '../quote';

/**
 * OVN mode's DPU commands (design: docs/design/ovn-transactions.md). Northbound writes are `ovsdb-client transact`
 * of fixed-shape JSON: conditional steps ovn-nbctl cannot express (create the switch only if missing, delete only
 * our own port, delete the switch only when empty) are OVSDB "wait" ops with timeout 0 in the same transaction.
 * guard/dpu-guard.sh rebuilds each transaction from the values it extracts and compares byte for byte, so key
 * order and spacing here are part of the contract. The guard adds the NB server and its SSL options.
 */

export const INTEGRATION_BRIDGE = 'br-int';
/** Logical switch UUIDs are this prefix and the VNI in 12 hex digits: fixed forever, the same in the guard. */
export const SWITCH_UUID_PREFIX = 'd9c0a7e0-0dfb-4f1e-8a5c-';
/** What ovn-controller accepts as a chassis name here (the guard refuses every OVN shape otherwise). */
export const SYSTEM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const PORT_NAME = /^dpuo-([A-Za-z0-9][A-Za-z0-9._-]{0,63})-[0-9a-f]{16}$/;
export const NB = 'OVN_Northbound';
export const HOST_KEY = 'dpu-overlay.host';

export type OvnSettings = Pick<DpuConfig, 'timeoutMs' | 'hwOffload' | 'ovn'>;

/** This DPU's OVN identity, read from its Open_vSwitch external_ids. */
export interface Chassis {
  systemId: string;
  encapIp?: string;
  encapType?: string;
}

export function switchName(prefix: string, vni: number): string {
  return `${prefix}${vni}`;
}

export function switchUuid(vni: number): string {
  return SWITCH_UUID_PREFIX + vni.toString(16).padStart(12, '0');
}

/** Stable per chassis and attachment, so an ADD whose record was lost finds its port again by name. */
export function portName(systemId: string, o: PortOwner): string {
  return `dpuo-${systemId}-${createHash('sha256').update(JSON.stringify([o.network, o.containerId, o.ifname])).digest('hex').slice(0, 16)}`;
}

export function systemIdOfPort(name: string): string | undefined {
  return PORT_NAME.exec(name)?.[1];
}

export { ovsJson };

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function nb(s: Pick<OvnSettings, 'timeoutMs'>, verb: 'transact' | 'query', txn: unknown[]): Argv {
  return ['ovsdb-client', `--timeout=${seconds(s.timeoutMs)}`, verb, ovsJson([NB, ...txn])];
}

function vsctl(s: Pick<OvnSettings, 'timeoutMs'>, ...commands: string[][]): string[] {
  const argv = ['ovs-vsctl', `--timeout=${seconds(s.timeoutMs)}`, '-f', 'json'];
  for (const c of commands) argv.push('--', ...c);
  return argv;
}

const uuidWhere = (u: string) => [['_uuid', '==', ['uuid', u]]];

/** The switch of a VNI, created only if missing. "duplicate uuid" on the insert means it exists (tolerated). */
export function ensureSwitchTxn(prefix: string, vni: number): unknown[] {
  const name = switchName(prefix, vni);
  const u = switchUuid(vni);
  return [
    { op: 'wait', table: 'Logical_Switch', where: [['name', '==', name], ['_uuid', '!=', ['uuid', u]]], columns: ['name'], until: '==', rows: [], timeout: 0 },
    { op: 'insert', table: 'Logical_Switch', uuid: u, row: { name, other_config: ['map', [['requested-tnl-key', String(vni)]]], external_ids: ['map', [[EXT.managed, 'true'], [EXT.vni, String(vni)]]] } },
  ];
}

export function addresses(req: Pick<PlugRequest, 'mac' | 'ips'>): string {
  return [(req.mac ?? '').toLowerCase(), ...(req.ips ?? [])].join(' ');
}

/**
 * The logical port on the VNI's switch, bound to this chassis only. lsp.uuid is new per ADD attempt, so a
 * "duplicate uuid" answer means this very transaction was applied already (a line repeated after a lost channel):
 * tolerated, like the switch's.
 */
export function addPortTxn(s: OvnSettings, req: PlugRequest, systemId: string, lsp: LspRef): unknown[] {
  const u = switchUuid(req.vni);
  const addr = addresses(req);
  const row: Record<string, unknown> = { name: lsp.name, addresses: addr };
  if (s.ovn.portSecurity) row.port_security = addr;
  row.options = ['map', [['iface-id-ver', lsp.uuid], ['requested-chassis', systemId]]];
  row.external_ids = ['map', [[EXT.container, req.containerId], [HOST_KEY, req.host ?? ''], [EXT.ifname, req.ifname], [EXT.network, req.network], [EXT.vni, String(req.vni)]]];
  return [
    { op: 'wait', table: 'Logical_Switch', where: uuidWhere(u), columns: ['name'], until: '==', rows: [{ name: switchName(s.ovn.switchPrefix, req.vni) }], timeout: 0 },
    { op: 'insert', table: 'Logical_Switch_Port', uuid: lsp.uuid, row },
    { op: 'mutate', table: 'Logical_Switch', where: uuidWhere(u), mutations: [['ports', 'insert', ['set', [['uuid', lsp.uuid]]]]] },
  ];
}

/** Removes the port from its switch only while it is still this ADD's port on this chassis; "timed out" = nothing to do. */
export function deletePortTxn(lsp: LspRef, systemId: string): unknown[] {
  return [
    {
      op: 'wait', table: 'Logical_Switch_Port',
      where: [['_uuid', '==', ['uuid', lsp.uuid]], ['name', '==', lsp.name], ['options', 'includes', ['map', [['iface-id-ver', lsp.uuid], ['requested-chassis', systemId]]]]],
      columns: ['name'], until: '==', rows: [{ name: lsp.name }], timeout: 0,
    },
    { op: 'mutate', table: 'Logical_Switch', where: [['ports', 'includes', ['uuid', lsp.uuid]]], mutations: [['ports', 'delete', ['set', [['uuid', lsp.uuid]]]]] },
  ];
}

/** Deletes the VNI's switch only while it has no port (a concurrent ADD wins); "timed out" = kept or gone. */
export function deleteSwitchIfEmptyTxn(prefix: string, vni: number): unknown[] {
  const u = switchUuid(vni);
  return [
    { op: 'wait', table: 'Logical_Switch', where: [['_uuid', '==', ['uuid', u]], ['name', '==', switchName(prefix, vni)]], columns: ['ports'], until: '==', rows: [{ ports: ['set', []] }], timeout: 0 },
    { op: 'delete', table: 'Logical_Switch', where: uuidWhere(u) },
  ];
}

export const PORT_COLUMNS = ['_uuid', 'name', 'addresses', 'port_security', 'options', 'up', 'external_ids'];

export function portByNameQuery(name: string): unknown[] {
  return [{ op: 'select', table: 'Logical_Switch_Port', where: [['name', '==', name]], columns: PORT_COLUMNS }];
}

export function checkQuery(prefix: string, vni: number, lsp: LspRef): unknown[] {
  return [
    { op: 'select', table: 'Logical_Switch_Port', where: [['_uuid', '==', ['uuid', lsp.uuid]], ['name', '==', lsp.name]], columns: PORT_COLUMNS },
    { op: 'select', table: 'Logical_Switch', where: [['_uuid', '==', ['uuid', switchUuid(vni)]], ['name', '==', switchName(prefix, vni)]], columns: ['name', 'ports', 'other_config'] },
  ];
}

/** This chassis's logical ports of one network (GC). */
export function minePortsQuery(systemId: string, network: string): unknown[] {
  return [{
    op: 'select', table: 'Logical_Switch_Port',
    where: [['options', 'includes', ['map', [['requested-chassis', systemId]]]], ['external_ids', 'includes', ['map', [[EXT.network, network]]]]],
    columns: PORT_COLUMNS,
  }];
}

export const PING_QUERY: unknown[] = [{ op: 'comment', comment: 'dpu-overlay status' }];

/** Lines of the chassis query, in this order (an unset key prints an empty line). */
export const CHASSIS_KEYS = ['system-id', 'ovn-encap-ip', 'ovn-encap-type'] as const;

export function chassisQuery(s: Pick<OvnSettings, 'timeoutMs'>): Argv {
  return ['ovs-vsctl', `--timeout=${seconds(s.timeoutMs)}`, '--if-exists', 'get', 'Open_vSwitch', '.', ...CHASSIS_KEYS.map((k) => `external_ids:${k}`)];
}

export function upWaitCommand(s: OvnSettings, representor: string): Argv {
  return ['ovs-vsctl', `--timeout=${seconds(s.ovn.upTimeoutMs)}`, 'wait-until', 'Interface', representor, 'external_ids:ovn-installed="true"'];
}

export function newLsp(systemId: string, o: PortOwner, uuid: string): LspRef {
  return { uuid, name: portName(systemId, o) };
}

/**
 * ADD in one line: representor up, ensure the switch, add the logical port, plug the representor into br-int with
 * iface-id and the owner keys, then wait until ovn-controller has installed its flows (ovn-installed).
 * Prints the NB results (ensure, then add; only add without ensureSwitch), the Interface and Port UUIDs and the
 * Open_vSwitch other_config table.
 * ensureSwitch false: the caller saw the switch exist; the port insert's own wait on the switch (by UUID and name)
 * then fails with "timed out" if it has gone since, and the caller repeats the line with the ensure.
 */
export function plugCommands(s: OvnSettings, req: PlugRequest, systemId: string, lsp: LspRef, ensureSwitch = true): Argv[] {
  const ids = ownerIds(req);
  const vs = [
    ['--id=@i', 'create', 'Interface', `name=${req.representor}`, `mtu_request=${req.mtu}`, `external_ids:iface-id=${ovsString(lsp.name)}`, `external_ids:iface-id-ver=${ovsString(lsp.uuid)}`, ...ids],
    ['--id=@p', 'create', 'Port', `name=${req.representor}`, 'interfaces=@i', ...ids],
    ['add', 'Bridge', INTEGRATION_BRIDGE, 'ports', '@p'],
    ['--columns=other_config', 'find', 'Open_vSwitch'],
  ];
  if (s.hwOffload === 'enable') vs.push(['set', 'Open_vSwitch', '.', 'other_config:hw-offload=true']);
  const commands: Argv[] = [...reclaimCommands([req]), ['ip', 'link', 'set', 'dev', req.representor, 'mtu', String(req.mtu), 'up']];
  if (s.hwOffload === 'require') commands.push(['ovs-vsctl', '--timeout=1', 'wait-until', 'Open_vSwitch', '.', 'other_config:hw-offload=true']);
  if (ensureSwitch) commands.push(nb(s, 'transact', ensureSwitchTxn(s.ovn.switchPrefix, req.vni)));
  commands.push(
    nb(s, 'transact', addPortTxn(s, req, systemId, lsp)),
    vsctl(s, ...vs),
    upWaitCommand(s, req.representor),
  );
  return commands;
}

export interface PortToRemove {
  vni: number;
  /** The OVS port on br-int (by UUID and owner: a no-op for a port meanwhile removed or replaced). */
  port?: OwnedPort;
  lsp?: LspRef;
}

/**
 * DEL/GC in one line: the OVS ports first, then each logical port (owner-checked), then each VNI's switch if it
 * has just emptied. Every step is idempotent, so a failed line is simply repeated.
 */
export function unplugCommands(s: OvnSettings, systemId: string, items: readonly PortToRemove[]): Argv[] {
  const commands: Argv[] = items.flatMap((i) => (i.port ? [removeOwnedPortCommand(i.port)] : []));
  const lsps = items.flatMap((i) => (i.lsp ? [i.lsp] : []));
  for (const lsp of lsps) commands.push(nb(s, 'transact', deletePortTxn(lsp, systemId)));
  const vnis = [...new Set(items.filter((i) => i.lsp).map((i) => i.vni))];
  for (const vni of vnis) commands.push(nb(s, 'transact', deleteSwitchIfEmptyTxn(s.ovn.switchPrefix, vni)));
  return commands;
}

export function portByNameCommand(s: Pick<OvnSettings, 'timeoutMs'>, name: string): Argv {
  return nb(s, 'query', portByNameQuery(name));
}

export function minePortsCommand(s: Pick<OvnSettings, 'timeoutMs'>, systemId: string, network: string): Argv {
  return nb(s, 'query', minePortsQuery(systemId, network));
}

/** CHECK: the logical port and its switch, then the representor's Interface and Port and br-int, then other_config. */
export function checkCommands(s: OvnSettings, req: PlugRequest, lsp: LspRef): Argv[] {
  return [
    nb(s, 'query', checkQuery(s.ovn.switchPrefix, req.vni, lsp)),
    vsctl(
      s,
      ['--columns=_uuid,name,external_ids', 'find', 'Interface', `name=${req.representor}`],
      ['--columns=_uuid,ports', 'find', 'Bridge', `name=${INTEGRATION_BRIDGE}`],
      ['--columns=_uuid,name,external_ids', 'find', 'Port', `name=${req.representor}`],
      ['--columns=other_config', 'find', 'Open_vSwitch'],
    ),
  ];
}

/** STATUS: ovn-controller's southbound connection, the NB reachable from the DPU, br-int and other_config. */
export function statusCommands(s: OvnSettings): Argv[] {
  return [
    ['ovn-appctl', '-t', 'ovn-controller', 'connection-status'],
    nb(s, 'query', PING_QUERY),
    vsctl(s, ['--columns=_uuid,datapath_type', 'find', 'Bridge', `name=${INTEGRATION_BRIDGE}`], ['--columns=other_config', 'find', 'Open_vSwitch']),
  ];
}
