import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors';
import { jsonDepth, MAX_JSON_DEPTH } from '../cni/skel';
import { untrustedDirReason } from '../util/secure-fs';
import { absolutePath, DEFAULTS } from './schema';

/**
 * The per-node file: what differs between hosts (DPU address, keys, VTEPs, PF, paths) under one cluster-wide
 * network config. Only these keys; everything else (vni, ipam, mtu, ...) belongs to the network.
 */
export const NODE_FILE_KEYS = ['pf', 'pfIndex', 'sysfsRoot', 'stateDir', 'logFile', 'logLevel', 'dpu', 'dpus'] as const;
export const NODE_FILE_MAX_BYTES = 1024 * 1024;

type Json = Record<string, unknown>;

export interface NodeFile {
  path: string;
  /** The file's object; undefined when there is no file at path. */
  values?: Json;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(msg: string): CniError {
  return new CniError(ErrorCode.InvalidNetworkConfig, msg);
}

/** The node file the network config names; checked here because it is read before the config is validated. */
export function nodeConfigPath(raw: Json): string {
  if (raw.nodeConfig === undefined) return DEFAULTS.nodeConfig;
  const parsed = absolutePath.safeParse(raw.nodeConfig);
  if (!parsed.success) throw invalid('invalid network config: nodeConfig: must be an absolute path (the per-node file, default /etc/cni/dpu-overlay/node.json)');
  return parsed.data;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function readCapped(fd: number, path: string): string {
  const buf = Buffer.allocUnsafe(NODE_FILE_MAX_BYTES + 1);
  let len = 0;
  for (let n; len < buf.length && (n = readSync(fd, buf, len, buf.length - len, null)) > 0; ) len += n;
  if (len > NODE_FILE_MAX_BYTES) throw invalid(`node file ${path} is larger than ${NODE_FILE_MAX_BYTES} bytes; it holds a few settings only`);
  return buf.subarray(0, len).toString('utf8');
}

/**
 * Reads and checks the node file. It says which DPU this host trusts and with which key, so it must be a
 * regular file (never through a symlink) owned by root (owner) in a directory only root can write, and not
 * writable by group or others. No file at all is fine: the network config may carry every value.
 */
export function readNodeFile(path: string, owner = 0): NodeFile {
  const dir = dirname(path);
  let dirProblem: string | undefined;
  try {
    dirProblem = untrustedDirReason(dir, owner);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { path };
    throw new CniError(ErrorCode.IoFailure, `node file ${path}: cannot inspect its directory: ${(err as Error).message}`);
  }
  if (dirProblem) throw invalid(`node file ${path}: its directory ${dir} ${dirProblem}; make it root's and not writable by others (chown root ${dir}; chmod go-w ${dir})`);

  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at path must not hang the plugin before the regular-file check refuses it
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return { path };
    if (code === 'ELOOP') throw invalid(`node file ${path} is a symbolic link; put the file itself there (or point nodeConfig at it)`);
    throw new CniError(ErrorCode.IoFailure, `node file ${path} cannot be opened: ${(err as Error).message}`);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw invalid(`node file ${path} is not a regular file`);
    if (st.uid !== owner) throw invalid(`node file ${path} is owned by uid ${st.uid}, not ${owner}; chown ${owner === 0 ? 'root' : owner} ${path}`);
    if ((st.mode & 0o022) !== 0) throw invalid(`node file ${path} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod go-w ${path}`);
    // empty is no JSON either; and procfs files (size 0) are never read, where reading may consume (/proc/kmsg)
    if (st.size === 0) throw invalid(`node file ${path} is empty; write a JSON object, e.g. {}`);
    try {
      text = readCapped(fd, path);
    } catch (err) {
      if (err instanceof CniError) throw err;
      throw new CniError(ErrorCode.IoFailure, `node file ${path} cannot be read: ${(err as Error).message}`);
    }
  } finally {
    closeSync(fd);
  }
  return { path, values: parseNodeFile(text, path) };
}

/** The file's text as a node object: JSON, one object, only NODE_FILE_KEYS (a misspelt key must not be ignored). */
export function parseNodeFile(text: string, path: string): Json {
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw invalid(`node file ${path} nests arrays/objects deeper than ${MAX_JSON_DEPTH} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // only the position: V8's message quotes the text, and nodeConfig may name any root-owned file
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw invalid(`node file ${path} is not valid JSON${at === undefined ? '' : ` (at byte ${at})`}`);
  }
  if (!isObject(parsed)) throw invalid(`node file ${path} must hold one JSON object`);
  const allowed: readonly string[] = NODE_FILE_KEYS;
  const unknown = Object.keys(parsed).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    throw invalid(`node file ${path}: unknown key ${JSON.stringify(unknown.slice(0, 64))}; it may hold only ${NODE_FILE_KEYS.join(', ')} (everything else belongs in the network config)`);
  }
  for (const key of ['dpu', 'dpus'] as const) {
    if (parsed[key] !== undefined && !isObject(parsed[key])) throw invalid(`node file ${path}: ${key} must be an object`);
  }
  if (isObject(parsed.dpus)) {
    for (const [pf, entry] of Object.entries(parsed.dpus)) {
      if (!isObject(entry)) throw invalid(`node file ${path}: dpus.${pf.slice(0, 64)} must be an object (the DPU behind that PF)`);
    }
  }
  return parsed;
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
