import { statfsSync, statSync } from 'node:fs';

export const NSFS_MAGIC = 0x6e736673;

/** dev:inode of a namespace file, to recognise the same namespace later (and never act on our own). */
export function netnsIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export function hostNetnsIdentity(): string | undefined {
  return netnsIdentity('/proc/self/ns/net');
}

/** True if path is a namespace file (an nsfs mount such as /run/netns/NAME or /proc/PID/ns/net). */
export function isNetnsFile(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}
