/**
 * Loads native/rtnetlink (rtnetlink.node): from the executable's SEA asset, written to a root-only directory
 * and loaded after its sha256 matched the hash recorded when the executable was built; outside a SEA (tests,
 * development) from build/, checked against the hash the build wrote beside it. Never throws: a reason why
 * not is returned instead, and the caller keeps using `ip`.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { untrustedDirReason } from '../util/secure-fs';

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

export type AddonLoad = { addon: RtnetlinkAddon; path: string } | { reason: string };

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface SeaApi {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

function seaApi(): SeaApi | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sea = require('node:sea') as SeaApi;
    return sea.isSea() ? sea : undefined;
  } catch {
    return undefined;
  }
}

function dlopen(path: string): RtnetlinkAddon {
  const m = { exports: {} as RtnetlinkAddon };
  process.dlopen(m, path);
  return m.exports;
}

/** Why file cannot be loaded as root's code (not a plain root-owned file, or writable by others), or undefined. */
function untrustedFileReason(file: string, uid: number): string | undefined {
  const st = lstatSync(file);
  if (!st.isFile()) return 'is not a regular file';
  if (st.uid !== uid) return `is owned by uid ${st.uid}, not ${uid}`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * The asset's bytes at dir/rtnetlink-<hash>.node: written once (a temporary file renamed into place, so a
 * concurrent daemon never loads half a file), then checked on every load like any file there.
 */
function placeAsset(bytes: Buffer, expected: string, dir: string, uid: number): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const why = untrustedDirReason(dir, uid) ?? ((lstatSync(dir).mode & 0o077) !== 0 ? `has mode ${(lstatSync(dir).mode & 0o777).toString(8)}, not 0700` : undefined);
  if (why) throw new Error(`directory ${dir} ${why}: make it a directory owned by uid ${uid} with mode 0700, or remove it`);
  const file = join(dir, `rtnetlink-${expected.slice(0, 16)}.node`);
  if (!existsSync(file)) {
    const tmp = join(dir, `.rtnetlink-${process.pid}-${Date.now()}.tmp`);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o500);
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
  return file;
}

/** Checks file against expected and loads it. */
function loadChecked(file: string, expected: string, uid: number): AddonLoad {
  const untrusted = untrustedFileReason(file, uid);
  if (untrusted) return { reason: `${file} ${untrusted}: remove it (the daemon writes it again)` };
  const actual = sha256(readFileSync(file));
  if (actual !== expected) return { reason: `${file} has sha256 ${actual}, not the ${expected} this executable was built with: remove it (the daemon writes it again)` };
  const addon = dlopen(file);
  for (const fn of ['open', 'transact', 'close', 'writeInNetns', 'strerror'] as const) {
    if (typeof addon[fn] !== 'function') return { reason: `${file} has no function ${fn}: it is not this version's rtnetlink addon` };
  }
  return { addon, path: file };
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
      let bytes: Buffer;
      try {
        bytes = Buffer.from(sea.getAsset(RTNETLINK_ASSET));
      } catch {
        return { reason: `this executable has no ${RTNETLINK_ASSET} asset (built without a C compiler?)` };
      }
      if (!/^[0-9a-f]{64}$/.test(expected)) return { reason: 'this executable records no hash for its rtnetlink addon' };
      if (sha256(bytes) !== expected) return { reason: `the executable's ${RTNETLINK_ASSET} asset does not match the hash recorded at build time` };
      return loadChecked(placeAsset(bytes, expected, dir, uid), expected, uid);
    }
    const file = join(buildDir, RTNETLINK_ASSET);
    if (!existsSync(file)) return { reason: `${file} does not exist: npm run build compiles it` };
    return loadChecked(file, readFileSync(`${file}.sha256`, 'utf8').trim(), uid);
  } catch (err) {
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}
