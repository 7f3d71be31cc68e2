/**
 * Loads native/rtnetlink (rtnetlink.node): from the executable's SEA asset, written to a root-only directory
 * and loaded after its sha256 matched the hash recorded when the executable was built; outside a SEA (tests,
 * development) from build/, checked against the hash the build wrote beside it. Never throws: a reason why
 * not is returned instead, and the caller keeps using `ip`.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { seaApi } from '../util/sea';
import { untrustedDirReason, writeReplacing } from '../util/secure-fs';

declare const __RTNETLINK_SHA256__: string | undefined;

export const RTNETLINK_ASSET = 'rtnetlink.node';

/** The addon's functions (see native/rtnetlink/rtnetlink.c). */
export interface RtnetlinkAddon {
  open(netnsFd: number): number;
  /** Sends and collects the answer on a worker thread; the socket stays open until it settles. */
  transact(fd: number, request: Buffer, timeoutMs: number): Promise<Buffer>;
  close(fd: number): void;
  writeInNetns(netnsFd: number, path: string, data: Buffer): number;
  strerror(errno: number): string;
}

/** replaced: why a file found at path was not loadable and was written again from the executable. */
export type AddonLoad = { addon: RtnetlinkAddon; path: string; replaced?: string } | { reason: string };

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The part of node:sea used here (tests pass their own). */
type AssetSource = { getAsset(key: string): ArrayBuffer };

function dlopen(path: string): RtnetlinkAddon {
  const m = { exports: {} as RtnetlinkAddon };
  process.dlopen(m, path);
  return m.exports;
}

/** Why the open file cannot be loaded as root's code (not a plain root-owned file, or writable by others), or undefined. */
function untrustedFileReason(fd: number, uid: number): string | undefined {
  const st = fstatSync(fd);
  if (!st.isFile()) return 'is not a regular file';
  if (st.uid !== uid) return `is owned by uid ${st.uid}, not ${uid}`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * Opens file (never through a symlink), checks its owner, mode and sha256 through that descriptor and loads the
 * same descriptor (/proc/self/fd), so what is loaded is what was checked even if the name is replaced meanwhile.
 */
function loadChecked(file: string, expected: string, uid: number): AddonLoad {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { reason: code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be opened (${code ?? String(err)}): remove it` };
  }
  try {
    const untrusted = untrustedFileReason(fd, uid);
    if (untrusted) return { reason: `${file} ${untrusted}: remove it` };
    const actual = sha256(readFileSync(fd));
    if (actual !== expected) return { reason: `${file} has sha256 ${actual}, not the ${expected} this executable was built with: remove it` };
    const addon = dlopen(`/proc/self/fd/${fd}`);
    for (const fn of ['open', 'transact', 'close', 'writeInNetns', 'strerror'] as const) {
      if (typeof addon[fn] !== 'function') return { reason: `${file} has no function ${fn}: it is not this version's rtnetlink addon` };
    }
    return { addon, path: file };
  } finally {
    closeSync(fd);
  }
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Why dir (created 0700 if missing) may not hold root's code, or undefined. */
function untrustedNativeDirReason(dir: string, uid: number): string | undefined {
  if (!lstatOrUndefined(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const why = untrustedDirReason(dir, uid) ?? ((lstatSync(dir).mode & 0o077) !== 0 ? `has mode ${(lstatSync(dir).mode & 0o777).toString(8)}, not 0700` : undefined);
  return why && `directory ${dir} ${why}: make it a directory owned by uid ${uid} with mode 0700, or remove it`;
}

/**
 * The executable's asset at dir/rtnetlink-<hash>.node. A file already there is loaded when it passes the checks
 * (the common case: a standalone plugin process neither reads the asset nor writes); one that does not (missing,
 * another hash, wrong owner or mode, a symlink) is replaced from the asset, whose hash is checked first, and checked
 * again before it is loaded.
 */
export function loadFromSea(sea: AssetSource, expected: string, dir: string, uid: number): AddonLoad {
  const untrustedDir = untrustedNativeDirReason(dir, uid);
  if (untrustedDir) return { reason: untrustedDir };
  const file = join(dir, `rtnetlink-${expected.slice(0, 16)}.node`);
  const first = loadChecked(file, expected, uid);
  if ('addon' in first) return first;
  const present = lstatOrUndefined(file) !== undefined;
  let bytes: Buffer;
  try {
    bytes = Buffer.from(sea.getAsset(RTNETLINK_ASSET));
  } catch {
    return { reason: `this executable has no ${RTNETLINK_ASSET} asset (built without a C compiler?)` };
  }
  if (sha256(bytes) !== expected) return { reason: `the executable's ${RTNETLINK_ASSET} asset does not match the hash recorded at build time` };
  try {
    // Through a temporary file renamed into place: concurrent plugin processes each rename complete, identical
    // bytes, and a reader opens either the old file or a whole new one.
    writeReplacing(dir, file, bytes, 0o500);
  } catch (err) {
    return { reason: `${first.reason}, and writing it from the executable failed (${err instanceof Error ? err.message : String(err)})` };
  }
  const again = loadChecked(file, expected, uid);
  return 'addon' in again && present ? { ...again, replaced: first.reason.replace(/: remove it$/, '') } : again;
}

/** Outside a SEA: build/ beside the bundle (build/dpu-overlay.cjs) or above the sources (src/kernel). */
function defaultBuildDir(): string {
  return existsSync(join(__dirname, RTNETLINK_ASSET)) ? __dirname : resolve(__dirname, '../../build');
}

/** Loads the addon from this executable (dir: where to write it) or, outside a SEA, from buildDir. */
export function loadRtnetlink(dir: string, buildDir = defaultBuildDir()): AddonLoad {
  const uid = process.geteuid?.() ?? 0;
  try {
    const sea = seaApi();
    if (sea) {
      const expected = typeof __RTNETLINK_SHA256__ === 'string' ? __RTNETLINK_SHA256__ : '';
      if (!/^[0-9a-f]{64}$/.test(expected)) return { reason: 'this executable records no hash for its rtnetlink addon' };
      return loadFromSea(sea, expected, dir, uid);
    }
    const file = join(buildDir, RTNETLINK_ASSET);
    if (!existsSync(file)) return { reason: `${file} does not exist: npm run build compiles it` };
    return loadChecked(file, readFileSync(`${file}.sha256`, 'utf8').trim(), uid);
  } catch (err) {
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}
