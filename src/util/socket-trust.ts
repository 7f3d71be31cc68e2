import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { untrustedDirReason } from './secure-fs';

export const NO_SOCKET = 'does not exist';

/**
 * Why the daemon socket cannot be trusted, or undefined: whoever can replace it (or its directory) could
 * answer in the daemon's place, so both must be ours and writable by no one else.
 */
export function untrustedSocketReason(path: string, expectedUid: number): string | undefined {
  try {
    const sock = lstatSync(path);
    if (!sock.isSocket()) return 'is not a socket';
    if (sock.uid !== expectedUid) return `is owned by uid ${sock.uid}, not ${expectedUid}`;
    const dirWhy = untrustedDirReason(dirname(path), expectedUid);
    return dirWhy ? `its directory ${dirname(path)} ${dirWhy}` : undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? NO_SOCKET : (err as Error).message;
  }
}
