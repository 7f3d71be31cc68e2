import { splitByOwner } from '../config/ownership';
import type { Attachment } from '../store/attachments';

/**
 * The network config of an attachment's ADD as far as its record holds it. A record keeps only the IPAM keys of
 * ADD's config (recordedConfig), so the network's other fields come from the record itself: its VNI, and the
 * network-owned DPU setting (hwOffload) of the recorded DPU settings. A record from before the trust split kept
 * the whole config, node values too: only its network part counts (the node file read now gives the rest).
 */
export function networkOfRecord(att: Pick<Attachment, 'rawConfig' | 'vni' | 'dpu'>): Record<string, unknown> {
  const { network } = splitByOwner(JSON.parse(att.rawConfig) as Record<string, unknown>);
  const hwOffload = att.dpu?.config?.hwOffload;
  const dpu = network.dpu ?? (hwOffload === undefined ? undefined : { hwOffload });
  return { ...network, vni: att.vni, ...(dpu === undefined ? {} : { dpu }) };
}
