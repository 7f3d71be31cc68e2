import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DAEMON_SOCKET } from '../config/defaults';
import { loadNetConf, type NetConf } from '../config/load';
import { type NodeFile, readNodeFile } from '../config/node-file';
import { type DpuConfig, pfList } from '../config/schema';
import { representorName } from '../dpu/api';
import { checkUnderlayMtu } from '../dpu/mtu';
import { OvnDpuClient } from '../dpu/ovn/client';
import { OvsDpuClient } from '../dpu/ovs/client';
import { SshTransport } from '../dpu/ssh';
import { Sysfs } from '../kernel/sysfs';
import { createLogger } from '../log';
import { nodeFileFromEnv } from '../plugin/config-error-log';
import { configuredDpus } from '../plugin/dpu-client';
import { StateStore } from '../store/attachments';
import { untrustedDirReason } from '../util/secure-fs';
import { askDaemon } from './status';
import { terminalSafe } from '../util/terminal';

export const DOCTOR_USAGE = `usage: dpu-overlay doctor [--json] [--socket PATH] [--cni-path DIRS] [--node-config PATH] [CONFIG...]
Checks this node for every dpu-overlay network in /etc/cni/net.d (or the CONFIG files given) and the node file:
the host (PF and VFs, IPAM plugin on the CNI path, node file and stateDir ownership, daemon socket) and each DPU
over the plugin's own SSH path (host key pinned, the guard installed and as new as this plugin, OVS running, the
representor of a free VF, the uplink MTU, hw-offload; OVN mode: the chassis external_ids and ovn-controller).
Each line is PASS, WARN or FAIL, and says the fix. Exit status 0 only when nothing FAILs.
  --json              one JSON object {ok, checks: [{level, check, detail, fix}]}
  --socket PATH       the daemon's socket (default ${DEFAULT_DAEMON_SOCKET})
  --cni-path DIRS     where IPAM plugins are looked for, ":"-separated (default $CNI_PATH, else /opt/cni/bin)
  --node-config PATH  default $DPU_OVERLAY_NODE_CONFIG, else /etc/cni/dpu-overlay/node.json
`;

const NET_D = '/etc/cni/net.d';
const PLUGIN_TYPE = 'dpu-overlay';

export type Level = 'PASS' | 'WARN' | 'FAIL';
export interface Finding {
  level: Level;
  check: string;
  detail: string;
  fix?: string;
}

interface DoctorOptions {
  json: boolean;
  socket: string;
  cniPath: string[];
  nodeConfig: string;
  configs: string[];
}

function parse(argv: readonly string[]): DoctorOptions | 'help' {
  const o: DoctorOptions = { json: false, socket: DEFAULT_DAEMON_SOCKET, cniPath: (process.env.CNI_PATH || '/opt/cni/bin').split(':').filter(Boolean), nodeConfig: nodeFileFromEnv(), configs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h' || a === 'help') return 'help';
    if (a === '--json') o.json = true;
    else if (a === '--socket' || a === '--cni-path' || a === '--node-config') {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      if (a === '--socket') o.socket = v;
      else if (a === '--cni-path') o.cniPath = v.split(':').filter(Boolean);
      else o.nodeConfig = v;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.configs.push(a);
  }
  return o;
}

/** The dpu-overlay plugin configs in a .conf/.json file or a .conflist, with the list's name and cniVersion. */
export function pluginConfigsIn(text: string): Array<Record<string, unknown>> {
  const doc = JSON.parse(text) as Record<string, unknown>;
  if (Array.isArray(doc.plugins)) {
    return (doc.plugins as Array<Record<string, unknown>>).filter((p) => p?.type === PLUGIN_TYPE).map((p) => ({ ...p, name: doc.name, cniVersion: doc.cniVersion }));
  }
  return doc.type === PLUGIN_TYPE ? [doc] : [];
}

function configFiles(o: DoctorOptions): string[] {
  if (o.configs.length) return o.configs;
  try {
    return readdirSync(NET_D).filter((f) => /\.(conf|conflist|json)$/.test(f)).sort().map((f) => join(NET_D, f));
  } catch {
    return [];
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class Report {
  readonly findings: Finding[] = [];
  add(level: Level, check: string, detail: string, fix?: string): void {
    this.findings.push({ level, check, detail, ...(fix ? { fix } : {}) });
  }
}

function checkNodeFile(r: Report, path: string): NodeFile | undefined {
  try {
    const node = readNodeFile(path);
    if (!node.values) {
      r.add('FAIL', 'node file', `${path} does not exist: the DPU, its keys and this host's PF are not set, every ADD fails with code 7`, `write ${path} (root-owned, 0644 or stricter) with this node's dpu settings; see docs/kubernetes.md "Node files"`);
      return node;
    }
    r.add('PASS', 'node file', `${path}: ${Object.keys(node.values).join(', ') || '(empty object)'}`);
    return node;
  } catch (err) {
    r.add('FAIL', 'node file', message(err), 'the message names the fix');
    return undefined;
  }
}

function checkHost(r: Report, conf: NetConf, o: DoctorOptions): void {
  const net = `network ${conf.name}`;
  const sysfs = new Sysfs(conf.sysfsRoot);
  const state = new StateStore(conf.stateDir);
  const claimed = new Set(existsSync(state.allocationsDir) ? state.listAllocations() : []);
  for (const pf of pfList(conf.pf)) {
    try {
      const vfs = sysfs.listVfs(pf, conf.pfIndex);
      const free = vfs.filter((v) => !claimed.has(v.pci)).length;
      r.add(free ? 'PASS' : 'WARN', `${net}: PF ${pf}`, `${vfs.length} VFs, ${free} free`, free ? undefined : 'every VF is in use: raise sriov_numvfs or remove containers');
    } catch (err) {
      r.add('FAIL', `${net}: PF ${pf}`, message(err), 'set "pf" in the node file to this host\'s PF and enable SR-IOV on it');
    }
  }
  if (conf.ipam) {
    const found = o.cniPath.map((d) => join(d, conf.ipam?.type ?? '')).find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (found) r.add('PASS', `${net}: IPAM plugin`, found);
    else r.add('FAIL', `${net}: IPAM plugin`, `${conf.ipam.type} is not an executable in ${o.cniPath.join(':')}`, `install the CNI plugins there (e.g. containernetworking-plugins into /opt/cni/bin) or fix ipam.type`);
  }
  if (!existsSync(conf.stateDir)) {
    r.add('PASS', `${net}: stateDir`, `${conf.stateDir} does not exist yet (the first ADD creates it 0700)`);
  } else {
    const why = untrustedDirReason(conf.stateDir, process.getuid?.() ?? 0);
    if (why) r.add('FAIL', `${net}: stateDir`, `${conf.stateDir} ${why}`, `chown -R root: ${conf.stateDir}; chmod 700 ${conf.stateDir}`);
    else r.add('PASS', `${net}: stateDir`, `${conf.stateDir} is root's alone`);
  }
}

/** A free VF of the network's first PF, for the representor check. */
function freeVf(conf: NetConf): { pfIndex: number; index: number } | undefined {
  const pf = pfList(conf.pf)[0];
  if (!pf) return undefined;
  try {
    const state = new StateStore(conf.stateDir);
    const claimed = new Set(existsSync(state.allocationsDir) ? state.listAllocations() : []);
    return new Sysfs(conf.sysfsRoot).listVfs(pf, conf.pfIndex).find((v) => !claimed.has(v.pci));
  } catch {
    return undefined;
  }
}

async function checkDpu(r: Report, conf: NetConf, dpu: DpuConfig): Promise<void> {
  const ssh = new SshTransport(dpu);
  const at = `DPU ${ssh.target}`;
  const log = createLogger({ logLevel: 'silent' }, {}, { write: () => undefined });
  r.add('PASS', `${at}: host key`, dpu.hostKeyFingerprint ? `pinned by hostKeyFingerprint ${dpu.hostKeyFingerprint}` : `pinned by ${dpu.knownHostsFile}`);
  try {
    try {
      await ssh.ready();
    } catch (err) {
      r.add('FAIL', `${at}: SSH`, message(err), `on the DPU: systemctl start ssh; check dpu.host/port and that the key's public half is in the DPU's authorized_keys (install.sh --dpu)`);
      return;
    }
    r.add('PASS', `${at}: SSH`, `key ${dpu.privateKeyFile} accepted for ${dpu.user}`);
    const echo = await ssh.exec(`echo dpu-overlay-doctor`);
    if (echo.exitCode === 0 && echo.stdout.includes('dpu-overlay-doctor')) {
      r.add('FAIL', `${at}: guard`, `the key opens a shell on the DPU: no forced command (dpu-guard) restricts it`, `run install.sh --dpu on the DPU with this key (it writes command="/usr/local/libexec/dpu-overlay/dpu-guard" into authorized_keys)`);
    } else if (echo.exitCode === 126 && /dpu-guard: refused/.test(echo.stderr)) {
      r.add('PASS', `${at}: guard`, `the key runs dpu-guard (a shell command is refused)`);
    } else {
      r.add('WARN', `${at}: guard`, `unexpected answer to a refused command (exit ${echo.exitCode}): ${echo.stderr.trim().slice(0, 200)}`, 'check authorized_keys on the DPU');
    }
    const ovs = new OvsDpuClient(ssh, dpu, log);
    try {
      const probe = await ovs.probe();
      r.add('PASS', `${at}: OVS`, `ovsdb answers (boot id ${probe.bootId}, ${probe.ports.size} dpu-overlay ports); the guard accepts this plugin's commands`);
    } catch (err) {
      const m = message(err);
      const tooOld = /exit 126|refused/.test(m);
      r.add('FAIL', `${at}: OVS`, m, tooOld ? 'the guard is older than this plugin: run install.sh --dpu from this version on the DPU' : 'on the DPU: systemctl start openvswitch-switch');
      return;
    }
    try {
      const hw = await ovs.hwOffloadState();
      const fix = 'on the DPU: ovs-vsctl set Open_vSwitch . other_config:hw-offload=true; systemctl restart openvswitch-switch';
      if (hw === 'true' || dpu.hwOffload === 'ignore') r.add('PASS', `${at}: hw-offload`, `other_config:hw-offload is ${hw ?? 'unset'}${hw === 'true' ? ': flows go to the eSwitch' : ' (the network sets hwOffload "ignore")'}`);
      else r.add(dpu.hwOffload === 'require' ? 'FAIL' : 'WARN', `${at}: hw-offload`, `other_config:hw-offload is ${hw ?? 'unset'}: every packet goes through the DPU's Arm cores${dpu.hwOffload === 'require' ? ' (the network requires offload: every ADD fails)' : ''}`, fix);
    } catch (err) {
      r.add('WARN', `${at}: hw-offload`, message(err));
    }
    const vf = freeVf(conf);
    const ovn = dpu.controlPlane === 'ovn' && dpu.ovn ? new OvnDpuClient(ssh, { ...dpu, ovn: dpu.ovn }, log) : undefined;
    try {
      const rep = vf ? representorName(dpu.representorTemplate, vf.pfIndex, vf.index) : undefined;
      const facts = await (ovn ?? ovs).facts({ representor: rep ?? '', pfIndex: vf?.pfIndex ?? 0, vfIndex: vf?.index ?? 0, ...(rep ? { vfFunction: { rates: false } } : {}) });
      const vtep = facts.encap?.ip ?? dpu.localVtep ?? '';
      checkUnderlayMtu({ mtu: conf.mtu, localVtep: vtep, encap: facts.encap?.type ?? 'vxlan', uplink: facts.uplink, target: ssh.target, ovn: ovn !== undefined });
      r.add('PASS', `${at}: uplink MTU`, `${facts.uplink?.dev} MTU ${facts.uplink?.mtu} carries mtu ${conf.mtu} of network ${conf.name}`);
      if (rep) {
        if (facts.vfFunction) r.add('PASS', `${at}: representor`, `${rep} (free VF ${vf?.index}) is a devlink port of the DPU`);
        else r.add('WARN', `${at}: representor`, `${rep} (free VF ${vf?.index}) is not among the DPU's devlink ports`, 'check dpu.representorTemplate against "devlink port show" on the DPU (newer firmware names them c1pf0vf<N>)');
      }
    } catch (err) {
      r.add('FAIL', `${at}: uplink`, message(err), 'the message names the fix');
    }
    try {
      await (ovn ?? ovs).status();
      r.add('PASS', `${at}: ${ovn ? 'ovn-controller' : 'status'}`, ovn ? 'ovn-controller is connected to the southbound database and br-int exists' : `hwOffload "${dpu.hwOffload}" is satisfied`);
    } catch (err) {
      r.add('FAIL', `${at}: ${ovn ? 'ovn-controller' : 'status'}`, message(err), ovn ? 'on the DPU: systemctl start ovn-controller, and check external_ids:ovn-remote' : 'the message names the fix');
    }
    if (ovn) {
      try {
        const chassis = await ovn.chassis();
        r.add('PASS', `${at}: OVN chassis`, `system-id ${chassis.systemId}, encap ${chassis.encapType ?? 'geneve'} ${chassis.encapIp ?? '?'}`);
      } catch (err) {
        r.add('FAIL', `${at}: OVN chassis`, message(err), 'set external_ids:system-id, ovn-remote, ovn-encap-type and ovn-encap-ip on the DPU (install.sh --dpu --ovn)');
      }
    }
  } finally {
    ssh.close();
  }
}

export async function doctor(o: DoctorOptions): Promise<Finding[]> {
  const r = new Report();
  const node = checkNodeFile(r, o.nodeConfig);
  const files = configFiles(o);
  const confs: NetConf[] = [];
  for (const file of files) {
    let raws: Array<Record<string, unknown>>;
    try {
      raws = pluginConfigsIn(readFileSync(file, 'utf8'));
    } catch (err) {
      if (o.configs.length) r.add('FAIL', `config ${file}`, `cannot be read as a network config: ${message(err)}`, 'fix the JSON');
      continue;
    }
    for (const raw of raws) {
      try {
        confs.push(loadNetConf(raw, {}, node ?? { path: o.nodeConfig }));
        r.add('PASS', `config ${file}`, `network ${String(raw.name)} (VNI ${String(raw.vni)}) is valid with the node file`);
      } catch (err) {
        r.add('FAIL', `config ${file}`, message(err), 'the message names the fix');
      }
    }
  }
  if (confs.length === 0 && !r.findings.some((f) => f.check.startsWith('config '))) {
    r.add('WARN', 'networks', `no dpu-overlay network config in ${o.configs.length ? o.configs.join(' ') : NET_D}`, 'under Multus the networks are NetworkAttachmentDefinitions: name their config files here to check them');
  }
  const seenDpus = new Set<string>();
  for (const conf of confs) {
    checkHost(r, conf, o);
    for (const { dpu } of configuredDpus(conf)) {
      const key = JSON.stringify([dpu.host, dpu.port, dpu.user, dpu.privateKeyFile, dpu.controlPlane]);
      if (seenDpus.has(key)) continue;
      seenDpus.add(key);
      await checkDpu(r, conf, dpu);
    }
  }
  try {
    const status = await askDaemon(o.socket);
    if (status) r.add('PASS', 'daemon', `answers at ${o.socket} (pid ${status.pid}, ${status.attachments.length} attachments)`);
    else r.add('WARN', 'daemon', `no daemon at ${o.socket}: each command runs standalone (a new SSH connection per command, no re-plug after a DPU reset)`, 'start it: the DaemonSet (docs/kubernetes.md) or systemctl enable --now dpu-overlay');
  } catch (err) {
    r.add('FAIL', 'daemon', message(err), `restart the daemon (it holds ${o.socket} but does not answer)`);
  }
  return r.findings;
}

export function formatFindings(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.level}  ${terminalSafe(`${f.check}: ${f.detail}`)}${f.fix && f.level !== 'PASS' ? `\n      fix: ${terminalSafe(f.fix)}` : ''}`).join('\n') + '\n';
}

export async function runDoctor(argv: readonly string[]): Promise<number> {
  let o: DoctorOptions | 'help';
  try {
    o = parse(argv);
  } catch (err) {
    process.stderr.write(`dpu-overlay doctor: ${message(err)}\n${DOCTOR_USAGE}`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const findings = await doctor(o);
  const ok = !findings.some((f) => f.level === 'FAIL');
  process.stdout.write(o.json ? JSON.stringify({ ok, checks: findings }, null, 2) + '\n' : formatFindings(findings));
  return ok ? 0 : 1;
}
