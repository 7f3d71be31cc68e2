import { statSync } from 'node:fs';
import { loadNetConf } from '../config/load';
import { readNodeFile } from '../config/node-file';
import type { DpuConfig } from '../config/schema';
import { dpuTarget } from '../dpu/api';
import type { TunnelDiff, TunnelTarget } from '../dpu/ovs/tunnels';
import type { Logger } from '../log';
import { dpuOfRecord } from '../plugin/dpu-client';
import type { Attachment } from '../store/attachments';
import { identityKey, settingsKey } from './connection';
import { networkOfRecord } from './record-network';

/**
 * Static mode, in the daemon: every VNI bridge with a ready attachment follows the VTEPs the node file lists
 * now. Checked at each recovery poll: when a node file changes (or the set of bridges does), each record's
 * DPU settings are read again (its network config over the node file, as its next CHECK would) and each DPU's
 * bridges reconciled in one reading. A slow safety pass repeats it, for an edit an ADD with older settings undid.
 */

export interface TunnelLink {
  reconcile(dpu: DpuConfig, targets: TunnelTarget[]): Promise<TunnelDiff[]>;
}

/** Polls between reconciliations when nothing changed (about a minute at the default poll). */
const SAFETY_POLLS = 30;

function stampOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return 'absent';
  }
}

/** The attachment's DPU settings as they are now: its network config over the node file read again. */
export function currentDpu(att: Attachment, path: string): DpuConfig | undefined {
  const conf = loadNetConf(networkOfRecord(att), {}, readNodeFile(path));
  return dpuOfRecord(conf, att)?.dpu;
}

interface Plan {
  dpu: DpuConfig;
  targets: Map<string, TunnelTarget>;
}

export class TunnelFollower {
  private lastKey = '';
  private polls = 0;
  private busy = false;

  constructor(
    private readonly linkFor: (dpu: DpuConfig) => TunnelLink,
    private readonly log: Logger,
    /** The node file of attachments recorded without one (older records): the daemon's --node-config. */
    private readonly nodeFile: string,
  ) {}

  /** The node file the attachment's ADD read: its bridge follows that file's VTEPs. */
  private nodeFileOf(att: Attachment): string {
    return att.nodeConfig ?? this.nodeFile;
  }

  /** One poll over the records recovery scanned. Exposed for tests. */
  async poll(records: readonly Attachment[]): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.pollOnce(records);
    } finally {
      this.busy = false;
    }
  }

  private async pollOnce(records: readonly Attachment[]): Promise<void> {
    const ready = records.filter((a) => a.phase === 'ready' && !a.hostReleased && a.dpu && !a.dpu.lsp && (a.dpu.config?.controlPlane ?? 'static') === 'static');
    const files = [...new Set(ready.map((a) => this.nodeFileOf(a)))].sort();
    const key = JSON.stringify([files.map((f) => [f, stampOf(f)]), ready.map((a) => `${a.dpu?.target}/${a.vni}`).sort()]);
    this.polls++;
    if (key === this.lastKey && this.polls < SAFETY_POLLS) return;
    const changed = key !== this.lastKey && this.lastKey !== '';
    this.lastKey = key;
    this.polls = 0;
    const plans = new Map<string, Plan>();
    for (const att of ready) {
      const path = this.nodeFileOf(att);
      let dpu: DpuConfig | undefined;
      try {
        dpu = currentDpu(att, path);
      } catch (err) {
        // A node file being rewritten, or broken: the bridges stay as they are until it reads well.
        // Tried again when the file changes (its stamp is in the key), not at every poll.
        this.log.warn({ nodeConfig: path, err: (err as Error).message }, 'cannot read the node file to reconcile tunnels; bridges left as they are');
        return;
      }
      if (!dpu || dpu.controlPlane !== 'static' || !att.dpu) continue;
      const id = `${identityKey(dpu)} ${settingsKey(dpu)}`;
      let p = plans.get(id);
      if (!p) plans.set(id, (p = { dpu, targets: new Map() }));
      p.targets.set(att.dpu.bridge, { bridge: att.dpu.bridge, vni: att.vni });
    }
    if (changed) this.log.info({ nodeConfig: files, dpus: plans.size }, 'node file or bridges changed: reconciling VNI bridge tunnels with remoteVteps');
    await Promise.all(
      [...plans.values()].map(async (p) => {
        try {
          await this.linkFor(p.dpu).reconcile(p.dpu, [...p.targets.values()]);
        } catch (err) {
          this.log.warn({ dpu: dpuTarget(p.dpu), err: (err as Error).message }, 'reconciling tunnels failed; tried again at the next poll');
          this.lastKey = '';
        }
      }),
    );
  }
}
