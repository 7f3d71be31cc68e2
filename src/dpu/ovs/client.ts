import { DpuError, DpuPortOwned } from '../errors';
import type { Logger } from '../../log';
import type { DpuClient, OwnedPort, PlugRequest, PlugResult, PortOwner, Reclaim, UnplugRequest } from '../api';
import {
  bridgeName, checkCommand, EXT, expectedTunnels, findOwnerPortsCommand, isOwnedBy, OFFLOADED_FLOWS_COMMAND, type OvsSettings, PLUG_OUTPUTS,
  plugBatchCommands, plugCommands, portByNameCommand, probeCommands, removeBridgeIfUnchangedCommand, removePortsBatchCommands, removePortsCommands, statusCommand, UNPLUG_OUTPUTS,
} from './commands';
import { assertUuid, hwOffloadValue, mapOf, type OvsTable, parseBridgeUsage, parseTables, rows, uuidOf, uuidSet } from './parse';
import { type Argv, commandLine } from '../quote';
import { describeDiff, differs, reconcileCommands, TUNNEL_QUERY_OUTPUTS, type TunnelDiff, tunnelDiff, tunnelQueries, tunnelQueryCommand, type TunnelTarget } from './tunnels';
import type { DpuTransport, ExecResult } from '../ssh';
import {
  DEVLINK_PORTS_QUERY, DEVLINK_RATES_QUERY, type DpuFacts, type DpuFactsRequest, parseDevlinkPort, parseDevlinkRate, parseSmartnicConfig, parseUplink,
  smartnicQuery, splitJsonDocuments, uplinkQuery, type VfFunctionState, vfFunctionSetCommands,
} from '../vf-function';
import type { VfFunctionTarget, VfFunctionValues } from '../../model/vf';

/** What the daemon's recovery probe sees on a DPU. */
export interface DpuProbe {
  bootId: string;
  /** The Open_vSwitch row's UUID: new when the database was created again. */
  dbUuid: string;
  /** Container ports by port UUID, with their owner. */
  ports: Map<string, PortOwner>;
}

/** An ovs-vsctl or ovsdb-client failure saying a Port or Interface of that name exists (OVS's unique name index). */
export function isNameTaken(stderr: string): boolean {
  return /constraint violation/.test(stderr) && /index on column \\?"name\\?"|identical values/.test(stderr);
}

/** The ovs-vsctl tables of a line whose owner-checked removals (ovsdb-client) printed their result lines first. */
function withoutResults(out: Array<OvsTable | string>): Array<OvsTable | string> {
  return out.filter((o) => !(typeof o === 'string' && o.startsWith('[')));
}

/** A port of the representor's name, as find Port name=... shows it. */
export interface NamedPort {
  uuid: string;
  name: string;
  ids: Record<string, string>;
}

/**
 * A plug found a port of its representor's name: the removal to ask for first (its own earlier port: an interrupted
 * or repeated ADD, a re-plug; or the stale owner the plugin named in req.reclaim), else an error. Never another
 * attachment's port unasked, never a port dpu-overlay did not make.
 */
export function reclaimFor(target: string, req: PlugRequest, holder: NamedPort): Reclaim {
  const ids = holder.ids;
  if (ids[EXT.role] !== 'container' || ids[EXT.container] === undefined || ids[EXT.ifname] === undefined || ids[EXT.network] === undefined) {
    throw new DpuError('name-conflict', `DPU ${target}: an OVS port named ${req.representor} exists that dpu-overlay did not make (it has no dpu-overlay owner external_ids): remove it on the DPU (ovs-vsctl del-port ${req.representor}) if nothing uses it`);
  }
  const owner = { network: ids[EXT.network], containerId: ids[EXT.container], ifname: ids[EXT.ifname] };
  if (isOwnedBy(ids, req)) return { ...owner, portUuid: holder.uuid };
  const r = req.reclaim;
  if (r && r.portUuid === holder.uuid && isOwnedBy(ids, r)) return { ...owner, portUuid: holder.uuid };
  throw new DpuPortOwned(target, req.representor, { ...owner, portUuid: holder.uuid });
}

/** A VNI bridge an unplug left without container ports, as that transaction saw it. */
export interface EmptyBridge {
  bridge: string;
  bridgeUuid: string;
  /** Its ports then (tunnels and internal port): the removal only goes ahead if they are still exactly these. */
  ports: string[];
}

/**
 * Takes over the removal of emptied VNI bridges so that the DEL does not wait for it (the daemon removes them after
 * a grace period). Without one, the unplug removes the bridge itself before it returns.
 */
export interface EmptyBridgeSink {
  emptied(client: OvsDpuClient, b: EmptyBridge): void;
}

/** DpuClient over one DPU transport: every request is one ovs-vsctl transaction (see commands.ts). */
export class OvsDpuClient implements DpuClient {
  readonly target: string;

  constructor(
    private readonly transport: DpuTransport,
    private readonly s: OvsSettings,
    private readonly log: Logger,
    private readonly emptyBridges?: EmptyBridgeSink,
  ) {
    this.target = transport.target;
  }

  private async run(step: string, commands: readonly Argv[], done?: ExecResult): Promise<Array<OvsTable | string>> {
    const r = done ?? (await this.transport.exec(commandLine(commands)));
    if (r.exitCode !== 0) {
      const stderr = r.stderr.trim().slice(0, 600);
      if (/wait-until|timeout/.test(stderr) && this.s.hwOffload === 'require' && step === 'plug') {
        throw new DpuError('offload-required-missing', `DPU ${this.target}: hwOffload is "require" but other_config:hw-offload is not true; run on the DPU: ovs-vsctl set Open_vSwitch . other_config:hw-offload=true and restart openvswitch`);
      }
      throw new DpuError('command-failed', `DPU ${this.target}: ${step} failed (exit ${r.exitCode}): ${stderr || r.stdout.trim().slice(0, 300)}`);
    }
    try {
      return parseTables(r.stdout);
    } catch {
      throw new DpuError('bad-output', `DPU ${this.target}: ${step}: unexpected ovs-vsctl output`);
    }
  }

  async plug(req: PlugRequest): Promise<PlugResult> {
    for (let attempt = 1; ; attempt++) {
      const targets = [{ bridge: bridgeName(this.s.bridgePrefix, req.vni), vni: req.vni }];
      // The tunnels are read at the end of the plug's own transaction: one ovs-vsctl run per ADD, not two.
      const { commands: line, bridge } = plugCommands(this.s, req, tunnelQueries(targets));
      const r = await this.transport.exec(commandLine(line));
      if (r.exitCode === 0) {
        const out = this.tables('plug', r.stdout);
        await this.afterPlug(targets, out.slice(PLUG_OUTPUTS));
        return this.plugResult(bridge, out.slice(0, PLUG_OUTPUTS));
      }
      if (attempt > 2 || !isNameTaken(r.stderr)) await this.run('plug', line, r);
      req = await this.withReclaim(req);
    }
  }

  /** The plug again, first removing the port of its name that is in the way if that port may go (see reclaimFor). */
  async withReclaim(req: PlugRequest): Promise<PlugRequest> {
    const holder = await this.portNamed(req.representor);
    const { reclaim: _old, ...plain } = req;
    if (!holder) return plain;
    const reclaim = reclaimFor(this.target, req, holder);
    this.log.info({ dpu: this.target, representor: req.representor, portUuid: holder.uuid, owner: reclaim }, 'replacing the representor\'s earlier port');
    return { ...plain, reclaim };
  }

  async portNamed(name: string): Promise<NamedPort | undefined> {
    const [table] = await this.run('find port', [portByNameCommand(this.s, name)]);
    const row = rows(table)[0];
    return row ? { uuid: uuidOf(row._uuid) as string, name: String(row.name), ids: mapOf(row.external_ids) } : undefined;
  }

  /** ovs-vsctl's tables from a line that may begin with ovsdb-client result lines (the owner-checked removals). */
  private tables(step: string, stdout: string): Array<OvsTable | string> {
    try {
      return parseTables(stdout.split('\n').filter((l) => !l.startsWith('[')).join('\n'));
    } catch {
      throw new DpuError('bad-output', `DPU ${this.target}: ${step}: unexpected ovs-vsctl output`);
    }
  }

  /**
   * The plug made every configured tunnel; the reading at the end of its transaction shows the ones to remotes no
   * longer configured. Those existed before it, so their UUIDs are real (only rows the transaction made have
   * temporary ones there, and those are the configured tunnels, which are never removed).
   */
  private async afterPlug(targets: TunnelTarget[], tables: Array<OvsTable | string>): Promise<void> {
    if (tables.length !== targets.length * TUNNEL_QUERY_OUTPUTS) return;
    try {
      await this.reconcileTunnels(targets, tables);
    } catch (err) {
      // The container's port is in place: a tunnel left over is removed by the next ADD, CHECK or GC.
      this.log.warn({ dpu: this.target, err: (err as Error).message }, 'could not remove tunnels to VTEPs no longer configured');
    }
  }

  /**
   * Static mode: brings VNI bridges' tunnels in line with remoteVteps (missing or renumbered ones made again,
   * those to remotes no longer listed removed, owner-checked). Returns what differed before; a bridge that does
   * not exist is left alone. tables: a tunnelQueryCommand reading already made.
   */
  async reconcileTunnels(targets: readonly TunnelTarget[], tables?: Array<OvsTable | string>): Promise<TunnelDiff[]> {
    if (targets.length === 0) return [];
    const out = tables ?? (await this.run('read tunnels', [tunnelQueryCommand(this.s, targets)]));
    const diffs = targets.map((t, k) => tunnelDiff(this.s, t, out.slice(k * TUNNEL_QUERY_OUTPUTS, (k + 1) * TUNNEL_QUERY_OUTPUTS)));
    const commands = reconcileCommands(this.s, diffs);
    if (commands.length === 0) return diffs;
    // The guard takes at most 66 commands per line.
    const res: Array<OvsTable | string> = [];
    for (let k = 0; k < commands.length; k += 60) res.push(...(await this.run('reconcile tunnels', commands.slice(k, k + 60))));
    const kept = res.filter((o) => typeof o === 'string' && o.includes('"error"')).length;
    for (const d of diffs.filter(differs)) {
      this.log.info({ dpu: this.target, bridge: d.bridge, added: [...d.missing, ...d.stale], removed: d.extra.map((t) => t.remote), changedMeanwhile: kept || undefined }, 'VNI bridge tunnels reconciled with remoteVteps');
    }
    return diffs;
  }

  /** Several plugs in one transaction; if it fails, nothing was applied and each should be retried alone. */
  async plugBatch(reqs: readonly PlugRequest[]): Promise<PlugResult[]> {
    // A reclaim is settled alone (its port's owner is checked there); the batch fails as a whole on a taken name.
    let targets: TunnelTarget[] = [];
    const { commands, bridges } = plugBatchCommands(this.s, reqs, (names) => {
      targets = [...new Map(reqs.map((r, k) => [names[k] as string, { bridge: names[k] as string, vni: r.vni }])).values()];
      return tunnelQueries(targets);
    });
    const all = await this.run('plug', commands);
    const out = all.slice(0, reqs.length * PLUG_OUTPUTS);
    if (all.length !== (reqs.length * PLUG_OUTPUTS) + (targets.length * TUNNEL_QUERY_OUTPUTS)) throw new DpuError('bad-output', `DPU ${this.target}: plug: unexpected ovs-vsctl output`);
    await this.afterPlug(targets, all.slice(out.length));
    return bridges.map((bridge, k) => this.plugResult(bridge, out.slice(k * PLUG_OUTPUTS, (k + 1) * PLUG_OUTPUTS)));
  }

  private plugResult(bridge: string, out: Array<OvsTable | string>): PlugResult {
    const [, portUuid] = out.filter((o): o is string => typeof o === 'string');
    const before = hwOffloadValue(out.find((o) => typeof o !== 'string'));
    if (this.s.hwOffload === 'enable' && before !== 'true') {
      this.log.warn({ dpu: this.target }, 'set other_config:hw-offload=true on the DPU; it takes effect after ovs-vswitchd restarts (systemctl restart openvswitch-switch)');
    }
    return { bridge, portUuid: assertUuid(portUuid, 'port') };
  }

  /**
   * Deletes the bridge when only its tunnels and internal port remain, unless a concurrent ADD got there first;
   * handed to the sink instead when there is one and the caller (a DEL) should not wait for it.
   */
  private async removeBridgeIfUnused(bridge: string, tables: Array<OvsTable | string>, deferrable: boolean): Promise<void> {
    const usage = parseBridgeUsage(tables);
    if (!usage.bridgeUuid || usage.containerPorts.length > 0) return;
    const empty = { bridge, bridgeUuid: usage.bridgeUuid, ports: usage.ports };
    if (deferrable && this.emptyBridges) this.emptyBridges.emptied(this, empty);
    else await this.removeEmptyBridge(empty, 'removed VNI bridge with its last container');
  }

  /** One transaction: the bridge goes only if its ports are still those it had when it was seen empty. True if it went. */
  async removeEmptyBridge(b: EmptyBridge, removedMsg: string): Promise<boolean> {
    const command = [removeBridgeIfUnchangedCommand(b.bridgeUuid, b.ports)];
    const r = await this.transport.exec(commandLine(command));
    if (r.exitCode !== 0) await this.run('remove empty bridge', command, r);
    const kept = r.stdout.includes('"error"');
    this.log.info({ dpu: this.target, bridge: b.bridge, removed: !kept }, kept ? 'VNI bridge changed since it was seen empty (a port was added); kept' : removedMsg);
    return !kept;
  }

  private async ownerPorts(filter: Partial<PortOwner> & { vni?: number }): Promise<Array<{ uuid: string; name: string; ids: Record<string, string> }>> {
    const [table] = await this.run('find ports', [findOwnerPortsCommand(this.s, filter)]);
    return rows(table).map((r) => ({ uuid: uuidOf(r._uuid) as string, name: String(r.name), ids: mapOf(r.external_ids) }));
  }

  async unplug(req: UnplugRequest): Promise<void> {
    const bridge = bridgeName(this.s.bridgePrefix, req.vni);
    const owner = { containerId: req.containerId, ifname: req.ifname, network: req.network };
    const ports: OwnedPort[] = req.portUuid
      ? [{ uuid: req.portUuid, name: req.representor, owner }]
      : (await this.ownerPorts(owner)).map((p) => ({ uuid: p.uuid, name: p.name, owner }));
    if (ports.length === 0) return;
    await this.removeBridgeIfUnused(bridge, withoutResults(await this.run('unplug', removePortsCommands(this.s, bridge, req.vni, ports))), true);
  }

  /**
   * Several unplugs by port UUID in one line. The usage tables are read after all removals, so only the last
   * request on a bridge decides whether it goes. On failure the removals already made stay made (each is its own
   * transaction, and repeating one is a no-op).
   */
  async unplugBatch(reqs: ReadonlyArray<UnplugRequest & { portUuid: string }>): Promise<void[]> {
    const items = reqs.map((r) => ({ bridge: bridgeName(this.s.bridgePrefix, r.vni), vni: r.vni, port: { uuid: r.portUuid, name: r.representor, owner: { containerId: r.containerId, ifname: r.ifname, network: r.network } } }));
    const out = withoutResults(await this.run('unplug', removePortsBatchCommands(this.s, items)));
    if (out.length !== reqs.length * UNPLUG_OUTPUTS) throw new DpuError('bad-output', `DPU ${this.target}: unplug: unexpected ovs-vsctl output`);
    const last = new Map(items.map((item, k) => [item.bridge, k]));
    for (const [bridge, k] of last) await this.removeBridgeIfUnused(bridge, out.slice(k * UNPLUG_OUTPUTS, (k + 1) * UNPLUG_OUTPUTS), true);
    return items.map(() => undefined);
  }

  async check(req: PlugRequest): Promise<void> {
    const bridge = bridgeName(this.s.bridgePrefix, req.vni);
    const target = { bridge, vni: req.vni };
    const [bridgeT, portT, tunnelsT, ovsT, ...tunnelTables] = await this.run('check', [checkCommand(this.s, bridge, req.vni, req.representor), tunnelQueryCommand(this.s, [target])]);
    const fail = (msg: string) => new DpuError('check-mismatch', `DPU ${this.target}: ${msg}`);
    const br = rows(bridgeT)[0];
    if (!br) throw fail(`VNI bridge ${bridge} does not exist (removed behind the plugin's back?); DEL and ADD the container again`);
    const port = rows(portT)[0];
    if (!port) throw fail(`representor ${req.representor} has no OVS port`);
    if (!uuidSet(br.ports).includes(uuidOf(port._uuid) ?? '')) throw fail(`representor ${req.representor} is not on bridge ${bridge}`);
    const ids = mapOf(port.external_ids);
    if (!isOwnedBy(ids, req)) throw fail(`port ${req.representor} belongs to container ${ids[EXT.container] ?? '?'} ifname ${ids[EXT.ifname] ?? '?'}, not ${req.containerId} ${req.ifname}`);
    const present = new Map(rows(tunnelsT).map((r) => [String(r.name), mapOf(r.options).remote_ip]));
    const diff = tunnelDiff(this.s, target, tunnelTables);
    if (differs(diff)) {
      // Reported, and repaired so the bridge follows the configuration as after an ADD.
      const repaired = await this.reconcileTunnels([target], tunnelTables).then(() => 'reconciled now', (err: unknown) => `not reconciled: ${(err as Error).message}`);
      throw fail(`${describeDiff(diff)} (VNI ${req.vni}; ${repaired})`);
    }
    for (const [name, remote] of expectedTunnels(this.s, req.vni)) {
      if (present.get(name) !== remote) throw fail(`VXLAN tunnel ${name} to ${remote} (VNI ${req.vni}) is missing`);
    }
    const hw = hwOffloadValue(ovsT);
    if (this.s.hwOffload === 'require' && hw !== 'true') throw fail('hwOffload is "require" but other_config:hw-offload is not true');
    await this.logOffloadedFlows();
  }

  private async logOffloadedFlows(): Promise<void> {
    const r = await this.transport.exec(commandLine([OFFLOADED_FLOWS_COMMAND]));
    const flows = r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.trim() !== '').length : undefined;
    this.log.info({ dpu: this.target, offloadedFlows: flows }, r.exitCode === 0 ? 'offloaded flows on the DPU' : 'cannot count offloaded flows');
  }

  async gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number> {
    const valid = new Set(keep.map((k) => `${k.containerId}/${k.ifname}`));
    const stale = (await this.ownerPorts({ network })).filter((p) => !valid.has(`${p.ids[EXT.container]}/${p.ids[EXT.ifname]}`));
    const byVni = new Map<number, OwnedPort[]>();
    for (const p of stale) {
      const v = Number(p.ids[EXT.vni] ?? vni);
      const owner = { network: p.ids[EXT.network] ?? network, containerId: p.ids[EXT.container] ?? '', ifname: p.ids[EXT.ifname] ?? '' };
      byVni.set(v, [...(byVni.get(v) ?? []), { uuid: p.uuid, name: p.name, owner }]);
    }
    // The network's own bridge is looked at even with nothing stale: one a daemon meant to remove after its grace
    // period, and did not (it was killed), goes here.
    if (!byVni.has(vni)) byVni.set(vni, []);
    for (const [v, ports] of byVni) {
      const bridge = bridgeName(this.s.bridgePrefix, v);
      await this.removeBridgeIfUnused(bridge, withoutResults(await this.run('gc', removePortsCommands(this.s, bridge, v, ports))), false);
    }
    // The bridges GC touches follow remoteVteps: without a daemon this is how a node file edit reaches them.
    const vnis = new Set([vni, ...byVni.keys()]);
    try {
      await this.reconcileTunnels([...vnis].map((v) => ({ bridge: bridgeName(this.s.bridgePrefix, v), vni: v })));
    } catch (err) {
      // GC's own work is done; the tunnels are tried again by the next ADD, CHECK or GC.
      this.log.warn({ dpu: this.target, err: (err as Error).message }, 'could not reconcile VNI bridge tunnels with remoteVteps');
    }
    return stale.length;
  }

  async status(): Promise<void> {
    const hw = await this.hwOffloadState();
    if (this.s.hwOffload === 'require' && hw !== 'true') {
      throw new DpuError('offload-required-missing', `DPU ${this.target}: hwOffload is "require" but other_config:hw-offload is not true`);
    }
  }

  /** other_config:hw-offload of the DPU's OVS (STATUS's command), undefined when unset. */
  async hwOffloadState(): Promise<string | undefined> {
    const [ovsT] = await this.run('status', [statusCommand(this.s)]);
    return hwOffloadValue(ovsT);
  }

  /** One round trip: boot id, database identity and container ports (the daemon's recovery watch). */
  async probe(): Promise<DpuProbe> {
    const [bootId, ovsT, portT] = await this.run('probe', probeCommands(this.s));
    const dbUuid = uuidOf(rows(ovsT)[0]?._uuid);
    if (typeof bootId !== 'string' || !/^[0-9a-f-]{36}$/.test(bootId) || !dbUuid) throw new DpuError('bad-output', `DPU ${this.target}: probe: unexpected output`);
    const ports = new Map<string, PortOwner>();
    for (const r of rows(portT)) {
      const ids = mapOf(r.external_ids);
      const uuid = uuidOf(r._uuid);
      if (uuid) ports.set(uuid, { network: ids[EXT.network] ?? '', containerId: ids[EXT.container] ?? '', ifname: ids[EXT.ifname] ?? '' });
    }
    return { bootId, dbUuid, ports };
  }

  /**
   * The uplink and the devlink port of the representor in one round trip; a second one only for a DPU whose
   * devlink does not show that port (the older BSP's smart_nic files, or NIC mode).
   */
  async facts(req: DpuFactsRequest): Promise<DpuFacts> {
    if (this.s.localVtep === undefined) throw new DpuError('bad-config', 'invalid network config: dpu.localVtep: not set (required with controlPlane "static")');
    const commands = [uplinkQuery(this.s.localVtep)];
    if (req.vfFunction) commands.push(DEVLINK_PORTS_QUERY, ...(req.vfFunction.rates ? [DEVLINK_RATES_QUERY] : []));
    const r = await this.transport.exec(commandLine(commands));
    // The && chain stops at the first failure: what ran before it is still in stdout (a DPU without devlink).
    const docs = r.exitCode === 126 && /dpu-guard: refused/.test(r.stderr) ? [] : splitJsonDocuments(r.stdout);
    if (docs.length === 0) {
      throw new DpuError('command-failed', `DPU ${this.target}: uplink query failed (exit ${r.exitCode}): ${r.stderr.trim().slice(0, 600)}${r.exitCode === 126 ? ' (is guard/dpu-guard.sh on the DPU as new as the plugin?)' : ''}`);
    }
    const facts: DpuFacts = { uplink: parseUplink(docs[0]) };
    if (req.vfFunction) facts.vfFunction = this.devlinkFunction(docs, req.representor) ?? (await this.smartnicFunction(req.pfIndex, req.vfIndex));
    return facts;
  }

  private devlinkFunction(docs: unknown[], representor: string): VfFunctionState | undefined {
    const port = parseDevlinkPort(docs[1], representor);
    if (!port) return undefined;
    const rates = docs.length > 2 ? parseDevlinkRate(docs[2], port.handle) : {};
    return { target: { path: 'devlink', handle: port.handle }, values: { ...port.values, ...rates } };
  }

  private async smartnicFunction(pfIndex: number, vfIndex: number): Promise<VfFunctionState | undefined> {
    const r = await this.transport.exec(commandLine([smartnicQuery(pfIndex, vfIndex)]));
    if (r.exitCode !== 0) return undefined;
    return { target: { path: 'smartnic', pfIndex, vfIndex }, values: parseSmartnicConfig(r.stdout) };
  }

  async setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    const commands = vfFunctionSetCommands(target, values);
    if (commands.length === 0) return;
    const r = await this.transport.exec(commandLine(commands));
    if (r.exitCode !== 0) {
      throw new DpuError('command-failed', `DPU ${this.target}: setting the VF function (${target.path}) failed (exit ${r.exitCode}): ${(r.stderr.trim() || r.stdout.trim()).slice(0, 600)}`);
    }
  }

  warm(): void {
    this.transport.warm?.();
  }

  get connectMs(): number | undefined {
    return this.transport.connectMs;
  }

  close(): void {
    this.transport.close();
  }
}
