import { readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { NSFS_MAGIC } from '../util/nsfs';

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

/** The dev:inode of every network namespace a process is in (read from /proc/PID/ns/net). */
export function processNetnsIdentities(proc = '/proc'): Set<string> {
  const ids = new Set<string>();
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n));
  } catch {
    return ids;
  }
  for (const pid of pids) {
    const id = netnsIdentity(`${proc}/${pid}/ns/net`);
    if (id) ids.add(id);
  }
  return ids;
}

let bootId: string | undefined;

/** This host's boot id: namespace inode numbers are reused, across a reboot from the same first numbers. */
export function hostBootId(path = '/proc/sys/kernel/random/boot_id'): string | undefined {
  if (bootId !== undefined) return bootId;
  try {
    return (bootId = readFileSync(path, 'utf8').trim() || undefined);
  } catch {
    return undefined;
  }
}

/** False when the record's namespace identity was taken in an earlier boot of this host: no namespace outlives a reboot. */
export function sameBoot(recorded: { netnsBoot?: string }): boolean {
  return recorded.netnsBoot === undefined || recorded.netnsBoot === hostBootId();
}

/**
 * Whether the network namespace ADD recorded still exists, as far as this process can tell: its file still names
 * the same namespace, or some process is still in it (a runtime in a mount namespace of its own names files this
 * process cannot see). Without a recorded identity, any namespace file at the path counts as alive. A record of an
 * earlier boot is gone whatever the numbers say (after a power cycle new pods get the same inode numbers).
 */
export function recordedNetnsAlive(recorded: { netns: string; netnsId?: string; netnsBoot?: string }, inProcesses: () => ReadonlySet<string>): boolean {
  if (!sameBoot(recorded)) return false;
  const now = netnsIdentity(recorded.netns);
  if (recorded.netnsId === undefined) return now !== undefined && isNetnsFile(recorded.netns);
  if (now === recorded.netnsId) return true;
  return inProcesses().has(recorded.netnsId);
}
