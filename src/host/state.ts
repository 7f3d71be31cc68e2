import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors';
import type { CniResult } from '../cni/types';

/** The VF as the host had it before ADD, so DEL can put it back. */
export interface VfRecord {
  pci: string;
  index: number;
  pfName: string;
  pfPci: string;
  pfIndex: number;
  originalName: string;
  originalMac: string;
  originalMtu: number;
  /**
   * Identity of an emulated VF (a veth, which has no parent device) in the container, as ADD saw it there:
   * its ifindex and its peer (the representor, in a namespace the container cannot reach).
   */
  emulated?: { ifindex: number; peer: { netnsId: number; ifindex: number } };
}

/** VF admin settings (set through the PF) as they were before ADD. */
export interface VfAdminRecord {
  mac?: string;
  vlan?: number;
  vlanQoS?: number;
  spoofchk?: 'on' | 'off';
  trust?: 'on' | 'off';
  linkState?: 'auto' | 'enable' | 'disable';
  minTxRate?: number;
  maxTxRate?: number;
}

export interface DpuRecord {
  target: string;
  bridge: string;
  representor: string;
  portUuid?: string;
  /** True while the DPU still holds a port that a DEL could not remove yet. */
  unplugPending?: boolean;
}

/** Everything DEL, CHECK and GC need, even after the network config file changed. */
export interface Attachment {
  version: 1;
  phase: 'adding' | 'ready';
  network: string;
  containerId: string;
  ifname: string;
  netns: string;
  /** dev:inode of the netns at ADD, to recognise it on a DEL without CNI_NETNS. */
  netnsId?: string;
  vni: number;
  vf: VfRecord;
  tmpName: string;
  mac?: string;
  mtu: number;
  adminSaved?: VfAdminRecord;
  /** The network config of ADD, replayed to the IPAM plugin on DEL. */
  rawConfig: string;
  ipamType?: string;
  cniPath: string[];
  dpu?: DpuRecord;
  /** Set once DEL has given the VF, IPs and allocation back; only the DPU part may be left. */
  hostReleased?: boolean;
  result?: CniResult;
}

export interface AllocationOwner {
  containerId: string;
  ifname: string;
  network: string;
}

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;

/** ":" can be in neither a container ID nor an ifname, so two attachments never share a key. */
export function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}

/**
 * State under stateDir (kept across reboots, unlike /tmp):
 *   allocations/<vf-pci>   created with O_EXCL: the create is the lock, so no lock can be left stuck;
 *   attachments/<containerID>-<ifname>   JSON cache of one attachment.
 */
export class StateStore {
  readonly allocationsDir: string;
  readonly attachmentsDir: string;

  constructor(readonly dir: string) {
    this.allocationsDir = join(dir, 'allocations');
    this.attachmentsDir = join(dir, 'attachments');
  }

  ensure(): void {
    try {
      for (const d of [this.dir, this.allocationsDir, this.attachmentsDir]) mkdirSync(d, { recursive: true, mode: PRIVATE_DIR });
    } catch (err) {
      throw new CniError(ErrorCode.IoFailure, `cannot create stateDir ${this.dir}: ${(err as Error).message}`);
    }
  }

  /**
   * Claims a VF atomically; true when it is now (or already was) ours.
   * The record is written to a private file first and then hard-linked into place, so a claim
   * is never visible half-written and a killed plugin leaves either nothing or a full record.
   */
  tryAllocate(pci: string, owner: AllocationOwner): boolean {
    const path = join(this.allocationsDir, pci);
    const tmp = join(this.allocationsDir, `.${pci}.${process.pid}`);
    try {
      writeFileSync(tmp, JSON.stringify({ ...owner, pid: process.pid, time: new Date().toISOString() }), { mode: PRIVATE_FILE });
      linkSync(tmp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CniError(ErrorCode.IoFailure, `cannot write ${path}: ${(err as Error).message}`);
      const current = this.allocationOwner(pci);
      return current !== undefined && current.containerId === owner.containerId && current.ifname === owner.ifname;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  allocationOwner(pci: string): AllocationOwner | undefined {
    try {
      return JSON.parse(readFileSync(join(this.allocationsDir, pci), 'utf8')) as AllocationOwner;
    } catch {
      return undefined;
    }
  }

  listAllocations(): string[] {
    try {
      return readdirSync(this.allocationsDir).filter((n) => !n.startsWith('.'));
    } catch {
      return [];
    }
  }

  /** Frees a VF if the given owner (or nobody recorded) holds it. */
  release(pci: string, owner?: Pick<AllocationOwner, 'containerId' | 'ifname'>): void {
    const current = this.allocationOwner(pci);
    if (owner && current && (current.containerId !== owner.containerId || current.ifname !== owner.ifname)) return;
    rmSync(join(this.allocationsDir, pci), { force: true });
  }

  private attachmentPath(containerId: string, ifname: string): string {
    return join(this.attachmentsDir, attachmentKey(containerId, ifname));
  }

  saveAttachment(a: Attachment): void {
    const path = this.attachmentPath(a.containerId, a.ifname);
    const tmp = join(this.attachmentsDir, `.${attachmentKey(a.containerId, a.ifname)}.tmp${process.pid}`);
    writeFileSync(tmp, JSON.stringify(a, null, 1), { mode: PRIVATE_FILE });
    renameSync(tmp, path);
  }

  loadAttachment(containerId: string, ifname: string): Attachment | undefined {
    try {
      return JSON.parse(readFileSync(this.attachmentPath(containerId, ifname), 'utf8')) as Attachment;
    } catch {
      return undefined;
    }
  }

  removeAttachment(containerId: string, ifname: string): void {
    rmSync(this.attachmentPath(containerId, ifname), { force: true });
  }

  listAttachments(): Attachment[] {
    let names: string[];
    try {
      names = readdirSync(this.attachmentsDir);
    } catch {
      return [];
    }
    const out: Attachment[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue; // in-flight temporary files (keys start with a letter or digit)
      try {
        out.push(JSON.parse(readFileSync(join(this.attachmentsDir, name), 'utf8')) as Attachment);
      } catch {
        // unreadable entries are left for an operator; GC never guesses
      }
    }
    return out;
  }
}
