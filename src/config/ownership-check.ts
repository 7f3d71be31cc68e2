import { isDeepStrictEqual } from 'node:util';
import { CniError, ErrorCode } from '../cni/errors';
import { NODE_CONFIG_ENV } from './defaults';
import type { NodeFile } from './node-file-read';
import { ownerOf } from './ownership';
import { DEFAULTS } from './schema';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: unknown, key: string): unknown {
  return isObject(o) && Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Fields without a built-in default: only the node file can give them (the message says so). */
const NO_DEFAULT = new Set(['dpu.host', 'dpu.privateKeyFile', 'dpu.knownHostsFile', 'dpu.hostKeyFingerprint', 'dpu.localVtep', 'pf', 'pfIndex', 'dpus']);
const MAX_NAMED = 24;

/**
 * The node fields a network value differs from: leaf by leaf (objects key by key, arrays and scalars whole), each
 * against the node file's value, else the built-in default. Equal values are the node's anyway.
 */
function differing(field: string, net: unknown, node: unknown, dflt: unknown, out: string[]): void {
  if (isObject(net)) {
    for (const k of Object.keys(net)) differing(`${field}.${k}`, net[k], own(node, k), own(dflt, k), out);
    return;
  }
  if (!isDeepStrictEqual(net, node !== undefined ? node : dflt)) out.push(field);
}

function delegatedFields(node: NodeFile): ReadonlySet<string> {
  const d = node.values?.delegate;
  return new Set(Array.isArray(d) ? d.filter((x): x is string => typeof x === 'string') : []);
}

/** The node fields a raw network config sets to values other than the node's (delegated ones excepted). */
export function nodeFieldsChanged(raw: Json, node: NodeFile): string[] {
  const values = node.values ?? {};
  const delegated = delegatedFields(node);
  const defaults = DEFAULTS as unknown as Json;
  const out: string[] = [];
  for (const key of Object.keys(raw)) {
    if (key === 'nodeConfig') continue;
    if (key === 'dpu' && isObject(raw.dpu)) {
      for (const k of Object.keys(raw.dpu)) {
        const field = `dpu.${k}`;
        if (ownerOf(field) !== 'node' || delegated.has(field)) continue;
        differing(field, raw.dpu[k], own(values.dpu, k), own(defaults.dpu, k), out);
      }
    } else if (key === 'dpus' && isObject(raw.dpus)) {
      for (const [pf, entry] of Object.entries(raw.dpus)) {
        if (!isObject(entry)) {
          out.push(`dpus.${pf}`);
          continue;
        }
        for (const k of Object.keys(entry)) {
          if (ownerOf(`dpu.${k}`) === 'network' || delegated.has(`dpu.${k}`)) continue;
          differing(`dpus.${pf}.${k}`, entry[k], own(own(values.dpus, pf), k), own(defaults.dpu, k), out);
        }
      }
    } else if (ownerOf(key) === 'node' && !delegated.has(key)) {
      differing(key, raw[key], values[key], defaults[key], out);
    }
  }
  return out;
}

function fieldList(fields: readonly string[]): string {
  const named = fields.slice(0, MAX_NAMED).map((f) => f.slice(0, 80));
  return named.join(', ') + (fields.length > MAX_NAMED ? ` and ${fields.length - MAX_NAMED} more` : '');
}

/**
 * Refuses (code 7) a network config that chooses the node file or changes a node field: whoever writes a network
 * config (a namespace tenant under Multus) must not choose host paths, the DPU, or which ports exist.
 */
export function checkOwnership(raw: Json, node: NodeFile): void {
  if (raw.nodeConfig !== undefined && raw.nodeConfig !== node.path) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: nodeConfig: a network config cannot choose the node file (this node's is ${node.path}, named by ${NODE_CONFIG_ENV}, the daemon's --node-config or the default); remove nodeConfig`);
  }
  const changed = nodeFieldsChanged(raw, node);
  if (changed.length === 0) return;
  const where = `the node file ${node.path}${node.values ? '' : ' (there is none yet: create it, root-owned, mode 0644)'}`;
  const noDefault = changed.filter((f) => NO_DEFAULT.has(f.split('.').slice(0, 2).join('.')) || /^dpus\./.test(f));
  const hint = noDefault.length ? `; the DPU's address, identity and VTEPs and the PF have no default: they come only from the node file` : '';
  throw new CniError(
    ErrorCode.InvalidNetworkConfig,
    `invalid network config: ${fieldList(changed)} ${changed.length === 1 ? 'is' : 'are'} the node owner's: remove ${changed.length === 1 ? 'it' : 'them'} from the network config or move ${changed.length === 1 ? 'it' : 'them'} into ${where}${hint}`,
  );
}

/** The node's limits (node file "limits") on values a network chooses. */
export function checkLimits(conf: { mtu: number; minTxRate?: number; maxTxRate?: number }, node: NodeFile): void {
  const limits = own(node.values, 'limits');
  const maxMtu = own(limits, 'maxMtu');
  const maxTxRate = own(limits, 'maxTxRate');
  const over = (what: string, value: number, limit: number, key: string) =>
    new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${what} ${value} is above this node's limit ${limit} (limits.${key} in the node file ${node.path}); choose at most ${limit}`);
  if (typeof maxMtu === 'number' && conf.mtu > maxMtu) throw over('mtu', conf.mtu, maxMtu, 'maxMtu');
  if (typeof maxTxRate === 'number') {
    // 0 is "no limit" for the VF: above any limit the node sets
    if (conf.maxTxRate !== undefined && (conf.maxTxRate === 0 || conf.maxTxRate > maxTxRate)) throw over('maxTxRate', conf.maxTxRate, maxTxRate, 'maxTxRate');
    if (conf.minTxRate !== undefined && conf.minTxRate > maxTxRate) throw over('minTxRate', conf.minTxRate, maxTxRate, 'maxTxRate');
  }
}
