import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors';
import { jsonDepth, MAX_JSON_DEPTH } from '../util/json-depth';
import { untrustedDirReason } from '../util/secure-fs';
import { DEFAULT_NODE_CONFIG, NODE_CONFIG_ENV } from './defaults';
import { isDelegable, NODE_FILE_EXTRA_KEYS, NODE_FILE_KEYS, NODE_LIMIT_KEYS, ownerOf } from './ownership';

/**
 * The per-node file, root's: every node-owned value (host paths, DPU address and identity, VTEPs, PF, naming),
 * what it delegates to networks and the limits on what networks choose (ownership.ts). Zod-free: the forwarder
 * reads it for the daemon's socket.
 */
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

/**
 * The node file's path, from root-controlled places only: the environment whoever runs the plugin set
 * (DPU_OVERLAY_NODE_CONFIG), else the daemon's --node-config (fallback), else the default. Never the network config.
 */
export function nodeConfigPath(env: Record<string, string | undefined>, fallback = DEFAULT_NODE_CONFIG): string {
  const fromEnv = env[NODE_CONFIG_ENV];
  if (fromEnv === undefined || fromEnv === '') return fallback;
  if (!/^\/[^\0\n\r]*$/.test(fromEnv) || fromEnv.length > 4096) {
    throw new CniError(ErrorCode.InvalidEnvironment, `${NODE_CONFIG_ENV} must be an absolute path (the node file; default ${DEFAULT_NODE_CONFIG})`);
  }
  return fromEnv;
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
    if (code === 'ELOOP') throw invalid(`node file ${path} is a symbolic link; put the file itself there (or point ${NODE_CONFIG_ENV} at it)`);
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

/** The file's text as a node object: JSON, one object, only node keys (a misspelt key must not be ignored). */
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
  const allowed: readonly string[] = [...NODE_FILE_KEYS, ...NODE_FILE_EXTRA_KEYS];
  const unknown = Object.keys(parsed).find((k) => !allowed.includes(k));
  if (unknown !== undefined) {
    throw invalid(`node file ${path}: unknown key ${JSON.stringify(unknown.slice(0, 64))}; it may hold only ${allowed.join(', ')} (everything else belongs in the network config)`);
  }
  checkDelegate(parsed.delegate, path);
  checkLimits(parsed.limits, path);
  for (const key of ['dpu', 'dpus'] as const) {
    if (parsed[key] !== undefined && !isObject(parsed[key])) throw invalid(`node file ${path}: ${key} must be an object`);
  }
  if (isObject(parsed.dpu)) checkDpuKeys(parsed.dpu, 'dpu', path);
  if (isObject(parsed.dpus)) {
    for (const [pf, entry] of Object.entries(parsed.dpus)) {
      if (!isObject(entry)) throw invalid(`node file ${path}: dpus.${pf.slice(0, 64)} must be an object (the DPU behind that PF)`);
      checkDpuKeys(entry, `dpus.${pf.slice(0, 64)}`, path);
    }
  }
  return parsed;
}

/** A misspelt DPU key in the node file would otherwise be dropped by validation and its default used silently. */
function checkDpuKeys(dpu: Json, where: string, path: string): void {
  const unknown = Object.keys(dpu).find((k) => ownerOf(`dpu.${k}`) === undefined);
  if (unknown !== undefined) throw invalid(`node file ${path}: ${where}: unknown key ${JSON.stringify(unknown.slice(0, 64))}; check its spelling (docs/configuration.md lists the dpu fields)`);
}

function checkDelegate(delegate: unknown, path: string): void {
  if (delegate === undefined) return;
  if (!Array.isArray(delegate) || delegate.length > 64 || !delegate.every((d) => typeof d === 'string')) throw invalid(`node file ${path}: delegate must be a list of field names, e.g. ["dpu.remoteVteps"]`);
  for (const field of delegate as string[]) {
    if (ownerOf(field) !== 'node') throw invalid(`node file ${path}: delegate: ${JSON.stringify(field.slice(0, 64))} is not a node field (networks choose their own fields already)`);
    if (!isDelegable(field)) throw invalid(`node file ${path}: delegate: ${field} cannot be delegated (host paths, the DPU's address and identity and port naming stay the node owner's)`);
  }
}

function checkLimits(limits: unknown, path: string): void {
  if (limits === undefined) return;
  if (!isObject(limits)) throw invalid(`node file ${path}: limits must be an object, e.g. {"maxMtu": 9000}`);
  const keys: readonly string[] = NODE_LIMIT_KEYS;
  for (const [k, v] of Object.entries(limits)) {
    if (!keys.includes(k)) throw invalid(`node file ${path}: limits: unknown key ${JSON.stringify(k.slice(0, 64))}; known: ${NODE_LIMIT_KEYS.join(', ')}`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`node file ${path}: limits.${k} must be a non-negative integer`);
  }
}
