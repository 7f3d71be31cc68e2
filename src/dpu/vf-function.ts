import { DpuError } from './errors';
import { MAC_ADDRESS } from '../config/schema';
import type { Argv } from './quote';
import type { VfFunctionTarget, VfFunctionValues } from '../model/vf';

/**
 * A VF's settings as a BlueField in DPU mode takes them: on the Arm side, never through the host PF.
 * Two interfaces, both written against NVIDIA's and the kernel's documentation:
 * - devlink port function of the VF's representor (kernel 5.10+ / DOCA BSPs): `hw_addr`, `state`, and rate
 *   leaf objects `tx_share`/`tx_max` (devlink-port(8); devlink rate set, kernel commit 1897db2ec310).
 * - the older BSP's sysfs files /sys/class/net/p<N>/smart_nic/vf<M>/{mac,vport_state,max_tx_rate,min_tx_rate}
 *   and their read-back in .../config (NVIDIA BlueField BSP, "Controlling Host PF and VF Parameters").
 */

export interface VfFunctionState {
  target: VfFunctionTarget;
  values: VfFunctionValues;
}

/** The DPU's uplink: the device holding dpu.localVtep. */
export interface Uplink {
  dev: string;
  mtu: number;
}

/** What ADD asks of the DPU before it touches anything. */
export interface DpuFactsRequest {
  representor: string;
  pfIndex: number;
  vfIndex: number;
  /** Also find which VF function interface the DPU offers for this representor, with its current values (rates only if asked). */
  vfFunction?: { rates: boolean };
}

export interface DpuFacts {
  /** Undefined when no DPU device holds localVtep. */
  uplink?: Uplink;
  /** Undefined when asked not to look, or when the DPU offers neither interface (NIC mode). */
  vfFunction?: VfFunctionState;
  /** OVN mode: the tunnel endpoint the DPU's own OVN settings name (external_ids:ovn-encap-ip/-type). */
  encap?: { ip: string; type: 'geneve' | 'vxlan' };
}

/** devlink rates are bytes per second in JSON (iproute2 prints -j rates unscaled); ip link's are Mbit/s. */
const BYTES_PER_SEC_PER_MBIT = 125000;
const DEVLINK_HANDLE = /^pci\/[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]\/(0|[1-9][0-9]{0,8})$/;
const ZERO_MAC = '00:00:00:00:00:00';

export function uplinkQuery(localVtep: string): Argv {
  return ['ip', '-j', 'addr', 'show', 'to', localVtep];
}
export const DEVLINK_PORTS_QUERY: Argv = ['devlink', '-j', 'port', 'show'];
export const DEVLINK_RATES_QUERY: Argv = ['devlink', '-j', 'port', 'function', 'rate', 'show'];

function smartnicDir(pfIndex: number, vfIndex: number): string {
  return `/sys/class/net/p${pfIndex}/smart_nic/vf${vfIndex}`;
}
export function smartnicQuery(pfIndex: number, vfIndex: number): Argv {
  return ['cat', `${smartnicDir(pfIndex, vfIndex)}/config`];
}

/** Whether values asks for rates (a rate query is only worth its failure modes then). */
export function wantsRates(v: VfFunctionValues): boolean {
  return v.minTxRate !== undefined || v.maxTxRate !== undefined;
}

const DEVLINK_STATE = { enable: 'active', auto: 'active', disable: 'inactive' } as const;
const SMARTNIC_STATE = { enable: 'Up', auto: 'Follow', disable: 'Down' } as const;

/** The DPU commands that give the VF function these values (one round trip; nothing when values is empty). */
export function vfFunctionSetCommands(target: VfFunctionTarget, v: VfFunctionValues): Argv[] {
  const cmds: Argv[] = [];
  if (target.path === 'devlink') {
    if (!DEVLINK_HANDLE.test(target.handle)) throw new DpuError('bad-output', `unexpected devlink port handle ${JSON.stringify(target.handle)}`);
    const fn: string[] = [];
    if (v.mac !== undefined) fn.push('hw_addr', v.mac.toLowerCase());
    if (v.linkState !== undefined) fn.push('state', DEVLINK_STATE[v.linkState]);
    if (fn.length) cmds.push(['devlink', 'port', 'function', 'set', target.handle, ...fn]);
    const rate: string[] = [];
    if (v.minTxRate !== undefined) rate.push('tx_share', `${v.minTxRate}mbit`);
    if (v.maxTxRate !== undefined) rate.push('tx_max', `${v.maxTxRate}mbit`);
    if (rate.length) cmds.push(['devlink', 'port', 'function', 'rate', 'set', target.handle, ...rate]);
    return cmds;
  }
  const dir = smartnicDir(target.pfIndex, target.vfIndex);
  // The guard writes these files itself (no shell on the DPU side): see guard/dpu-guard.sh "smartnic-write".
  const write = (file: string, value: string): Argv => ['dpu-guard', 'smartnic-write', `${dir}/${file}`, value];
  if (v.mac !== undefined) cmds.push(write('mac', v.mac.toLowerCase()));
  if (v.linkState !== undefined) cmds.push(write('vport_state', SMARTNIC_STATE[v.linkState]));
  if (v.maxTxRate !== undefined) cmds.push(write('max_tx_rate', String(v.maxTxRate)));
  if (v.minTxRate !== undefined) cmds.push(write('min_tx_rate', String(v.minTxRate)));
  return cmds;
}

/** Splits concatenated JSON documents (devlink -j may end its output without a newline). */
export function splitJsonDocuments(text: string): unknown[] {
  const docs: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if ((c === '}' || c === ']') && depth > 0 && --depth === 0) {
      try {
        docs.push(JSON.parse(text.slice(start, i + 1)));
      } catch {
        throw new DpuError('bad-output', 'unexpected DPU output: malformed JSON');
      }
    }
  }
  return docs;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `ip -j addr show to <localVtep>`: the device holding it, if any. */
export function parseUplink(doc: unknown): Uplink | undefined {
  if (!Array.isArray(doc)) return undefined;
  const link = doc.find((l) => isRecord(l) && typeof l.ifname === 'string' && typeof l.mtu === 'number');
  return isRecord(link) ? { dev: link.ifname as string, mtu: link.mtu as number } : undefined;
}

/** `devlink -j port show`: the representor's VF port, its handle and function attributes. */
export function parseDevlinkPort(doc: unknown, representor: string): { handle: string; values: VfFunctionValues } | undefined {
  const ports = isRecord(doc) && isRecord(doc.port) ? doc.port : undefined;
  if (!ports) return undefined;
  for (const [handle, p] of Object.entries(ports)) {
    if (!isRecord(p) || p.netdev !== representor || p.flavour !== 'pcivf' || !DEVLINK_HANDLE.test(handle) || !isRecord(p.function)) continue;
    const fn = p.function;
    const values: VfFunctionValues = {};
    if (typeof fn.hw_addr === 'string' && MAC_ADDRESS.test(fn.hw_addr)) values.mac = fn.hw_addr.toLowerCase();
    if (fn.state === 'active') values.linkState = 'enable';
    else if (fn.state === 'inactive') values.linkState = 'disable';
    return { handle, values };
  }
  return undefined;
}

/** `devlink -j port function rate show`: the leaf of handle (a rate not printed is 0, unlimited). */
export function parseDevlinkRate(doc: unknown, handle: string): Pick<VfFunctionValues, 'minTxRate' | 'maxTxRate'> {
  const rates = isRecord(doc) && isRecord(doc.rate) ? doc.rate : {};
  const r = rates[handle];
  const mbit = (v: unknown) => (typeof v === 'number' && v >= 0 ? Math.round(v / BYTES_PER_SEC_PER_MBIT) : 0);
  return isRecord(r) ? { minTxRate: mbit(r.tx_share), maxTxRate: mbit(r.tx_max) } : { minTxRate: 0, maxTxRate: 0 };
}

/** smart_nic .../config ("MAC : ..", "MaxTxRate : 0", "MinTxRate : 0", "State : Follow"). */
export function parseSmartnicConfig(text: string): VfFunctionValues {
  const fields = new Map(text.split('\n').map((l) => l.split(':').map((s) => s.trim())).filter((kv) => kv.length >= 2).map((kv) => [kv[0]?.toLowerCase() ?? '', kv.slice(1).join(':')]));
  const values: VfFunctionValues = {};
  const mac = fields.get('mac');
  if (mac && MAC_ADDRESS.test(mac)) values.mac = mac.toLowerCase();
  const state = fields.get('state')?.toLowerCase();
  if (state === 'up') values.linkState = 'enable';
  else if (state === 'down') values.linkState = 'disable';
  else if (state === 'follow') values.linkState = 'auto';
  const rate = (k: string) => (/^\d{1,9}$/.test(fields.get(k) ?? '') ? Number(fields.get(k)) : undefined);
  if (rate('maxtxrate') !== undefined) values.maxTxRate = rate('maxtxrate');
  if (rate('mintxrate') !== undefined) values.minTxRate = rate('mintxrate');
  return values;
}

/** The saved values to write back: only what ADD changed, and never a zero MAC (the driver's "unset"). */
export function restoreValues(applied: VfFunctionValues, saved: VfFunctionValues): VfFunctionValues {
  const out: VfFunctionValues = {};
  if (applied.mac !== undefined) out.mac = saved.mac ?? ZERO_MAC;
  if (applied.linkState !== undefined && saved.linkState !== undefined) out.linkState = saved.linkState;
  if (applied.minTxRate !== undefined) out.minTxRate = saved.minTxRate ?? 0;
  if (applied.maxTxRate !== undefined) out.maxTxRate = saved.maxTxRate ?? 0;
  return out;
}

/** What CHECK holds the DPU to: every applied value still in place (auto reads back as enable on devlink). */
export function vfFunctionMismatch(target: VfFunctionTarget, applied: VfFunctionValues, now: VfFunctionValues): string | undefined {
  if (applied.mac !== undefined && now.mac !== applied.mac.toLowerCase()) return `MAC is ${now.mac ?? 'unset'}, expected ${applied.mac}`;
  if (applied.linkState !== undefined) {
    const want = target.path === 'devlink' && applied.linkState === 'auto' ? 'enable' : applied.linkState;
    if (now.linkState !== want) return `link state is ${now.linkState ?? 'unknown'}, expected ${want}`;
  }
  if (applied.minTxRate !== undefined && now.minTxRate !== applied.minTxRate) return `minTxRate is ${now.minTxRate ?? 'unknown'}, expected ${applied.minTxRate}`;
  if (applied.maxTxRate !== undefined && now.maxTxRate !== applied.maxTxRate) return `maxTxRate is ${now.maxTxRate ?? 'unknown'}, expected ${applied.maxTxRate}`;
  return undefined;
}
