import { randomUUID } from 'node:crypto';
import { DpuError } from '../errors';
import type { Logger } from '../../log';
import type { DpuClient, DpuFacts, DpuFactsRequest, LspRef, PlugRequest, PlugResult, PortOwner, UnplugRequest, VfFunctionTarget, VfFunctionValues } from '../api';
import { isNameTaken, OvsDpuClient } from '../ovs/client';
import { EXT, findOwnerPortsCommand, isOwnedBy, OFFLOADED_FLOWS_COMMAND, type OvsSettings } from '../ovs/commands';
import { hwOffloadValue, mapOf, type OvsTable, parseTables, rows, uuidOf, uuidSet } from '../ovs/parse';
import { type Argv, commandLine } from '../quote';
import type { DpuTransport, ExecResult } from '../ssh';
import {
  addresses, type Chassis, chassisQuery, checkCommands, INTEGRATION_BRIDGE, minePortsCommand, newLsp, type OvnSettings, plugCommands, portByNameCommand, type PortToRemove,
  statusCommands, switchName, systemIdOfPort, unplugCommands,
} from './commands';
import { isConnected, lspRow, type LspRow, nbResultLines, parseChassis, parseNbResult, selectRows, untolerated } from './parse';

function ownerOf(o: PortOwner): PortOwner {
  return { network: o.network, containerId: o.containerId, ifname: o.ifname };
}

/** stdout without its first line that is an OVSDB result. */
function dropFirstResultLine(stdout: string): string {
  const lines = stdout.split('\n');
  const k = lines.findIndex((l) => l.startsWith('['));
  return k < 0 ? stdout : [...lines.slice(0, k), ...lines.slice(k + 1)].join('\n');
}

export type OvnClientSettings = OvnSettings & OvsSettings;

/** The chassis identity, shared by the clients of one DPU connection (the daemon) so it is read once. */
export interface ChassisCache {
  chassis?: Chassis;
  /** Logical switches (by name) a plug through this connection found or made: the next plug there skips the ensure. */
  switches?: Set<string>;
}

const UUID_LINE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What the guard exits with (guard/dpu-guard.sh): an NB op failed / the NB server could not be reached. */
export const EXIT_NB_OP_FAILED = 65;
export const EXIT_NB_UNREACHABLE = 69;
const EXIT_SIGALRM = 128 + 14;

/** The SSH exec limit an OVN-mode request needs: its own steps plus the wait for the port to come up. */
export function ovnExecTimeoutMs(s: Pick<OvnClientSettings, 'timeoutMs' | 'ovn'>): number {
  return 3 * s.timeoutMs + s.ovn.upTimeoutMs;
}

/**
 * DpuClient for controlPlane "ovn": the logical switch and port in the OVN northbound database (written on the DPU,
 * with the DPU's own NB connection, through the guard), the representor on br-int with iface-id, and "up" meaning
 * ovn-controller set ovn-installed. One round trip per ADD once the chassis identity is known.
 */
export class OvnDpuClient implements DpuClient {
  readonly target: string;
  private readonly ovs: OvsDpuClient;

  constructor(
    private readonly transport: DpuTransport,
    private readonly s: OvnClientSettings,
    private readonly log: Logger,
    private readonly cache: ChassisCache = {},
  ) {
    this.target = transport.target;
    this.ovs = new OvsDpuClient(transport, s, log);
  }

  private error(step: string, r: ExecResult): DpuError {
    const stderr = r.stderr.trim().slice(0, 600);
    const at = `DPU ${this.target}: ${step}`;
    if (r.exitCode === EXIT_NB_UNREACHABLE || (r.exitCode === EXIT_SIGALRM && /ovsdb-client/.test(stderr))) {
      return new DpuError('ovn-nb-unreachable', `${at}: the OVN northbound database cannot be reached from the DPU (its external_ids:ovn-nb): ${stderr}`);
    }
    if (r.exitCode === EXIT_SIGALRM && /wait-until Interface/.test(stderr)) {
      return new DpuError('port-not-up', `${at}: the port did not come up within dpu.ovn.upTimeoutMs (${this.s.ovn.upTimeoutMs} ms): ovn-controller did not set ovn-installed; see "ovn-appctl -t ovn-controller connection-status" on the DPU`);
    }
    if (/wait-until Open_vSwitch/.test(stderr) && this.s.hwOffload === 'require') {
      return new DpuError('offload-required-missing', `${at}: hwOffload is "require" but other_config:hw-offload is not true; run on the DPU: ovs-vsctl set Open_vSwitch . other_config:hw-offload=true and restart openvswitch`);
    }
    if (/no row "br-int"/.test(stderr)) {
      return new DpuError('not-set-up', `${at}: the DPU has no ${INTEGRATION_BRIDGE}: ovn-controller creates it; is ovn-controller running and configured (install.sh --dpu --ovn)?`);
    }
    if (r.exitCode === EXIT_NB_OP_FAILED && /ensure-switch: timed out/.test(stderr)) {
      return new DpuError('name-conflict', `${at}: a logical switch of that name exists that dpu-overlay did not create (its UUID is not the VNI's): rename it, or choose another dpu.ovn.switchPrefix`);
    }
    if (r.exitCode === EXIT_NB_OP_FAILED && /add-port: timed out/.test(stderr)) {
      return new DpuError('name-conflict', `${at}: the VNI's logical switch has another name (another dpu.ovn.switchPrefix uses this VNI in the same OVN northbound database?)`);
    }
    const hint = r.exitCode === 126 ? ' (does the DPU run guard/dpu-guard.sh as new as the plugin, with --ovn and --ovn-switch-prefix matching dpu.ovn.switchPrefix?)' : '';
    return new DpuError('command-failed', `${at} failed (exit ${r.exitCode}): ${stderr || r.stdout.trim().slice(0, 300)}${hint}`);
  }

  private async run(step: string, commands: readonly Argv[]): Promise<string> {
    const r = await this.transport.exec(commandLine(commands));
    if (r.exitCode !== 0) throw this.error(step, r);
    return r.stdout;
  }

  /** The DPU's system-id (and encap), read once per client or connection; refresh after the guard says it changed. */
  async chassis(refresh = false): Promise<Chassis> {
    if (!this.cache.chassis || refresh) this.cache.chassis = parseChassis(await this.run('reading the OVN chassis settings', [chassisQuery(this.s)]), this.target);
    return this.cache.chassis;
  }

  async plug(req: PlugRequest): Promise<PlugResult> {
    let chassis = await this.chassis();
    let lsp = newLsp(chassis.systemId, req, randomUUID());
    const switches = (this.cache.switches ??= new Set());
    for (let attempt = 1; ; attempt++) {
      // Steady state (another port on the VNI plugged through this connection): no ensure, one NB transaction.
      const sw = switchName(this.s.ovn.switchPrefix, req.vni);
      const ensure = !switches.has(sw);
      const r = await this.transport.exec(commandLine(plugCommands(this.s, req, chassis.systemId, lsp, ensure)));
      // The owner-checked removal of a reclaimed port prints the first result line: not one of the NB results.
      const stdout = req.reclaim ? dropFirstResultLine(r.stdout) : r.stdout;
      if (r.exitCode === 0) {
        const result = this.plugResult(req, chassis, lsp, stdout, ensure);
        switches.add(sw);
        return result;
      }
      switches.delete(sw);
      if (!ensure && this.retryReason(r) === 'switch-gone') {
        // The switch went (the last port's DEL, here or on another DPU) since it was seen: again, with the ensure.
        lsp = newLsp(chassis.systemId, req, randomUUID());
        attempt--;
        this.log.info({ dpu: this.target, representor: req.representor, retry: 'switch-gone' }, 'OVN plug: retrying');
        continue;
      }
      const retry = attempt <= 2 ? this.retryReason(r) : undefined;
      if (retry === 'name-taken') {
        // The representor has a port already (ours from a repeated or interrupted ADD, or a re-plug; or a stale
        // attachment's the plugin named): the same logical port again, after that port's owner-checked removal.
        try {
          req = await this.ovs.withReclaim(req);
        } catch (err) {
          await this.rollback(req, chassis, lsp, stdout, ensure);
          throw err;
        }
      } else if (retry === 'system-id' && attempt === 1) {
        chassis = await this.chassis(true);
        lsp = newLsp(chassis.systemId, req, randomUUID());
      } else if (retry === 'stale-port' && attempt === 1) {
        // A port of ours with this name that no record knows (an ADD killed mid-way): remove it, then add again.
        await this.unplug({ ...req, portUuid: undefined, lsp: undefined });
        lsp = newLsp(chassis.systemId, req, randomUUID());
      } else if (retry === 'switch-gone' && attempt === 1) {
        lsp = newLsp(chassis.systemId, req, randomUUID());
      } else {
        await this.rollback(req, chassis, lsp, stdout, ensure);
        throw this.error('plug', r);
      }
      this.log.info({ dpu: this.target, representor: req.representor, retry }, 'OVN plug: retrying');
    }
  }

  private retryReason(r: ExecResult): 'system-id' | 'stale-port' | 'switch-gone' | 'name-taken' | undefined {
    if (r.exitCode === 126 && /not this DPU's system-id/.test(r.stderr)) return 'system-id';
    if (r.exitCode !== EXIT_NB_OP_FAILED) return isNameTaken(r.stderr) ? 'name-taken' : undefined;
    // Another DPU's DEL removed the switch between ENSURE and the port insert: ENSURE recreates it.
    if (/OVN_Northbound add-port: timed out/.test(r.stderr)) return 'switch-gone';
    if (/OVN_Northbound add-port: constraint violation/.test(r.stderr)) return 'stale-port';
    return undefined;
  }

  /** After a failed ADD line: whatever of it took effect (the logical port, the OVS port) goes again. */
  /** A removal may delete a VNI's switch (when it empties it): the next plug there ensures it again. */
  private forgetSwitches(items: ReadonlyArray<{ vni: number }>): void {
    for (const i of items) this.cache.switches?.delete(switchName(this.s.ovn.switchPrefix, i.vni));
  }

  private async rollback(req: PlugRequest, chassis: Chassis, lsp: LspRef, stdout: string, ensured: boolean): Promise<void> {
    const added = nbResultLines(stdout)[ensured ? 1 : 0];
    // "duplicate uuid": this attempt's own logical port, inserted by an earlier run of the same line.
    const lspMade = added !== undefined && untolerated(parseNbResult(added), ['duplicate uuid']) === undefined;
    const portUuid = stdout.split('\n').filter((l) => UUID_LINE.test(l.trim()))[1]?.trim();
    if (!lspMade && !portUuid) return;
    try {
      const port = portUuid ? { port: { uuid: portUuid, name: req.representor, owner: ownerOf(req) } } : {};
      this.forgetSwitches([{ vni: req.vni }]);
      await this.run('rollback', unplugCommands(this.s, chassis.systemId, [{ vni: req.vni, ...port, ...(lspMade ? { lsp } : {}) }]));
    } catch (err) {
      this.log.warn({ dpu: this.target, representor: req.representor, lsp: lsp.name, err: (err as Error).message }, 'OVN plug failed and its rollback too: DEL or GC removes the port');
    }
  }

  private plugResult(req: PlugRequest, chassis: Chassis, lsp: LspRef, stdout: string, withEnsure: boolean): PlugResult {
    const results = nbResultLines(stdout).map(parseNbResult);
    const [ensured, added] = withEnsure ? results : [undefined, results[0]];
    const failed = (withEnsure && !ensured) || !added ? { error: 'no result', details: '' } : (ensured && untolerated(ensured, ['duplicate uuid'])) ?? untolerated(added, ['duplicate uuid']);
    const portUuid = stdout.split('\n').filter((l) => UUID_LINE.test(l.trim()))[1]?.trim();
    if (failed || !portUuid) {
      throw new DpuError('bad-output', `DPU ${this.target}: plug: unexpected output${failed ? ` (OVN_Northbound: ${failed.error}: ${failed.details})` : ''}; is guard/dpu-guard.sh on the DPU run with --ovn?`);
    }
    const table = parseTables(stdout.split('\n').filter((l) => l.startsWith('{')).join('\n'))[0];
    if (this.s.hwOffload === 'enable' && hwOffloadValue(table) !== 'true') {
      this.log.warn({ dpu: this.target }, 'set other_config:hw-offload=true on the DPU; it takes effect after ovs-vswitchd restarts (systemctl restart openvswitch-switch)');
    }
    this.log.debug({ dpu: this.target, chassis: chassis.systemId, lsp: lsp.name, switch: switchName(this.s.ovn.switchPrefix, req.vni) }, 'OVN port up');
    return { bridge: INTEGRATION_BRIDGE, portUuid, lsp };
  }

  /** This chassis's logical ports named by query, as rows that are really ours (iface-id-ver is their own UUID). */
  private ownRows(nbLine: string | undefined, systemId: string): LspRow[] {
    if (nbLine === undefined) throw new DpuError('bad-output', `DPU ${this.target}: unexpected ovsdb-client output: no result`);
    return selectRows(parseNbResult(nbLine), 0).flatMap((r) => {
      const row = lspRow(r);
      return row && row.options['requested-chassis'] === systemId && row.options['iface-id-ver'] === row.uuid ? [row] : [];
    });
  }

  private ovsPorts(stdout: string): Array<{ uuid: string; name: string; ids: Record<string, string> }> {
    const tables = parseTables(stdout.split('\n').filter((l) => l.startsWith('{')).join('\n'));
    return rows(tables[0]).map((r) => ({ uuid: uuidOf(r._uuid) as string, name: String(r.name), ids: mapOf(r.external_ids) }));
  }

  async unplug(req: UnplugRequest): Promise<void> {
    const items: PortToRemove[] = [];
    let systemId = req.lsp ? systemIdOfPort(req.lsp.name) : undefined;
    const owner = ownerOf(req);
    if (req.lsp && systemId) {
      items.push({ vni: req.vni, ...(req.portUuid ? { port: { uuid: req.portUuid, name: req.representor, owner } } : {}), lsp: req.lsp });
    } else {
      // No record of the logical port: found by its name (stable per chassis and owner) and the OVS ports by owner.
      systemId = (await this.chassis()).systemId;
      const name = newLsp(systemId, req, '').name;
      const out = await this.run('find ports', [portByNameCommand(this.s, name), findOwnerPortsCommand(this.s, owner)]);
      for (const row of this.ownRows(nbResultLines(out)[0], systemId)) items.push({ vni: Number(row.ids[EXT.vni] ?? req.vni), lsp: { uuid: row.uuid, name: row.name } });
      for (const p of this.ovsPorts(out)) items.push({ vni: req.vni, port: { uuid: p.uuid, name: p.name, owner } });
      if (req.portUuid && !items.some((i) => i.port?.uuid === req.portUuid)) items.push({ vni: req.vni, port: { uuid: req.portUuid, name: req.representor, owner } });
    }
    if (items.length === 0) return;
    this.forgetSwitches(items);
    const r = await this.transport.exec(commandLine(unplugCommands(this.s, systemId, items)));
    if (r.exitCode === 0) return;
    if (!(r.exitCode === 126 && /not this DPU's system-id/.test(r.stderr))) throw this.error('unplug', r);
    // The DPU has a new system-id (reinstalled): the guard no longer lets it touch the old chassis's port. DEL must
    // not wedge on that: the OVS port goes, the logical port is left for an operator.
    const ports = items.flatMap((i) => (i.port ? [{ vni: i.vni, port: i.port }] : []));
    if (ports.length) await this.run('unplug', unplugCommands(this.s, systemId, ports));
    for (const i of items) {
      if (i.lsp) this.log.warn({ dpu: this.target, lsp: i.lsp.name, chassis: systemId }, `logical port ${i.lsp.name} belongs to chassis ${systemId}, which is no longer this DPU's system-id: left in the OVN northbound database; remove it with ovn-nbctl lsp-del ${i.lsp.name}`);
    }
  }

  async check(req: PlugRequest): Promise<void> {
    const fail = (msg: string) => new DpuError('check-mismatch', `DPU ${this.target}: ${msg}`);
    const lsp = req.lsp;
    const systemId = lsp ? systemIdOfPort(lsp.name) : undefined;
    if (!lsp || !systemId) throw fail(`the attachment record has no OVN logical port (plugged in static mode?); DEL and ADD the container again`);
    const out = await this.run('check', checkCommands(this.s, req, lsp));
    const nb = parseNbResult(nbResultLines(out)[0] ?? '[]');
    const port = selectRows(nb, 0).map(lspRow)[0];
    const sw = selectRows(nb, 1)[0];
    const name = switchName(this.s.ovn.switchPrefix, req.vni);
    if (!sw) throw fail(`logical switch ${name} does not exist`);
    if (mapOf(sw.other_config)['requested-tnl-key'] !== String(req.vni)) throw fail(`logical switch ${name} does not request tunnel key ${req.vni}`);
    if (!port) throw fail(`logical port ${lsp.name} (${lsp.uuid}) does not exist`);
    if (!uuidSet(sw.ports).includes(lsp.uuid)) throw fail(`logical port ${lsp.name} is not on switch ${name}`);
    if (port.options['requested-chassis'] !== systemId || port.options['iface-id-ver'] !== lsp.uuid) throw fail(`logical port ${lsp.name} is not bound to chassis ${systemId} for this attachment`);
    if (req.mac !== undefined) {
      const want = addresses(req);
      if (port.addresses.join() !== want) throw fail(`logical port ${lsp.name} has addresses "${port.addresses.join(', ')}", expected "${want}"`);
      if (port.portSecurity.join() !== (this.s.ovn.portSecurity ? want : '')) throw fail(`logical port ${lsp.name} has port_security "${port.portSecurity.join(', ')}", expected "${this.s.ovn.portSecurity ? want : ''}"`);
    }
    if (!port.up) throw fail(`logical port ${lsp.name} is not up (ovn-northd has not seen it bound)`);
    const [ifaceT, bridgeT, portT, ovsT] = parseTables(out.split('\n').filter((l) => l.startsWith('{')).join('\n'));
    const iface = mapOf(rows(ifaceT)[0]?.external_ids);
    if (iface['iface-id'] !== lsp.name || iface['iface-id-ver'] !== lsp.uuid) throw fail(`representor ${req.representor} is not bound to logical port ${lsp.name}`);
    if (iface['ovn-installed'] !== 'true') throw fail(`ovn-controller has not installed representor ${req.representor} (external_ids:ovn-installed)`);
    const ovsPort = rows(portT)[0];
    if (!ovsPort) throw fail(`representor ${req.representor} has no OVS port`);
    if (!uuidSet(rows(bridgeT)[0]?.ports).includes(uuidOf(ovsPort._uuid) ?? '')) throw fail(`representor ${req.representor} is not on ${INTEGRATION_BRIDGE}`);
    const ids = mapOf(ovsPort.external_ids);
    if (!isOwnedBy(ids, req)) throw fail(`port ${req.representor} belongs to container ${ids[EXT.container] ?? '?'} ifname ${ids[EXT.ifname] ?? '?'}, not ${req.containerId} ${req.ifname}`);
    if (this.s.hwOffload === 'require' && hwOffloadValue(ovsT as OvsTable | undefined) !== 'true') throw fail('hwOffload is "require" but other_config:hw-offload is not true');
    const r = await this.transport.exec(commandLine([OFFLOADED_FLOWS_COMMAND]));
    this.log.info({ dpu: this.target, offloadedFlows: r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.trim() !== '').length : undefined }, 'offloaded flows on the DPU');
  }

  async gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number> {
    const { systemId } = await this.chassis();
    const valid = new Set(keep.map((k) => `${k.containerId}/${k.ifname}`));
    const stale = (ids: Record<string, string>) => !valid.has(`${ids[EXT.container]}/${ids[EXT.ifname]}`);
    const out = await this.run('gc', [minePortsCommand(this.s, systemId, network), findOwnerPortsCommand(this.s, { network })]);
    const items: PortToRemove[] = [];
    const owners = new Set<string>();
    for (const row of this.ownRows(nbResultLines(out)[0], systemId).filter((r) => stale(r.ids))) {
      items.push({ vni: Number(row.ids[EXT.vni] ?? vni), lsp: { uuid: row.uuid, name: row.name } });
      owners.add(`${row.ids[EXT.container]}/${row.ids[EXT.ifname]}`);
    }
    for (const p of this.ovsPorts(out).filter((p) => stale(p.ids))) {
      items.push({ vni: Number(p.ids[EXT.vni] ?? vni), port: { uuid: p.uuid, name: p.name, owner: { network: p.ids[EXT.network] ?? network, containerId: p.ids[EXT.container] ?? '', ifname: p.ids[EXT.ifname] ?? '' } } });
      owners.add(`${p.ids[EXT.container]}/${p.ids[EXT.ifname]}`);
    }
    this.forgetSwitches(items);
    if (items.length) await this.run('gc', unplugCommands(this.s, systemId, items));
    return owners.size;
  }

  async status(): Promise<void> {
    const unavailable = (why: string) => new DpuError('unavailable', `DPU ${this.target}: ${why}`);
    const r = await this.transport.exec(commandLine(statusCommands(this.s)));
    if (r.exitCode !== 0) {
      const stderr = r.stderr.trim().slice(0, 600);
      if (r.exitCode === EXIT_NB_UNREACHABLE) throw unavailable(`the OVN northbound database cannot be reached from the DPU: ${stderr}`);
      if (/ovn-appctl|ovn-controller/.test(stderr) && r.stdout.trim() === '') throw unavailable(`ovn-controller is not running: ${stderr}`);
      throw unavailable(`status failed (exit ${r.exitCode}): ${stderr}`);
    }
    if (!isConnected(r.stdout)) throw unavailable(`ovn-controller is not connected to the OVN southbound database (connection-status: ${r.stdout.split('\n')[0]?.trim() ?? ''}); check external_ids:ovn-remote`);
    const [bridgeT, ovsT] = parseTables(r.stdout.split('\n').filter((l) => l.startsWith('{')).join('\n'));
    if (rows(bridgeT).length === 0) throw unavailable(`no ${INTEGRATION_BRIDGE}: ovn-controller has not created it`);
    if (this.s.hwOffload === 'require' && hwOffloadValue(ovsT) !== 'true') {
      throw new DpuError('offload-required-missing', `DPU ${this.target}: hwOffload is "require" but other_config:hw-offload is not true`);
    }
  }

  /** The uplink holding the DPU's OVN encap IP (for the MTU check) and, if asked, the VF function. */
  async facts(req: DpuFactsRequest): Promise<DpuFacts> {
    const chassis = await this.chassis();
    if (!chassis.encapIp) throw new DpuError('not-set-up', `DPU ${this.target}: external_ids:ovn-encap-ip is not set (or not an IP address); OVN mode needs the DPU set up as an OVN chassis (install.sh --dpu --ovn)`);
    const type = chassis.encapType === 'vxlan' ? 'vxlan' : 'geneve';
    const facts = await new OvsDpuClient(this.transport, { ...this.s, localVtep: chassis.encapIp }, this.log).facts(req);
    return { ...facts, encap: { ip: chassis.encapIp, type } };
  }

  setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    return this.ovs.setVfFunction(target, values);
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
