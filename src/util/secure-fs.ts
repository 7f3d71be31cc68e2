import { randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, lstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CREATE_PRIVATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Why dir cannot be trusted with root's state (owned by someone else, or writable by others), or undefined. */
export function untrustedDirReason(dir: string, expectedUid: number): string | undefined {
  const st = lstatSync(dir);
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== expectedUid) return `is owned by uid ${st.uid}, not ${expectedUid}`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * Writes data to a new file with a random name in dir (O_EXCL|O_NOFOLLOW: a planted file or symlink is
 * never written through) and returns its path.
 */
export function writeTemp(dir: string, data: string | Uint8Array, mode = 0o600): string {
  const path = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  const fd = openSync(path, CREATE_PRIVATE, mode);
  try {
    if (typeof data === 'string') writeSync(fd, data);
    else writeSync(fd, data);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
  return path;
}

/** Replaces path atomically with data. */
export function writeReplacing(dir: string, path: string, data: string | Uint8Array, mode?: number): void {
  const tmp = writeTemp(dir, data, mode);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Creates path with data unless it exists (EEXIST is thrown); never visible half-written. */
export function writeExclusive(dir: string, path: string, data: string): void {
  const tmp = writeTemp(dir, data);
  try {
    linkSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}
