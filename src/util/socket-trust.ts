import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { untrustedDirReason } from './secure-fs';

export const NO_SOCKET = 'does not exist';

/**
 * Why the daemon socket cannot be trusted, or undefined: whoever can replace it (or its directory) could
 * answer in the daemon's place, so both must be ours and private (socket 0600, directory 0700), as the daemon
 * makes them.
 */
export function untrustedSocketReason(path: string, expectedUid: number): string | undefined {
  try {
    const sock = lstatSync(path);
    if (!sock.isSocket()) return 'is not a socket';
    if (sock.uid !== expectedUid) return `is owned by uid ${sock.uid}, not ${expectedUid}`;
    if ((sock.mode & 0o077) !== 0) return `is accessible by group or others (mode ${(sock.mode & 0o777).toString(8)}; the daemon makes it 0600)`;
    const dir = dirname(path);
    const dirWhy = untrustedDirReason(dir, expectedUid);
    if (dirWhy) return `its directory ${dir} ${dirWhy}`;
    const mode = lstatSync(dir).mode & 0o777;
    return (mode & 0o077) !== 0 ? `its directory ${dir} is not private (mode ${mode.toString(8)}; the daemon makes it 0700)` : undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? NO_SOCKET : (err as Error).message;
  }
}
