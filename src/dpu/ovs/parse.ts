import { CniError, ErrorCode } from '../../cni/errors';

/** Parsing `ovs-vsctl -f json` output. */

export type OvsAtom = string | number | boolean | ['uuid', string] | ['set', OvsAtom[]] | ['map', Array<[OvsAtom, OvsAtom]>];

export interface OvsTable {
  headings: string[];
  data: OvsAtom[][];
}

export function parseTables(stdout: string): Array<OvsTable | string> {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => (line.startsWith('{') ? (JSON.parse(line) as OvsTable) : line.trim()));
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
  if (atom[0] === 'set') return (atom[1] as OvsAtom[]).map(uuidOf).filter((u): u is string => u !== undefined);
  return [];
}

export function mapOf(atom: OvsAtom | undefined): Record<string, string> {
  if (!Array.isArray(atom) || atom[0] !== 'map') return {};
  return Object.fromEntries((atom[1] as Array<[OvsAtom, OvsAtom]>).map(([k, v]) => [String(k), String(v)]));
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
    throw new CniError(ErrorCode.DpuCommandFailed, `unexpected ovs-vsctl output: no ${what} UUID`);
  }
  return u;
}

