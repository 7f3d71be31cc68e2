import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors';
import { formatIssues } from '../config/load';
import { isAlive, type ProcessIdentity, selfIdentity } from '../kernel/process';
import { type AllocationOwner, AllocationOwnerSchema, type Attachment, AttachmentSchema, attachmentKey, InvalidRecordError, parseRecord } from './records';
import { untrustedDirReason, writeExclusive, writeReplacing } from '../util/secure-fs';

export { InvalidRecordError } from './records';
export type { AllocationOwner, Attachment, DpuRecord } from './records';
export { attachmentKey } from './records';

const PRIVATE_DIR = 0o700;
const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;
/** NAME_MAX: longer keys (container IDs may have 256 characters) are stored under a hash. */
const NAME_MAX = 255;

/**
 * The file name of an attachment: the readable key when it fits, else "h-" + sha256 of the key.
 * Plain keys always contain ":" and hashed names never do, so the two cannot collide; the record
 * inside holds the full IDs and is compared exactly on load.
 */
export function attachmentFileName(containerId: string, ifname: string): string {
  const key = attachmentKey(containerId, ifname);
  return Buffer.byteLength(key) <= NAME_MAX ? key : `h-${createHash('sha256').update(key).digest('hex')}`;
}

/** An ADD still running (its process alive): neither a second ADD, DEL, GC nor a reclaim may touch it. */
export function isInFlight(att: Pick<Attachment, 'phase' | 'owner'>): boolean {
  return att.phase === 'adding' && isAlive(att.owner);
}

export function claimIsLive(owner: AllocationOwner): boolean {
  return owner.pid !== undefined && owner.startTime !== undefined && isAlive({ pid: owner.pid, startTime: owner.startTime });
}

/** Reads a regular file without following a symlink; undefined when it does not exist. */
function readPrivate(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new InvalidRecordError(path, code === 'ELOOP' ? 'is a symbolic link' : (err as Error).message);
  }
  try {
    return readFileSync(fd, 'utf8');
  } catch (err) {
    throw new InvalidRecordError(path, (err as Error).message);
  } finally {
    closeSync(fd);
  }
}

function lockHolder(text: string): ProcessIdentity | undefined {
  try {
    const o = JSON.parse(text) as Partial<ProcessIdentity>;
    return typeof o.pid === 'number' && typeof o.startTime === 'number' ? { pid: o.pid, startTime: o.startTime } : undefined;
  } catch {
    return undefined;
  }
}

export interface StateOptions {
  /** The uid that must own stateDir (the plugin runs as root); tests inject their own. */
  expectedUid?: number;
}

/**
 * State under stateDir (kept across reboots, unlike /tmp), root's alone (0700, checked on every use):
 *   allocations/<vf-pci>   created with O_EXCL: the create is the lock, so no lock can be left stuck;
 *   attachments/<containerID>:<ifname> (or h-<sha256>)   JSON record of one attachment;
 *   locks/<same name>   held (O_EXCL, with the holder's pid and start time) while DEL, GC or the daemon's re-plug
 *                       changes that attachment on the DPU; a lock whose process is gone is taken over.
 * Every record is validated on read; an invalid one raises InvalidRecordError and is never acted on.
 */
export class StateStore {
  readonly allocationsDir: string;
  readonly attachmentsDir: string;
  readonly locksDir: string;
  private readonly expectedUid: number;

  constructor(
    readonly dir: string,
    opts: StateOptions = {},
  ) {
    this.allocationsDir = join(dir, 'allocations');
    this.attachmentsDir = join(dir, 'attachments');
    this.locksDir = join(dir, 'locks');
    this.expectedUid = opts.expectedUid ?? process.getuid?.() ?? 0;
  }

  /** Creates stateDir 0700 if needed and refuses one that someone else owns or can write. */
  ensure(): void {
    const dirs = [this.dir, this.allocationsDir, this.attachmentsDir];
    try {
      for (const d of dirs) mkdirSync(d, { recursive: true, mode: PRIVATE_DIR });
    } catch (err) {
      throw new StoreError('io', `cannot create stateDir ${this.dir}: ${(err as Error).message}`);
    }
    for (const d of dirs) {
      const why = untrustedDirReason(d, this.expectedUid);
      if (why) {
        const who = this.expectedUid === 0 ? 'root:' : String(this.expectedUid);
        throw new StoreError(
          'untrusted-dir',
          `invalid network config: stateDir: ${d} ${why}; whoever can write there can make this plugin run programs and move interfaces as root. Fix: chown -R ${who} ${this.dir}; chmod 700 ${dirs.join(' ')}`,
        );
      }
    }
  }

  /**
   * Claims a VF atomically; true when it is now (or already was) ours.
   * The record is written to a private file first and then hard-linked into place, so a claim
   * is never visible half-written and a killed plugin leaves either nothing or a full record.
   */
  tryAllocate(pci: string, owner: AllocationOwner): boolean {
    const path = join(this.allocationsDir, pci);
    const me = selfIdentity();
    const record: AllocationOwner & { time: string } = { containerId: owner.containerId, ifname: owner.ifname, network: owner.network, pid: me.pid, startTime: me.startTime, time: new Date().toISOString() };
    try {
      writeExclusive(this.allocationsDir, path, JSON.stringify(record));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError('io', `cannot write ${path}: ${(err as Error).message}`);
      const current = this.allocationOwnerOrInvalid(pci);
      return current !== undefined && current.containerId === owner.containerId && current.ifname === owner.ifname;
    }
  }

  /** The validated claim on pci; undefined if none. Throws InvalidRecordError for a bad one. */
  readAllocation(pci: string): AllocationOwner | undefined {
    const path = join(this.allocationsDir, pci);
    const text = readPrivate(path);
    return text === undefined ? undefined : parseRecord<AllocationOwner>(AllocationOwnerSchema, text, path);
  }

  /** The claim on pci, or undefined when there is none or it is invalid (invalid ones are never ours). */
  allocationOwner(pci: string): AllocationOwner | undefined {
    return this.allocationOwnerOrInvalid(pci);
  }

  private allocationOwnerOrInvalid(pci: string): AllocationOwner | undefined {
    try {
      return this.readAllocation(pci);
    } catch (err) {
      if (err instanceof InvalidRecordError) return undefined;
      throw err;
    }
  }

  listAllocations(): string[] {
    try {
      return readdirSync(this.allocationsDir).filter((n) => !n.startsWith('.'));
    } catch {
      return [];
    }
  }

  /** Frees a VF if the given owner (or, without one, anybody) holds it. An invalid claim is left alone. */
  release(pci: string, owner?: Pick<AllocationOwner, 'containerId' | 'ifname'>): void {
    let current: AllocationOwner | undefined;
    try {
      current = this.readAllocation(pci);
    } catch (err) {
      if (err instanceof InvalidRecordError) return;
      throw err;
    }
    if (owner && current && (current.containerId !== owner.containerId || current.ifname !== owner.ifname)) return;
    rmSync(join(this.allocationsDir, pci), { force: true });
  }

  private attachmentPath(containerId: string, ifname: string): string {
    return join(this.attachmentsDir, attachmentFileName(containerId, ifname));
  }

  private serialize(a: Attachment): string {
    const parsed = AttachmentSchema.safeParse(a);
    if (!parsed.success) {
      throw new StoreError('record-rejected', `refusing to record attachment ${a.containerId}/${a.ifname}: ${formatIssues(parsed.error)}`);
    }
    return JSON.stringify(a, null, 1);
  }

  /** Creates the record of a new ADD; false if one exists already (another ADD got there first). */
  createAttachment(a: Attachment): boolean {
    try {
      writeExclusive(this.attachmentsDir, this.attachmentPath(a.containerId, a.ifname), this.serialize(a));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  saveAttachment(a: Attachment): void {
    writeReplacing(this.attachmentsDir, this.attachmentPath(a.containerId, a.ifname), this.serialize(a));
  }

  /** The validated record; undefined if none. Throws InvalidRecordError for a bad one (or one for other IDs). */
  loadAttachment(containerId: string, ifname: string): Attachment | undefined {
    const path = this.attachmentPath(containerId, ifname);
    const text = readPrivate(path);
    if (text === undefined) return undefined;
    const att = parseRecord<Attachment>(AttachmentSchema, text, path);
    if (att.containerId !== containerId || att.ifname !== ifname) throw new InvalidRecordError(path, `it holds ${att.containerId}/${att.ifname}`);
    return att;
  }

  removeAttachment(containerId: string, ifname: string): void {
    rmSync(this.attachmentPath(containerId, ifname), { force: true });
  }

  /** Every record, valid ones parsed and invalid ones reported. */
  scanAttachments(): { records: Attachment[]; invalid: InvalidRecordError[] } {
    const out = { records: [] as Attachment[], invalid: [] as InvalidRecordError[] };
    let names: string[];
    try {
      names = readdirSync(this.attachmentsDir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue; // in-flight temporary files (keys start with a letter or digit)
      const path = join(this.attachmentsDir, name);
      try {
        const text = readPrivate(path);
        if (text === undefined) continue;
        const att = parseRecord<Attachment>(AttachmentSchema, text, path);
        if (attachmentFileName(att.containerId, att.ifname) !== name) throw new InvalidRecordError(path, `it holds ${att.containerId}/${att.ifname}, whose record has another name`);
        out.records.push(att);
      } catch (err) {
        if (!(err instanceof InvalidRecordError)) throw err;
        out.invalid.push(err);
      }
    }
    return out;
  }

  /**
   * Takes the lock of one attachment; the release function, or undefined while a live process holds it.
   * A lock left by a process that died is set aside by rename (only one taker can win it) and taken.
   */
  tryLock(containerId: string, ifname: string): (() => void) | undefined {
    try {
      mkdirSync(this.locksDir, { recursive: true, mode: PRIVATE_DIR });
    } catch (err) {
      throw new StoreError('io', `cannot create ${this.locksDir}: ${(err as Error).message}`);
    }
    const path = join(this.locksDir, attachmentFileName(containerId, ifname));
    const mine = JSON.stringify(selfIdentity());
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        writeExclusive(this.locksDir, path, mine);
        return () => {
          if (readPrivate(path) === mine) rmSync(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError('io', `cannot write ${path}: ${(err as Error).message}`);
      }
      const held = readPrivate(path);
      if (held === undefined) continue;
      if (isAlive(lockHolder(held))) return undefined;
      const aside = join(this.locksDir, `.stale-${randomBytes(8).toString('hex')}`);
      try {
        renameSync(path, aside);
      } catch {
        continue; // another taker moved it first
      }
      if (readFileSync(aside, 'utf8') !== held) {
        // a live lock taken between our read and the rename: put it back
        try {
          linkSync(aside, path);
        } catch {
          // its holder's release found nothing to remove
        }
        rmSync(aside, { force: true });
        return undefined;
      }
      rmSync(aside, { force: true });
    }
    return undefined;
  }

  /** Who holds the lock of an attachment (for messages); undefined if nobody. */
  lockHolder(containerId: string, ifname: string): ProcessIdentity | undefined {
    const held = readPrivate(join(this.locksDir, attachmentFileName(containerId, ifname)));
    return held === undefined ? undefined : lockHolder(held);
  }

  listAttachments(): Attachment[] {
    return this.scanAttachments().records;
  }
}
