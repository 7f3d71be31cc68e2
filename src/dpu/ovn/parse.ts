import { isIP } from 'node:net';
import { DpuError } from '../errors';
import { mapOf, type OvsAtom } from '../ovs/parse';
import { CHASSIS_KEYS, type Chassis, SYSTEM_ID } from './commands';

/** Parsing what ovsdb-client and ovs-vsctl print in OVN mode. */

export interface OpError {
  /** Which op failed; a commit-time error (e.g. "constraint violation") comes after the last op. */
  index: number;
  error: string;
  details: string;
}

export type NbRow = Record<string, OvsAtom>;

export interface NbResult {
  /** Per op: the op's result object, or null for ops not run after a failure. */
  results: Array<Record<string, unknown> | null>;
  errors: OpError[];
}

function unexpected(why: string): DpuError {
  return new DpuError('bad-output', `unexpected ovsdb-client output: ${why}`);
}

/**
 * One ovsdb-client transact/query result line. ovsdb-client exits 0 even when an op fails: the errors are here,
 * as {"error": ...} objects in the result array.
 */
export function parseNbResult(line: string): NbResult {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    throw unexpected('a result line is not JSON');
  }
  if (!Array.isArray(doc)) throw unexpected('a result is not an array');
  const errors: OpError[] = [];
  const results = doc.map((r, index) => {
    if (r === null) return null;
    if (typeof r !== 'object' || Array.isArray(r)) throw unexpected('an op result is not an object');
    const o = r as Record<string, unknown>;
    if (o.error !== undefined) errors.push({ index, error: String(o.error), details: typeof o.details === 'string' ? o.details : '' });
    return o;
  });
  return { results, errors };
}

/** The rows of a select op's result. */
export function selectRows(r: NbResult, op: number): NbRow[] {
  const rows = r.results[op]?.rows;
  if (!Array.isArray(rows)) throw unexpected(`op ${op} has no rows`);
  return rows.filter((row): row is NbRow => typeof row === 'object' && row !== null && !Array.isArray(row));
}

/** The ovsdb-client result lines of a command line's stdout, in order (ovs-vsctl prints no line starting with "["). */
export function nbResultLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith('['));
}

/** Errors other than the tolerated ones, as one message, or undefined. */
export function untolerated(r: NbResult, tolerated: readonly string[]): OpError | undefined {
  return r.errors.find((e) => !tolerated.includes(e.error));
}

/** `ovs-vsctl --if-exists get Open_vSwitch . external_ids:...` in CHASSIS_KEYS order: quoted when needed, empty when unset. */
export function parseChassis(stdout: string, target: string): Chassis {
  const lines = stdout.split('\n');
  const value = (i: number): string | undefined => {
    const raw = (lines[i] ?? '').trim();
    if (raw === '') return undefined;
    if (!raw.startsWith('"')) return raw;
    try {
      return String(JSON.parse(raw));
    } catch {
      return undefined;
    }
  };
  const systemId = value(CHASSIS_KEYS.indexOf('system-id'));
  if (!systemId || !SYSTEM_ID.test(systemId)) {
    throw new DpuError('not-set-up', `DPU ${target}: external_ids:system-id is ${systemId === undefined ? 'not set' : `"${systemId.slice(0, 80)}", not a name of 1-64 letters, digits, ".", "_" or "-"`}; OVN mode needs the DPU set up as an OVN chassis (install.sh --dpu --ovn)`);
  }
  // OVN allows a comma list of encapsulations and IPs; the first is what the tunnel to other chassis uses by default.
  const encapIp = value(CHASSIS_KEYS.indexOf('ovn-encap-ip'))?.split(',')[0]?.trim();
  const encapType = value(CHASSIS_KEYS.indexOf('ovn-encap-type'))?.split(',')[0]?.trim();
  return { systemId, ...(encapIp && isIP(encapIp) ? { encapIp } : {}), ...(encapType ? { encapType } : {}) };
}

/** `ovn-appctl -t ovn-controller connection-status` prints "connected" or "not connected" and exits 0 for both. */
export function isConnected(stdout: string): boolean {
  return stdout.split('\n')[0]?.trim() === 'connected';
}

/** A logical port row as CHECK and GC read it. */
export interface LspRow {
  uuid: string;
  name: string;
  addresses: string[];
  portSecurity: string[];
  options: Record<string, string>;
  up: boolean;
  ids: Record<string, string>;
}

function strings(atom: OvsAtom | undefined): string[] {
  if (typeof atom === 'string') return [atom];
  if (Array.isArray(atom) && atom[0] === 'set' && Array.isArray(atom[1])) return (atom[1] as OvsAtom[]).filter((a): a is string => typeof a === 'string');
  return [];
}

export function lspRow(row: NbRow): LspRow | undefined {
  const u = row._uuid;
  const uuid = Array.isArray(u) && u[0] === 'uuid' ? String(u[1]) : undefined;
  if (!uuid || typeof row.name !== 'string') return undefined;
  return {
    uuid, name: row.name, addresses: strings(row.addresses), portSecurity: strings(row.port_security), options: mapOf(row.options), up: row.up === true, ids: mapOf(row.external_ids),
  };
}
