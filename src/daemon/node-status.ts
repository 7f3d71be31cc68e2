import type { Attachment } from '../store/attachments';
import { StateStore } from '../store/attachments';
import { terminalSafe } from '../util/terminal';
import type { AttachmentStatusView, NodeStatus } from '../protocol/node-status';

function stateOf(att: Attachment): AttachmentStatusView['state'] {
  if (att.hostReleased) return 'del-pending';
  return att.phase;
}

/** The attachments recorded under stateDirs (unreadable or absent stateDirs contribute nothing). */
export function recordedAttachments(stateDirs: readonly string[], expectedUid?: number): Pick<NodeStatus, 'attachments' | 'invalidRecords'> {
  const attachments: AttachmentStatusView[] = [];
  const invalidRecords: NodeStatus['invalidRecords'] = [];
  for (const dir of stateDirs) {
    const store = new StateStore(dir, expectedUid === undefined ? {} : { expectedUid });
    const { records, invalid } = store.scanAttachments();
    for (const bad of invalid) invalidRecords.push({ file: bad.file, problem: bad.problem });
    for (const att of records) {
      attachments.push({
        containerId: att.containerId, ifname: att.ifname, network: att.network, vni: att.vni, vf: att.vf.pci,
        ...(att.dpu ? { representor: att.dpu.representor, dpu: att.dpu.target } : {}),
        state: stateOf(att), netns: att.netns, stateDir: dir,
      });
    }
  }
  attachments.sort((a, b) => a.network.localeCompare(b.network) || a.containerId.localeCompare(b.containerId) || a.ifname.localeCompare(b.ifname));
  return { attachments, invalidRecords };
}

/** Attachments that hold a VF (not the ones only waiting for a DPU port removal), by network and VNI. */
export function countAttachments(attachments: readonly AttachmentStatusView[]): Array<{ network: string; vni: number; count: number }> {
  const counts = new Map<string, { network: string; vni: number; count: number }>();
  for (const a of attachments) {
    if (a.state === 'del-pending') continue;
    const key = `${a.network}\0${a.vni}`;
    const c = counts.get(key) ?? { network: a.network, vni: a.vni, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  return [...counts.values()];
}

/** The human-readable form of `dpu-overlay status`. */
export function formatNodeStatus(s: NodeStatus): string {
  const lines: string[] = [];
  lines.push(s.source === 'daemon' ? `daemon: running (pid ${s.pid}, version ${s.version}, socket ${s.socket})` : `daemon: not running; read from the attachment records`);
  lines.push('', 'DPUS');
  if (s.dpus.length === 0) lines.push(s.source === 'daemon' ? '  (none connected yet)' : '  (known only to a running daemon)');
  for (const d of s.dpus) {
    const state = d.down ? `DOWN since ${d.down.since}: ${d.down.error}` : d.recovering ? `RECOVERING ${d.recovering.count}: ${d.recovering.reason}` : d.connected ? 'connected' : 'not connected';
    const rt = d.lastRoundTrip ? `, last ${d.lastRoundTrip.op} ${d.lastRoundTrip.ms.toFixed(1)} ms at ${d.lastRoundTrip.at}` : '';
    lines.push(`  ${d.dpu}  ${d.controlPlane}  ${state}${d.bootId ? `, boot id ${d.bootId}` : ''}${rt}`);
  }
  lines.push('', 'ATTACHMENTS');
  if (s.attachments.length === 0) lines.push('  (none)');
  else lines.push(`  ${['CONTAINER', 'IFNAME', 'NETWORK', 'VNI', 'VF', 'REPRESENTOR', 'STATE'].join('\t')}`);
  for (const a of s.attachments) lines.push(`  ${[a.containerId.slice(0, 12), a.ifname, a.network, a.vni, a.vf, a.representor ?? '-', a.state].join('\t')}`);
  for (const bad of s.invalidRecords) lines.push(`  INVALID RECORD ${bad.file}: ${bad.problem}`);
  return lines.map(terminalSafe).join('\n') + '\n';
}
