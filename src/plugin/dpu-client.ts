import type { DpuConfig } from '../config/schema';
import type { Logger } from '../log';
import { type DpuClient, dpuTarget } from '../dpu/api';
import { DaemonDpuClient } from './daemon-dpu-client';
import { OvsDpuClient } from '../dpu/ovs/client';
import { OvnDpuClient, ovnExecTimeoutMs } from '../dpu/ovn/client';
import { SshTransport } from '../dpu/ssh';
import { withCniErrors } from './dpu-errors';

/** The plugin picks how it reaches the DPU: dpu/ knows nothing of the daemon. */
export function sshDpuClient(conf: DpuConfig, log: Logger): DpuClient {
  if (conf.controlPlane === 'ovn') return new OvnDpuClient(new SshTransport({ ...conf, timeoutMs: ovnExecTimeoutMs(conf) }), conf, log);
  return new OvsDpuClient(new SshTransport(conf), conf, log);
}

/** Through the daemon when dpu.daemonSocket is set (falling back to direct SSH), else direct. */
export function dpuClientFor(conf: DpuConfig, log: Logger): DpuClient {
  return conf.daemonSocket ? new DaemonDpuClient(conf, log, () => sshDpuClient(conf, log)) : sshDpuClient(conf, log);
}

/** One configured DPU: `dpu` (key undefined) or the `dpus` entry of PF key. */
export interface DpuChoice {
  key?: string;
  dpu: DpuConfig;
}

/** dpus[pf] only if the config has it: a PF named "constructor" must not find Object.prototype's. */
export function ownEntry(dpus: Record<string, DpuConfig> | undefined, pf: string): DpuConfig | undefined {
  return dpus !== undefined && Object.hasOwn(dpus, pf) ? dpus[pf] : undefined;
}

/** The DPU of a VF on PF pfName: its `dpus` entry, else `dpu`; undefined when neither is configured. */
export function dpuForPf(conf: { dpu?: DpuConfig; dpus?: Record<string, DpuConfig> }, pfName: string): DpuChoice | undefined {
  const own = ownEntry(conf.dpus, pfName);
  if (own) return { key: pfName, dpu: own };
  return conf.dpu ? { dpu: conf.dpu } : undefined;
}

/** Every configured DPU, each once (entries with identical settings are one DPU): what GC and STATUS visit. */
export function configuredDpus(conf: { dpu?: DpuConfig; dpus?: Record<string, DpuConfig> }): DpuChoice[] {
  const all: DpuChoice[] = [...(conf.dpu ? [{ dpu: conf.dpu }] : []), ...Object.entries(conf.dpus ?? {}).map(([key, dpu]) => ({ key, dpu }))];
  const seen = new Set<string>();
  return all.filter((c) => {
    const id = JSON.stringify(c.dpu);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * The DPU an attachment was plugged on, for DEL, CHECK and GC: the configured DPU with the recorded target
 * (user@host:port), preferring the recorded `dpus` key; without a recorded port, the recorded key (a record
 * without one, from before `dpus` existed, means `dpu`). Undefined when the config names no such DPU any more.
 */
export function dpuOfRecord(conf: { dpu?: DpuConfig; dpus?: Record<string, DpuConfig> }, rec: { dpuKey?: string; dpu?: { target: string } }): DpuChoice | undefined {
  const keyed = rec.dpuKey === undefined ? undefined : ownEntry(conf.dpus, rec.dpuKey);
  const byKey: DpuChoice | undefined = rec.dpuKey === undefined ? (conf.dpu ? { dpu: conf.dpu } : undefined) : keyed ? { key: rec.dpuKey, dpu: keyed } : undefined;
  const target = rec.dpu?.target;
  if (target === undefined || (byKey && dpuTarget(byKey.dpu) === target)) return byKey;
  return configuredDpus(conf).find((c) => dpuTarget(c.dpu) === target) ?? byKey;
}

/**
 * The DPU clients of one plugin call, one per DPU it talks to, opened on first use and closed together. plugin/
 * sees their DpuErrors as the CniErrors they map to (withCniErrors), as it sees the daemon's wire errors.
 */
export class DpuClients {
  private readonly open = new Map<string, DpuClient>();

  constructor(private readonly make: (dpu: DpuConfig) => DpuClient) {}

  get(dpu: DpuConfig): DpuClient {
    const id = JSON.stringify(dpu);
    let c = this.open.get(id);
    if (!c) {
      c = withCniErrors(this.make(dpu));
      this.open.set(id, c);
    }
    return c;
  }

  /** Starts connecting now, so the handshake overlaps the host steps. */
  warm(dpu: DpuConfig | undefined): void {
    if (dpu) this.get(dpu).warm?.();
  }

  /** The slowest connect, for the closing log line. */
  get connectMs(): number | undefined {
    const all = [...this.open.values()].flatMap((c) => (c.connectMs === undefined ? [] : [c.connectMs]));
    return all.length ? Math.max(...all) : undefined;
  }

  close(): void {
    for (const c of this.open.values()) c.close();
    this.open.clear();
  }
}
