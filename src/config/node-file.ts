import { NODE_FILE_KEYS } from './ownership';

export { NODE_FILE_MAX_BYTES, type NodeFile, nodeConfigPath, parseNodeFile, readNodeFile } from './node-file-read';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Json, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Key by key, the network config's value winning; a side that is not an object is left for validation to refuse. */
function overlay(node: unknown, net: unknown): unknown {
  if (net === undefined) return node;
  return isObject(node) && isObject(net) ? { ...node, ...net } : net;
}

/**
 * The raw network config with the node file's values under it: field by field, dpu key by key, dpus entry by
 * entry (each entry key by key). Raw objects, before the one validation, so every value is checked alike.
 * A network config dpu without host (a cluster-wide NAD's {"hwOffload": "require"}) is settings for whichever
 * DPU this host has: it also goes over each of the node file's dpus entries, and is no DPU of its own when the
 * node file has only dpus.
 */
export function mergeNodeFile(raw: Json, node: Json | undefined): Json {
  if (!node) return raw;
  const merged: Json = { ...raw };
  const dpuSettings = isObject(raw.dpu) && raw.dpu.host === undefined ? raw.dpu : undefined;
  for (const key of NODE_FILE_KEYS) {
    if (node[key] === undefined) continue;
    if (key === 'dpu') merged.dpu = overlay(node.dpu, raw.dpu);
    else if (key === 'dpus') {
      const net = raw.dpus ?? {};
      if (!isObject(net)) continue;
      const nodeDpus = node.dpus as Json;
      const pfs = new Set([...Object.keys(nodeDpus), ...Object.keys(net)]);
      const entry = (pf: string): unknown => {
        const base = own(nodeDpus, pf);
        return overlay(base !== undefined && dpuSettings ? overlay(base, dpuSettings) : base, own(net, pf));
      };
      // own properties only, and built with fromEntries: a PF named __proto__ is just a (refused) name
      merged.dpus = Object.fromEntries([...pfs].map((pf) => [pf, entry(pf)]));
    } else if (raw[key] === undefined) merged[key] = node[key];
  }
  if (dpuSettings && node.dpu === undefined && node.dpus !== undefined) delete merged.dpu;
  return merged;
}
