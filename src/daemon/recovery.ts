import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { CniError } from '../cni/errors';
import { layerErrorToCni } from '../plugin/layer-errors';
import { loadNetConf } from '../config/load';
import { splitByOwner } from '../config/ownership';
import type { DpuConfig } from '../config/schema';
import { dpuTarget, type PlugRequest, type PlugResult, type UnplugRequest, type VfFunctionTarget, type VfFunctionValues } from '../dpu/api';
import type { OvsSettings } from '../dpu/ovs/commands';
import type { DpuProbe } from '../dpu/ovs/client';
import type { Logger } from '../log';
import { type Attachment, attachmentKey, StateStore } from '../store/attachments';
import { untrustedDirReason } from '../util/secure-fs';
import { elapsedMs } from '../util/time';
import { identityKey } from './connection';
import { processNetnsIdentities, recordedNetnsAlive } from '../kernel/netns';

/**
 * The daemon's DPU recovery: every pollMs it probes each DPU that the attachment records under its stateDirs
 * name (boot id, OVS database identity, container ports; one guard-allowed command) and re-plugs the ready
 * attachments whose port the DPU lost, from the records alone (no CNI call from any runtime).
 *
 * The DPUs and how to reach them come from the records, not from the requests the daemon served: a record
 * holds the DPU settings ADD used (dpu.config; older records: the network config ADD got), so recovery
 * works for attachments made before the daemon (re)started or over direct SSH, and stops with the last DEL.
 * The record and recovery model: docs/design/records-and-recovery.md.
 */

/** How recovery reaches one DPU: the daemon's warm connection for that identity. */
export interface RecoveryLink {
  probe(): Promise<DpuProbe>;
  plug(s: OvsSettings, req: PlugRequest): Promise<PlugResult>;
  unplug(s: OvsSettings, req: UnplugRequest): Promise<void>;
  /** Gives the VF function the values ADD recorded (DPU-mode VF settings; lost with the DPU's devlink state). */
  setVfFunction(s: DpuConfig, target: VfFunctionTarget, values: VfFunctionValues): Promise<void>;
}

export interface DpuIdentity {
  bootId: string;
  dbUuid: string;
}

/** What the watch of one DPU knows between polls. */
export interface WatchState {
  identity?: DpuIdentity;
  /** Set while the probe fails: since when and why. */
  down?: { since: Date; error: string };
  /** Set while re-plugging: why and how many. */
  recovering?: { reason: string; count: number };
  busy?: boolean;
  /** Attachments (by key) whose last re-plug failed or was left to a DEL/GC holding the lock: tried again. */
  retry?: Set<string>;
  /** user@host:port, for messages. */
  target?: string;
  /** Representors that more than one ready record names (see RecoveryPlan.duplicates), as STATUS words them. */
  duplicates?: string[];
}

export interface RecoveryPlan {
  /** Why anything is re-plugged (for the log), or undefined when nothing is. */
  reason?: string;
  /** Ready attachments whose port the DPU does not have (all of them after a reboot or a new database). */
  replug: Attachment[];
  /** DELs that released the host while the DPU was unreachable: their port (if still there) goes, then the record. */
  finish: Attachment[];
  /**
   * Representors that two or more ready records of this DPU name (a template that mapped two VFs to one
   * representor, or a planted record): none of them is re-plugged, or they would take the port from each other
   * at every poll. Reported until an operator DELs the wrong one.
   */
  duplicates: Array<{ representor: string; records: Attachment[] }>;
}

/** Ready records that share a representor, by representor. */
export function duplicateRepresentors(ready: readonly Attachment[]): Array<{ representor: string; records: Attachment[] }> {
  const by = new Map<string, Attachment[]>();
  for (const a of ready) {
    const rep = a.dpu?.representor;
    if (rep !== undefined) by.set(rep, [...(by.get(rep) ?? []), a]);
  }
  return [...by].filter(([, records]) => records.length > 1).map(([representor, records]) => ({ representor, records }));
}

/** The port ADD (or the last re-plug) made for att, if the DPU still has it for the same owner. */
/** OVN mode: the logical port's addresses as ADD made them, from the recorded result. */
function ovnAddressesOf(att: Attachment): Pick<PlugRequest, 'mac' | 'ips' | 'host'> {
  if (!att.dpu?.lsp) return {};
  const interfaces = att.result?.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === att.ifname);
  const mac = interfaces[index]?.mac;
  const ips = (att.result?.ips ?? []).filter((ip) => ip.interface === index).map((ip) => ip.address.replace(/\/\d+$/, ''));
  return mac ? { mac: mac.toLowerCase(), ips, host: hostname() } : {};
}

function hasPort(att: Attachment, probe: DpuProbe): boolean {
  const owner = (o: { network: string; containerId: string; ifname: string } | undefined) =>
    o !== undefined && o.network === att.network && o.containerId === att.containerId && o.ifname === att.ifname;
  if (att.dpu?.portUuid) return owner(probe.ports.get(att.dpu.portUuid));
  return [...probe.ports.values()].some(owner);
}

/** Decides, from the last known identity and a fresh probe, which records of this DPU need work. Pure. */
export function planRecovery(known: DpuIdentity | undefined, probe: DpuProbe, records: readonly Attachment[], all = false, retry: ReadonlySet<string> = new Set()): RecoveryPlan {
  const live = records.filter((a) => a.phase === 'ready' && !a.hostReleased && a.dpu);
  const duplicates = duplicateRepresentors(live);
  const shared = new Set(duplicates.flatMap((d) => d.records));
  const ready = live.filter((a) => !shared.has(a));
  const finish = records.filter((a) => a.hostReleased && a.dpu?.unplugPending);
  let reason: string | undefined;
  let replug: Attachment[];
  if (all) {
    reason = 'every ready attachment was asked for (dpu-overlay replug --all)';
    replug = ready;
  } else if (known && known.bootId !== probe.bootId) {
    reason = `the DPU rebooted (boot id ${known.bootId} -> ${probe.bootId})`;
    replug = ready;
  } else if (known && known.dbUuid !== probe.dbUuid) {
    reason = `its OVS database was created again (Open_vSwitch ${known.dbUuid} -> ${probe.dbUuid})`;
    replug = ready;
  } else {
    replug = ready.filter((a) => !hasPort(a, probe) || retry.has(attachmentKey(a.containerId, a.ifname)));
    if (replug.length) reason = `${replug.length} port(s) missing from the DPU or not re-plugged yet`;
  }
  return { reason, replug, finish, duplicates };
}

/** The DPU settings an attachment was plugged with: recorded at ADD, or read again from ADD's network config. */
export function recordedDpu(att: Attachment): DpuConfig | undefined {
  if (att.dpu?.config) return att.dpu.config;
  try {
    // A record from before the trust split carries the node's values itself; they were the node's when it was made.
    const { network, node } = splitByOwner(JSON.parse(att.rawConfig) as Record<string, unknown>);
    return loadNetConf(network, {}, { path: '(the attachment record)', values: node }).dpu;
  } catch {
    return undefined;
  }
}

export interface RecoveryOptions {
  stateDirs: readonly string[];
  pollMs: number;
  linkFor(dpu: DpuConfig): RecoveryLink;
  expectedUid?: number;
  /** Re-plug every ready attachment, not only those whose port is missing (dpu-overlay replug --all). */
  replugAll?: boolean;
  /** Counts each attachment re-plugged (metrics), by DPU target. */
  onReplugged?(target: string): void;
  /**
   * Releases an attachment whose container's network namespace is gone, as GC would (host, IPAM, DPU, record).
   * Without it such attachments are left alone, never re-plugged.
   */
  releaseGone?(att: Attachment, stillGone: () => boolean): Promise<void>;
  /** Whether an attachment's network namespace still exists (tests substitute their own). */
  netnsAlive?(att: Attachment, inProcesses: () => ReadonlySet<string>): boolean;
  /** Static mode: keeps the records' VNI bridges' tunnels in line with the node files (tunnel-follow.ts). */
  follower?: { poll(records: readonly Attachment[]): Promise<void> };
}

interface Group {
  key: string;
  dpu: DpuConfig;
  records: Array<{ att: Attachment; dpu: DpuConfig; state: StateStore }>;
}

export class DpuRecovery {
  private readonly watches = new Map<string, WatchState>();
  private readonly stores: StateStore[];
  private readonly warned = new Set<string>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** The polls still running (the recovery tick and the tunnel follower's): stop() waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly expectedUid: number;

  constructor(
    private readonly o: RecoveryOptions,
    private readonly log: Logger,
  ) {
    this.expectedUid = o.expectedUid ?? process.getuid?.() ?? 0;
    this.stores = o.stateDirs.map((d) => new StateStore(d, { expectedUid: this.expectedUid }));
  }

  start(): void {
    const tick = () => {
      if (!this.stopped) this.track(this.tick().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'DPU recovery poll failed')));
    };
    this.timer = setInterval(tick, this.o.pollMs);
    tick();
  }

  /** No poll starts after this; resolves once the polls already running are done (a stopping daemon must not outlive them). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /**
   * The attachments of plan whose container still exists. The others (a host power cycle took their namespaces,
   * the runtime has not sent DEL yet) are not re-plugged: their ports would come back for dead pods. They are
   * released as GC would release them, outside the lock (DEL takes it); one that fails is tried at the next poll.
   */
  private async withoutGoneContainers(target: string, replug: Attachment[], stateOf: (att: Attachment) => StateStore | undefined): Promise<Attachment[]> {
    if (replug.length === 0) return replug;
    let seen: ReadonlySet<string> | undefined;
    const inProcesses = () => (seen ??= processNetnsIdentities());
    const alive = this.o.netnsAlive ?? recordedNetnsAlive;
    const live: Attachment[] = [];
    const gone: Attachment[] = [];
    for (const att of replug) (alive(att, inProcesses) ? live : gone).push(att);
    for (const att of gone) {
      const fields = { dpu: target, containerId: att.containerId, ifname: att.ifname, netns: att.netns };
      if (!this.o.releaseGone) {
        this.warnOnce(`gone ${att.containerId} ${att.ifname}`, fields, 'not re-plugging an attachment whose container network namespace is gone; its DEL or GC releases it');
        continue;
      }
      try {
        // Judged from this poll's reading; the release waits behind the attachment's other commands, and a runtime
        // may meanwhile have re-ADDed the same container and ifname in a live namespace: that record is not released.
        const stillGone = () => {
          const now = stateOf(att)?.loadAttachment(att.containerId, att.ifname);
          return now !== undefined && now.netns === att.netns && now.netnsId === att.netnsId && !alive(now, () => processNetnsIdentities());
        };
        await this.o.releaseGone(att, stillGone);
        this.log.info(fields, 'released an attachment whose container network namespace is gone instead of re-plugging it');
      } catch (err) {
        this.log.error({ ...fields, err: (err as Error).message }, 'releasing an attachment whose container is gone failed; tried again at the next poll');
      }
    }
    return live;
  }

  /** What the watch of each DPU knows, for the daemon's status. */
  views(): Array<{ target: string; bootId?: string; down?: { since: string; error: string }; recovering?: { reason: string; count: number } }> {
    return [...this.watches.values()].flatMap((w) =>
      w.target ? [{ target: w.target, ...(w.identity ? { bootId: w.identity.bootId } : {}), ...(w.down ? { down: { since: w.down.since.toISOString(), error: w.down.error } } : {}), ...(w.recovering ? { recovering: w.recovering } : {}) }] : [],
    );
  }

  /** Why STATUS must say the DPU is not available (code 50), or undefined. */
  problem(dpu: DpuConfig): string | undefined {
    const w = this.watches.get(identityKey(dpu));
    return w && (w.down || w.recovering || w.duplicates?.length) ? this.describe(dpuTarget(dpu), w) : undefined;
  }

  /** Every DPU that is down, still being recovered or has records sharing a representor, as STATUS would word it. */
  problems(): string[] {
    return [...this.watches.values()].flatMap((w) => (w.target && (w.down || w.recovering || w.duplicates?.length) ? [this.describe(w.target, w)] : []));
  }

  private describe(target: string, w: WatchState): string {
    if (!w.down && !w.recovering && w.duplicates?.length) return `DPU ${target}: ${w.duplicates.join('; ')}`;
    if (w.down) return `DPU ${target} is not available: it has not answered the dpu-overlay daemon's probe since ${w.down.since.toISOString()}: ${w.down.error}`;
    return `DPU ${target} is not available yet: the dpu-overlay daemon is re-plugging ${w.recovering?.count ?? 0} attachment(s) because ${w.recovering?.reason ?? '?'}`;
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, msg);
  }

  /** The records of every stateDir we may trust, grouped by the DPU connection they need. */
  private groups(): Group[] {
    const groups = new Map<string, Group>();
    for (const state of this.stores) {
      if (!existsSync(state.attachmentsDir)) continue;
      const why = untrustedDirReason(state.dir, this.expectedUid) ?? untrustedDirReason(state.attachmentsDir, this.expectedUid);
      if (why) {
        this.warnOnce(`dir ${state.dir}`, { stateDir: state.dir, problem: why }, 'not watching the attachments of an untrusted stateDir (fix: chown root: and chmod 700 it)');
        continue;
      }
      for (const att of state.scanAttachments().records) {
        if (!att.dpu) continue;
        const dpu = recordedDpu(att);
        if (!dpu) {
          this.warnOnce(`att ${state.dir} ${att.containerId} ${att.ifname}`, { containerId: att.containerId, ifname: att.ifname }, 'attachment record names no usable DPU settings; it will not be re-plugged after a DPU reset');
          continue;
        }
        const key = identityKey(dpu);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { key, dpu, records: [] }));
        g.records.push({ att, dpu, state });
      }
    }
    return [...groups.values()];
  }

  /** One poll of every DPU not still busy with the last one. Exposed for tests. */
  async tick(): Promise<void> {
    const groups = this.groups();
    const live = new Set(groups.map((g) => g.key));
    for (const key of this.watches.keys()) if (!live.has(key)) this.watches.delete(key);
    await Promise.all(
      groups.map(async (g) => {
        let w = this.watches.get(g.key);
        if (!w) this.watches.set(g.key, (w = {}));
        if (w.busy) return;
        w.busy = true;
        try {
          await this.watch(g, w);
        } finally {
          w.busy = false;
        }
      }),
    );
    // Not awaited: a slow DPU must not hold up the next recovery poll (the follower skips while busy).
    if (this.o.follower && !this.stopped) this.track(this.o.follower.poll(groups.flatMap((g) => g.records.map((r) => r.att))).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'tunnel follow poll failed')));
  }

  private async watch(g: Group, w: WatchState): Promise<void> {
    const target = dpuTarget(g.dpu);
    w.target = target;
    const link = this.o.linkFor(g.dpu);
    let probe: DpuProbe;
    try {
      probe = await link.probe();
    } catch (err) {
      const error = (err as Error).message;
      if (!w.down) this.log.warn({ dpu: target, err: error, attachments: g.records.length }, 'DPU does not answer the recovery probe; STATUS reports it unavailable');
      w.down = { since: w.down?.since ?? new Date(), error };
      return;
    }
    if (w.down) this.log.info({ dpu: target, downSince: w.down.since.toISOString() }, 'DPU answers again');
    const plan = planRecovery(w.identity, probe, g.records.map((r) => r.att), this.o.replugAll, w.retry);
    this.reportDuplicates(w, target, plan.duplicates);
    const stores = new Map(g.records.map((r) => [r.att, r.state]));
    plan.replug = await this.withoutGoneContainers(target, plan.replug, (att) => stores.get(att));
    // Identity is taken now: what fails below is retried by key, not by re-plugging everything again.
    const changed = w.identity?.bootId !== probe.bootId || w.identity.dbUuid !== probe.dbUuid;
    w.identity = { bootId: probe.bootId, dbUuid: probe.dbUuid };
    if (changed) this.log.info({ dpu: target, bootId: probe.bootId, dbUuid: probe.dbUuid, attachments: g.records.length }, 'watching DPU identity');
    if (plan.replug.length || plan.finish.length) {
      w.recovering = { reason: plan.reason ?? 'DELs made while it was unreachable are pending', count: plan.replug.length };
      const t0 = performance.now();
      const byAtt = new Map(g.records.map((r) => [r.att, r]));
      const replugged = await Promise.all(plan.replug.map((a) => this.replug(link, byAtt.get(a) as Group['records'][number])));
      w.retry = new Set(plan.replug.filter((_a, k) => replugged[k] !== 'replugged').map((a) => attachmentKey(a.containerId, a.ifname)));
      const results = [...replugged, ...(await Promise.all(plan.finish.map((a) => this.finishDel(link, byAtt.get(a) as Group['records'][number], probe))))];
      const failed = results.filter((r) => r === 'failed').length;
      this.log.info({ dpu: target, reason: plan.reason, replugged: results.filter((r) => r === 'replugged').length, delsFinished: results.filter((r) => r === 'finished').length, skipped: results.filter((r) => r === 'skipped').length, failed, ms: elapsedMs(t0) }, 'DPU recovery pass');
      // A failed or skipped attachment is tried again at the next poll: its port is still missing then.
      if (failed) {
        w.down = { since: w.down?.since ?? new Date(), error: `re-plugging failed for ${failed} attachment(s); see the daemon log` };
        return;
      }
    }
    w.down = undefined;
    w.recovering = undefined;
  }

  private reportDuplicates(w: WatchState, target: string, duplicates: RecoveryPlan['duplicates']): void {
    w.duplicates = duplicates.map((d) => `representor ${d.representor} is named by ${d.records.length} attachment records (${d.records.map((a) => `container ${a.containerId} ifname ${a.ifname} network ${a.network}`).join(', ')}): none is re-plugged; DEL the attachment that should not have it`);
    for (const [k, d] of duplicates.entries()) {
      const key = `dup ${target} ${d.representor} ${d.records.map((a) => attachmentKey(a.containerId, a.ifname)).sort().join(' ')}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.log.error({ dpu: target, representor: d.representor, attachments: d.records.map((a) => ({ containerId: a.containerId, ifname: a.ifname, network: a.network })) }, w.duplicates[k] as string);
    }
  }

  /** Plugs att again under its lock, as it is recorded then; records the new port UUID. */
  private async replug(link: RecoveryLink, r: Group['records'][number]): Promise<'replugged' | 'skipped' | 'failed'> {
    const { att: seen, state } = r;
    let unlock: (() => void) | undefined;
    try {
      unlock = state.tryLock(seen.containerId, seen.ifname);
      if (!unlock) return 'skipped'; // DEL or GC is on it: retried at the next poll
      const att = state.loadAttachment(seen.containerId, seen.ifname);
      if (!att?.dpu || att.phase !== 'ready' || att.hostReleased || att.dpu.portUuid !== seen.dpu?.portUuid) return 'skipped';
      const req: PlugRequest = { network: att.network, vni: att.vni, containerId: att.containerId, ifname: att.ifname, netns: att.netns, representor: att.dpu.representor, mtu: att.mtu, ...ovnAddressesOf(att) };
      const { bridge, portUuid, lsp } = await link.plug(r.dpu, req);
      att.dpu = { ...att.dpu, bridge, portUuid, ...(lsp ? { lsp } : {}) };
      state.saveAttachment(att);
      // The DPU's devlink state (MAC, link state, rates of the VF function) does not survive what lost the port.
      const fn = att.vfFunction;
      if (fn) await link.setVfFunction(r.dpu, fn.target, fn.applied);
      this.log.info({ containerId: att.containerId, ifname: att.ifname, representor: req.representor, bridge, portUuid, vfFunction: fn ? fn.applied : undefined }, 're-plugged attachment');
      this.o.onReplugged?.(dpuTarget(r.dpu));
      return 'replugged';
    } catch (err) {
      const cni = layerErrorToCni(err);
      this.log.error({ containerId: seen.containerId, ifname: seen.ifname, err: (err as Error).message, code: cni instanceof CniError ? cni.code : undefined }, 're-plugging failed');
      return 'failed';
    } finally {
      unlock?.();
    }
  }

  /**
   * Completes a DEL that gave back the host side while the DPU could not be reached: removes its port if the DPU
   * still has it, then the record. The runtime's next DEL then finds nothing left and succeeds.
   */
  private async finishDel(link: RecoveryLink, r: Group['records'][number], probe: DpuProbe): Promise<'finished' | 'skipped' | 'failed'> {
    const { att: seen, state } = r;
    let unlock: (() => void) | undefined;
    try {
      unlock = state.tryLock(seen.containerId, seen.ifname);
      if (!unlock) return 'skipped';
      const att = state.loadAttachment(seen.containerId, seen.ifname);
      if (!att?.dpu?.unplugPending || !att.hostReleased) return 'skipped';
      if (hasPort(att, probe)) {
        await link.unplug(r.dpu, { network: att.network, vni: att.vni, containerId: att.containerId, ifname: att.ifname, representor: att.dpu.representor, portUuid: att.dpu.portUuid });
      }
      state.removeAttachment(att.containerId, att.ifname);
      this.log.info({ containerId: att.containerId, ifname: att.ifname }, 'finished a DEL the DPU outage had interrupted');
      return 'finished';
    } catch (err) {
      this.log.error({ containerId: seen.containerId, ifname: seen.ifname, err: (err as Error).message }, 'finishing an interrupted DEL failed');
      return 'failed';
    } finally {
      unlock?.();
    }
  }
}
