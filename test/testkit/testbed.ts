import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NODE_CONFIG_ENV } from '../../src/config/defaults';
import { splitByOwner } from '../../src/config/ownership';

/** The checkout: found upwards, so the helpers also work bundled by scripts/run-ts.js (npm run stress). */
function repoRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const ROOT = repoRoot(__dirname);
export const BINARY = process.env.DPU_OVERLAY_BIN ?? join(ROOT, 'dist', 'dpu-overlay');
export const TESTBED = join(ROOT, 'test', 'testkit', 'testbed.sh');
/** Testbed namespace prefix (DPUO_TESTBED_PREFIX), so parallel testbeds do not collide. */
export const PREFIX = process.env.DPUO_TESTBED_PREFIX ?? 'dpuo';
export const CNI_PATH = process.env.CNI_PATH_DIRS ?? '/usr/lib/cni';

/**
 * Which path the suites drive (DPUO_PLUGIN_PATH): `standalone` (default) gives every network config
 * `dpu.daemonSocket: ""`; `daemon` gives it its host's daemon socket, and testbedUp starts one daemon per host.
 */
export type PluginPath = 'daemon' | 'standalone';
export const PLUGIN_PATHS: readonly PluginPath[] = ['daemon', 'standalone'];
export function pluginPathFrom(value: string | undefined): PluginPath {
  if (value === undefined || value === '') return 'standalone';
  if ((PLUGIN_PATHS as readonly string[]).includes(value)) return value as PluginPath;
  throw new Error(`DPUO_PLUGIN_PATH must be daemon or standalone (got ${JSON.stringify(value)})`);
}
export const PLUGIN_PATH: PluginPath = pluginPathFrom(process.env.DPUO_PLUGIN_PATH);
let activePath = PLUGIN_PATH;
/** The path configs are written for from now on (npm run stress --path=both runs its scenarios on each in turn). */
export function usePluginPath(p: PluginPath): void {
  activePath = p;
}
export function pluginPath(): PluginPath {
  return activePath;
}

export interface Vf { index: number; pci: string; netdev: string; mac: string; representor: string }
/** One PF of a host and the DPU its representors live on (`dpu` names it for dpu-exec: the site, or X2). */
export interface SitePf {
  pf: string; pfPci: string; dpu: string; dpuNetns: string;
  dpuHost: string; dpuPort: number; dpuUser: string; localVtep: string; remoteVteps: string[]; vfs: Vf[];
  /** With `up --ovn`: the DPU's OVN chassis name (Open_vSwitch external_ids:system-id), never a hostname. */
  ovnSystemId?: string;
}
/** A host; its first PF's members at the top, every PF (testbed.sh up --pfs 2 gives two) in pfs. */
export interface Site extends SitePf {
  name: string; hostNetns: string; sysfsRoot: string; pfs: SitePf[];
  /** Where this host's daemon (testbed.sh daemon-start) listens: inside the host's netns, like the product's unit. */
  daemonSocket: string;
}
/**
 * With `up --ovn`: the OVN central (NB, SB, northd) in its own netns on the underlay. nb/sb are the remotes as the
 * DPUs reach them (also in each DPU's external_ids:ovn-nb / ovn-remote); nbSocket/sbSocket work from the root netns.
 */
export interface OvnCentral {
  netns: string; address: string; nb: string; sb: string; nbSocket: string; sbSocket: string; encapType: 'geneve';
}
export interface Testbed {
  /** `up --underlay ipv6`: the DPUs' uplinks, VTEPs and the OVN central on 2001:db8::/32 only. */
  underlay?: 'ipv4' | 'ipv6';
  stateDir: string; privateKeyFile: string; knownHostsFile: string; sites: Site[]; ovn?: OvnCentral }

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function requireBinary(): void {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
}

/**
 * Brings the testbed up fresh, without plugin, IPAM or daemon state from an earlier run; on the daemon path
 * (pluginPath(), or opts.path) with one daemon per host running.
 */
export function testbedUp(vfs = 8, sites = 'a,b,c', pfs = 1, opts: { ovn?: boolean; path?: PluginPath; underlay?: 'ipv4' | 'ipv6' } = {}): Testbed {
  sh('bash', [TESTBED, 'up', '--sites', sites, '--vfs', String(vfs), '--pfs', String(pfs), ...(opts.ovn ? ['--ovn'] : []), ...(opts.underlay ? ['--underlay', opts.underlay] : [])]);
  const tb = JSON.parse(sh('bash', [TESTBED, 'env'])) as Testbed;
  for (const entry of readdirSync(tb.stateDir)) {
    if (/^(plugin-|ipam-|daemon-|node-|etc-)/.test(entry)) rmSync(join(tb.stateDir, entry), { recursive: true, force: true });
  }
  hostEdits.clear();
  for (const s of tb.sites) hostNodeFile(tb, s);
  if ((opts.path ?? activePath) === 'daemon') startHostDaemons();
  return tb;
}

/** The hosts' daemons (testbed.sh daemon-start; all sites unless named); testbed.sh down stops them. */
export function startHostDaemons(...sites: string[]): void {
  sh('bash', [TESTBED, 'daemon-start', ...sites]);
}

export function stopHostDaemons(...sites: string[]): void {
  sh('bash', [TESTBED, 'daemon-stop', ...sites]);
}

/** Pid of a host's daemon if it runs, else undefined. */
export function hostDaemonPid(tb: Testbed, name: string): number | undefined {
  const f = join(tb.stateDir, `daemon-${name}.pid`);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  return /\) [^Z]/.test(stat) ? pid : undefined;
}

export function hostDaemonLog(tb: Testbed, name: string): string {
  return join(tb.stateDir, `daemon-${name}.log`);
}

/**
 * A daemon of a test's own (its own socket and log) in a host's netns, as a child of the test, for tests about the
 * daemon itself; resolves once it logs that it listens. Empty VNI bridges go with the DEL (grace 0) unless asked.
 */
export async function spawnDaemon(s: Site, o: { socket: string; logFile: string; stateDir?: string; nodeConfig?: string; emptyBridgeGraceMs?: number; args?: string[]; env?: Record<string, string> }): Promise<ChildProcess> {
  const listening = () => readJsonLines(o.logFile).filter((l) => l.msg === 'dpu-overlay daemon listening').length;
  const before = listening();
  const p = spawn('ip', ['netns', 'exec', s.hostNetns, BINARY, 'daemon', '--socket', o.socket, '--log-file', o.logFile, '--log-level', 'debug', '--empty-bridge-grace-ms', String(o.emptyBridgeGraceMs ?? 0), ...(o.stateDir ? ['--state-dir', o.stateDir] : []), ...(o.nodeConfig ? ['--node-config', o.nodeConfig] : []), ...(o.args ?? [])], { stdio: 'ignore', env: { ...process.env, ...o.env } });
  const deadline = Date.now() + 10000;
  while (listening() === before) {
    if (p.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon in ${s.hostNetns} did not start listening on ${o.socket} (see ${o.logFile})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

/** Stops a daemon from spawnDaemon with signal and waits for it to exit. */
/**
 * Stops a daemon of the test's own. One that outlives its signal by 20 s is killed and the test fails: left
 * waiting, a test's afterAll would go on in the background and tear down the next suite's testbed.
 */
export async function stopDaemon(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const stopped = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20000);
    p.once('exit', () => (clearTimeout(timer), resolve(true)));
    p.kill(signal);
  });
  if (!stopped) {
    p.kill('SIGKILL');
    throw new Error(`the daemon (pid ${p.pid}) did not exit within 20 s of ${signal}`);
  }
}

export function testbedDown(): void {
  sh('bash', [TESTBED, 'down']);
}

export function dpuExec(site: string, ...cmd: string[]): string {
  return sh('bash', [TESTBED, 'dpu-exec', site, ...cmd]);
}

/** Fault injection on one DPU (testbed.sh dpu-ctl), e.g. 'ovn-controller-stop'. */
export function dpuCtl(dpu: string, action: string): void {
  sh('bash', [TESTBED, 'dpu-ctl', dpu, action]);
}

export function ovnCentral(tb: Testbed): OvnCentral {
  if (!tb.ovn) throw new Error('the testbed is up without OVN: testbedUp(..., { ovn: true })');
  return tb.ovn;
}

/** ovn-nbctl against the central's NB (its unix socket: the root netns has no route to the underlay). */
export function ovnNbctl(tb: Testbed, ...args: string[]): string {
  return sh('ovn-nbctl', [`--db=${ovnCentral(tb).nbSocket}`, '--timeout=10', ...args]);
}

export function ovnSbctl(tb: Testbed, ...args: string[]): string {
  return sh('ovn-sbctl', [`--db=${ovnCentral(tb).sbSocket}`, '--timeout=10', ...args]);
}

/** Faults of the central (testbed.sh ovn-ctl): nb-stop|nb-start|nb-block|nb-unblock|sb-stop|sb-start|northd-stop|northd-start. */
export function ovnCtl(action: string): void {
  sh('bash', [TESTBED, 'ovn-ctl', action]);
}

/**
 * Packets counted by the DPU's p0-ingress nft rule with this comment: "geneve" (UDP 6081, every DPU) or one a test
 * inserted. The rules sit behind OVS's packet socket, so they count what arrives on the wire.
 */
export function p0Packets(dpu: string, comment = 'geneve'): number {
  const out = dpuExec(dpu, 'nft', 'list', 'chain', 'netdev', 'dpuo', 'ingress');
  const m = out.split('\n').find((l) => l.includes(`comment "${comment}"`))?.match(/counter packets (\d+)/);
  if (!m) throw new Error(`no p0 nft rule with comment "${comment}" on DPU ${dpu}: ${out}`);
  return Number(m[1]);
}

export function site(tb: Testbed, name: string): Site {
  const s = tb.sites.find((x) => x.name === name);
  if (!s) throw new Error(`no site ${name}`);
  return s;
}

/**
 * What a test changes from its host's defaults. stateDir, extra and dpu may name node fields as well as network
 * fields: netConf splits them by owner (src/config/ownership.ts), and node values other than the host's go into
 * a node file of their own, which the config carries (NODE_FILE) to cni()/cniAsync()/nodeEnv(). raw goes into the
 * network config as it is: a tenant's config setting node fields (tests of the refusal).
 */
export interface NetOptions {
  name?: string;
  vni?: number;
  cniVersion?: string;
  ipam?: Record<string, unknown>;
  stateDir?: string;
  extra?: Record<string, unknown>;
  dpu?: Record<string, unknown>;
  raw?: Record<string, unknown>;
  /** Node file keys that are no config field: delegate, limits. */
  node?: Record<string, unknown>;
  /** Fields left out of the host's values, e.g. ['dpu.localVtep'] (OVN) or ['dpu'] (a host with dpus only). */
  drop?: string[];
}

/** The node file a config from netConf goes with (a symbol: kept by object spread, never sent as JSON). */
export const NODE_FILE: unique symbol = Symbol('dpu-overlay node file');
export type NetConfig = Record<string, unknown> & { [NODE_FILE]?: string };

/** dpu values a test changed in a host's own node file, as an operator would (setRemoteVteps); kept until testbedUp. */
const hostEdits = new Map<string, Record<string, unknown>>();

function withHostEdits(s: Site, node: Record<string, unknown>): Record<string, unknown> {
  const edits = hostEdits.get(s.hostNetns);
  return edits ? { ...node, dpu: { ...((node.dpu ?? {}) as Record<string, unknown>), ...edits } } : node;
}

/** The node file of each emulated host, by host netns: what cni() uses for a config that carries none. */
const hostNodeFiles = new Map<string, string>();

/** Writes path (root's, 0644, atomically: plugins may be reading it) unless it already holds text. */
function writeNodeFile(path: string, node: Record<string, unknown>): string {
  const text = JSON.stringify(node, null, 2) + '\n';
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return path;
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return path;
}

/**
 * The path of host s's own node file: testbed.sh daemon-start gives it to the host's daemon as --node-config, and
 * runtime hosts (test/e2e/runtimes.ts) see its directory as /etc/cni/dpu-overlay, so both read the same file.
 */
export function hostNodeFilePath(tb: Testbed, s: Site): string {
  return join(tb.stateDir, `etc-${s.name}`, 'node.json');
}

/** Writes host s's node file for the active plugin path and returns its path. */
export function hostNodeFile(tb: Testbed, s: Site): string {
  return nodeFileFor(tb, s, netConf(tb, s));
}

/** The environment naming conf's node file (the host's for a config without one): what a runtime sets for the plugin. */
export function nodeEnv(s: Site, conf?: Record<string, unknown>): Record<string, string> {
  const path = (conf as NetConfig | undefined)?.[NODE_FILE] ?? hostNodeFiles.get(s.hostNetns);
  return path ? { [NODE_CONFIG_ENV]: path } : {};
}

function nodeFileFor(tb: Testbed, s: Site, conf: NetConfig): string {
  return conf[NODE_FILE] ?? hostNodeFilePath(tb, s);
}

/** The host a PF (or the site itself) belongs to. */
function hostOf(tb: Testbed, p: SitePf): Site {
  const h = tb.sites.find((s) => s === p || s.pfs.some((x) => x === p || x.dpu === p.dpu));
  if (!h) throw new Error(`no emulated host has the PF of DPU ${p.dpu}`);
  return h;
}

/** dpu.daemonSocket for a config on host s: its daemon's on the daemon path, "" (direct SSH) on the standalone path. */
export function daemonSocketFor(s: Site, path: PluginPath = activePath): string {
  return path === 'daemon' ? s.daemonSocket : '';
}

/** The `dpu` object for the DPU of one PF, as netConf writes it. */
export function dpuConf(tb: Testbed, p: SitePf, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    host: p.dpuHost,
    port: p.dpuPort,
    user: p.dpuUser,
    privateKeyFile: tb.privateKeyFile,
    knownHostsFile: tb.knownHostsFile,
    datapathType: 'netdev',
    localVtep: p.localVtep,
    remoteVteps: p.remoteVteps,
    timeoutMs: 5000,
    // A daemon at the default path would sit in the root netns: the host's own (daemon path) or direct SSH.
    daemonSocket: daemonSocketFor(hostOf(tb, p)),
    ...extra,
  };
}

/**
 * A network config for one emulated host (network fields only), and the node file it goes with: the host's own
 * (sysfs root, state and log, PF, its DPU) unless o sets other node values, then one of their own.
 */
export function netConf(tb: Testbed, s: Site, o: NetOptions = {}): NetConfig {
  const split = splitByOwner(fullConf(tb, s, o));
  const { network } = split;
  const node = { ...split.node, ...o.node };
  const base = splitByOwner(fullConf(tb, s, {})).node;
  const own = JSON.stringify(node) === JSON.stringify(base);
  const path = own ? hostNodeFilePath(tb, s) : join(tb.stateDir, `node-${s.name}-${createHash('sha256').update(JSON.stringify(node)).digest('hex').slice(0, 12)}.json`);
  writeNodeFile(path, own ? withHostEdits(s, node) : node);
  if (own) hostNodeFiles.set(s.hostNetns, path);
  return Object.assign({ ...network, ...o.raw }, { [NODE_FILE]: path });
}

/** Every value of a host's config in one object, as a conflist held it before the trust split (tests of the migration). */
export function legacyConf(tb: Testbed, s: Site, o: NetOptions = {}): Record<string, unknown> {
  return fullConf(tb, s, o);
}

function fullConf(tb: Testbed, s: Site, o: NetOptions): Record<string, unknown> {
  const conf = hostConf(tb, s, o);
  for (const field of o.drop ?? []) {
    const [top, sub] = field.split('.') as [string, string | undefined];
    if (sub === undefined) delete conf[top];
    else if (typeof conf[top] === 'object' && conf[top] !== null) conf[top] = Object.fromEntries(Object.entries(conf[top] as object).filter(([k]) => k !== sub));
  }
  return conf;
}

function hostConf(tb: Testbed, s: Site, o: NetOptions): Record<string, unknown> {
  const name = o.name ?? 'vni100';
  return {
    cniVersion: o.cniVersion ?? '1.1.0',
    name,
    type: 'dpu-overlay',
    vni: o.vni ?? 100,
    pf: s.pf,
    mtu: 1450,
    sysfsRoot: s.sysfsRoot,
    stateDir: o.stateDir ?? join(tb.stateDir, `plugin-${s.name}`),
    logFile: join(tb.stateDir, `plugin-${s.name}.log`),
    logLevel: 'debug',
    ...(o.ipam === undefined ? {} : { ipam: o.ipam }),
    dpu: dpuConf(tb, s, o.dpu),
    ...o.extra,
  };
}

/** Sets the remote VTEPs in a site's node file (a node joining, leaving or renumbered). */
export function setRemoteVteps(tb: Testbed, s: Site, remoteVteps: string[]): void {
  hostEdits.set(s.hostNetns, { ...hostEdits.get(s.hostNetns), remoteVteps });
  const path = hostNodeFilePath(tb, s);
  writeNodeFile(path, withHostEdits(s, JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>));
}

export function hostLocal(tb: Testbed, s: Site, subnet: string, start: string, end: string, network = 'vni100'): Record<string, unknown> {
  return { type: 'host-local', subnet, rangeStart: start, rangeEnd: end, dataDir: join(tb.stateDir, `ipam-${s.name}-${network}`) };
}

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  env?: Record<string, string>;
}

export interface CniOutcome {
  status: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
  ms: number;
}

export function envFor(call: CniCall, node: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? '',
    CNI_NETNS: call.netns ?? '',
    CNI_IFNAME: call.ifname ?? 'eth0',
    CNI_ARGS: call.args ?? '',
    CNI_PATH: CNI_PATH,
    ...node,
    ...call.env,
  };
}

/** A finished plugin run with its stdout parsed (undefined if it is not one JSON value) and whole milliseconds. */
export function outcome(r: { status: number | null; stdout: string; stderr: string; ms: number }): CniOutcome {
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json, ms: Math.round(r.ms) };
}

export interface NetnsRun {
  status: number;
  signal: NodeJS.Signals | null;
  pid: number;
  stdout: string;
  stderr: string;
  /** From spawn to exit, as a runtime sees it. */
  ms: number;
}

/** Runs file inside a network namespace with env (PATH defaulted) and stdin; SIGKILLed after timeoutMs. */
export function runInNetns(netns: string, file: string, args: string[], env: Record<string, string>, input: string | Buffer = '', timeoutMs = 60000): Promise<NetnsRun> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('ip', ['netns', 'exec', netns, file, ...args], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      resolve({ status: code ?? -1, signal, pid: p.pid ?? 0, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms });
    });
    p.stdin.on('error', () => undefined); // the program may exit before reading all of stdin
    p.stdin.end(input);
  });
}

/** Runs the packaged plugin on an emulated host (inside its network namespace), as a runtime would. */
export function cni(s: Site, conf: Record<string, unknown>, call: CniCall): CniOutcome {
  const t0 = Date.now();
  const r = spawnSync('ip', ['netns', 'exec', s.hostNetns, BINARY], { input: JSON.stringify(conf), env: envFor(call, nodeEnv(s, conf)), encoding: 'utf8', timeout: 60000 });
  return outcome({ status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 });
}

export async function cniAsync(s: Site, conf: Record<string, unknown>, call: CniCall, timeoutMs?: number): Promise<CniOutcome> {
  return outcome(await runInNetns(s.hostNetns, BINARY, [], envFor(call, nodeEnv(s, conf)), JSON.stringify(conf), timeoutMs));
}

const containers = new Set<string>();

/** A "container": a network namespace with IPv6 off (no router solicitations in packet counts). */
export function container(name: string): string {
  const ns = `${PREFIX}-ctr-${name}`;
  spawnSync('ip', ['netns', 'del', ns]);
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  containers.add(ns);
  return `/run/netns/${ns}`;
}

export function removeContainers(): void {
  for (const ns of containers) spawnSync('ip', ['netns', 'del', ns]);
  containers.clear();
}

/** Moves a host's VF netdev into a container by hand (what the plugin does on ADD), named ifname, with cidr, up. */
export function vfToContainer(s: Site, vf: Vf, netnsPath: string, ifname: string, cidr: string): void {
  sh('ip', ['-n', s.hostNetns, 'link', 'set', 'dev', vf.netdev, 'netns', nsName(netnsPath), 'name', ifname]);
  sh('ip', ['-n', nsName(netnsPath), 'addr', 'add', cidr, 'dev', ifname]);
  sh('ip', ['-n', nsName(netnsPath), 'link', 'set', 'dev', ifname, 'up']);
}

/** Gives a VF moved by vfToContainer back to its host (a veth deleted with the container netns would be gone for good). */
export function vfToHost(s: Site, vf: Vf, netnsPath: string, ifname: string): void {
  sh('ip', ['-n', nsName(netnsPath), 'addr', 'flush', 'dev', ifname]);
  sh('ip', ['-n', nsName(netnsPath), 'link', 'set', 'dev', ifname, 'down']);
  sh('ip', ['-n', nsName(netnsPath), 'link', 'set', 'dev', ifname, 'netns', s.hostNetns, 'name', vf.netdev]);
}

export function nsName(path: string): string {
  return path.replace('/run/netns/', '');
}

export function inNetns(path: string, cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', nsName(path), cmd, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function ping(fromNetns: string, ip: string, count = 2): boolean {
  return inNetns(fromNetns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', ip]).status === 0;
}

export function linkJson(netnsName: string, dev: string): { ifname: string; address: string; mtu: number; flags: string[] } | undefined {
  const r = spawnSync('ip', ['-n', netnsName, '-j', 'link', 'show', 'dev', dev], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.stdout) as Array<{ ifname: string; address: string; mtu: number; flags: string[] }>)[0];
}

export function counter(netns: string, dev: string, stat: string): number {
  return Number(inNetns(netns, 'cat', [`/sys/class/net/${dev}/statistics/${stat}`]).stdout.trim());
}

export function readJsonLines(path: string): Array<Record<string, unknown>> {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function firstIp(result: Record<string, unknown> | undefined): string {
  const ips = (result?.ips ?? []) as Array<{ address: string }>;
  if (!ips[0]) throw new Error(`no ips in result ${JSON.stringify(result)}`);
  return ips[0].address.split('/')[0] as string;
}
