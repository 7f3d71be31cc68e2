import { DpuError } from '../errors';

/** Parsing `ovs-vsctl -f json` output. */

export type OvsAtom = string | number | boolean | ['uuid', string] | ['set', OvsAtom[]] | ['map', Array<[OvsAtom, OvsAtom]>];

export interface OvsTable {
  headings: string[];
  data: OvsAtom[][];
}

function unexpected(why: string): DpuError {
  return new DpuError('bad-output', `unexpected ovs-vsctl output: ${why}`);
}

/** The DPU's answer is checked for shape here, so nothing past this point meets a table that is not one. */
function parseTable(line: string): OvsTable {
  let t: unknown;
  try {
    t = JSON.parse(line);
  } catch {
    throw unexpected('a line starting with "{" is not JSON');
  }
  const { headings, data } = (t ?? {}) as Partial<Record<'headings' | 'data', unknown>>;
  if (!Array.isArray(headings) || !headings.every((h) => typeof h === 'string')) throw unexpected('a table without string headings');
  if (!Array.isArray(data) || !data.every((row) => Array.isArray(row) && row.length === headings.length)) throw unexpected('a table whose rows do not match its headings');
  return { headings, data } as OvsTable;
}

export function parseTables(stdout: string): Array<OvsTable | string> {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => (line.startsWith('{') ? parseTable(line) : line.trim()));
}

export function rows(table: OvsTable | string | undefined): Array<Record<string, OvsAtom>> {
  if (!table || typeof table === 'string') return [];
  return table.data.map((row) => Object.fromEntries(table.headings.map((h, i) => [h, row[i] as OvsAtom])));
}

export function uuidOf(atom: OvsAtom | undefined): string | undefined {
  return Array.isArray(atom) && atom[0] === 'uuid' ? (atom[1] as string) : undefined;
}

export function uuidSet(atom: OvsAtom | undefined): string[] {
  if (!Array.isArray(atom)) return [];
  if (atom[0] === 'uuid') return [atom[1] as string];
  if (atom[0] === 'set' && Array.isArray(atom[1])) return (atom[1] as OvsAtom[]).map(uuidOf).filter((u): u is string => u !== undefined);
  return [];
}

export function mapOf(atom: OvsAtom | undefined): Record<string, string> {
  if (!Array.isArray(atom) || atom[0] !== 'map' || !Array.isArray(atom[1])) return {};
  return Object.fromEntries((atom[1] as unknown[]).filter((kv): kv is [OvsAtom, OvsAtom] => Array.isArray(kv) && kv.length === 2).map(([k, v]) => [String(k), String(v)]));
}

export interface BridgeUsage {
  bridgeUuid?: string;
  ports: string[];
  /** Ports other than the bridge's own internal port and its tunnels. */
  containerPorts: string[];
}

export function parseBridgeUsage(tables: Array<OvsTable | string>): BridgeUsage {
  const [bridgeT, tunnelsT, internalT] = tables.slice(-3);
  const bridge = rows(bridgeT)[0];
  const ports = uuidSet(bridge?.ports);
  const infrastructure = new Set([...rows(tunnelsT), ...rows(internalT)].map((r) => uuidOf(r._uuid)));
  return { bridgeUuid: uuidOf(bridge?._uuid), ports, containerPorts: ports.filter((p) => !infrastructure.has(p)) };
}

export function hwOffloadValue(table: OvsTable | string | undefined): string | undefined {
  return mapOf(rows(table)[0]?.other_config)['hw-offload'];
}

export function assertUuid(u: string | undefined, what: string): string {
  if (!u || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(u)) {
    throw new DpuError('bad-output', `unexpected ovs-vsctl output: no ${what} UUID`);
  }
  return u;
}

