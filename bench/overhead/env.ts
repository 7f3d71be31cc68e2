/**
 * Where the harness runs: the emulated testbed on this machine, or two real hosts (with DPUs) over SSH.
 * Both give the modes the same things: two Nodes (client side, server side), their underlay addresses, how to
 * call the CNI plugin there, and which processes are "DPU" processes.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { splitByOwner } from '../../src/config/ownership';
import type { Testbed } from '../../test/testkit/testbed';
import type { Cleanup } from './cleanup';
import { NetnsNode, SshNode, type Node, type Processes } from './exec';

export interface CniCall {
  argv: string[];
  input?: string;
}

export interface DaemonPid {
  node: Node;
  what: string;
  pid: number;
}

export interface Environment {
  readonly kind: 'emulated' | 'real';
  /** a plain statement of what produced the numbers, printed and written into the results */
  readonly description: string;
  readonly notes: string[];
  readonly nodes: [Node, Node];
  /** cores of the emulated DPUs (empty on real hosts: their DPUs have their own CPUs) */
  readonly dpuCores: number[];
  readonly prefix: string;
  /** host's address on the underlay (no prefix length) and its prefix length */
  underlayIp(node: Node): string;
  readonly underlayPrefixLen: number;
  underlayDev(node: Node): string;
  /** makes the host-to-host underlay link usable (emulated: a veth from the host netns into the underlay bridge) */
  underlayUp(node: Node, cleanup: Cleanup): Promise<void>;
  /** the packaged plugin on `node`, with `vfs` ADD/DEL-able and the network config of the dpu mode on stdin */
  cni(node: Node, env: Record<string, string>): CniCall;
  /**
   * After the plugin attached a VF (MAC `vfMac`) to `containerNs`: on the emulated testbed, steer each side's
   * receive processing to where a real NIC's interrupts would put it (nothing to do on real hosts).
   */
  placeVfInterrupts(node: Node, containerNs: string, vfMac: string): Promise<void>;
  /** the DPU processes the harness pins (emulated) and checks the affinity of */
  dpuDaemons(): DaemonPid[];
  prepare(maxPairs: number, cleanup: Cleanup): Promise<void>;
  /** (re)pins the DPU processes, including threads created since */
  pinDpu(): Promise<void>;
}

export function repoRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = join(dir, '..');
    if (up === dir) throw new Error('cannot find the repository root');
    dir = up;
  }
  return dir;
}

const VNI = 4300;

export interface EmulatedOptions {
  hostCores: number[];
  dpuCores: number[];
  binary: string;
}

export class EmulatedEnvironment implements Environment {
  readonly kind = 'emulated' as const;
  readonly prefix = process.env.DPUO_TESTBED_PREFIX ?? 'dpuo';
  readonly underlayPrefixLen = 24;
  readonly nodes: [Node, Node];
  readonly dpuCores: number[];
  readonly notes = [
    'Both emulated hosts (client and server side) share the host core(s): the host figures count both ends of every pair.',
    'dpu mode: a veth delivers a packet on the core that sent it, so the harness sets RPS to put receive processing ' +
      'where real interrupts would: VF (container eth0) on the host core, representor on the DPU core. The ' +
      'inter-processor interrupts this costs count as host interrupts, standing in for the VF\'s device interrupts.',
    'The emulated DPU is OVS\'s userspace datapath on one shared core: the dpu mode\'s throughput is that core\'s, ' +
      'not a BlueField eswitch\'s, and the per-Gbit figures of that mode are inflated by it.',
  ];
  private tb: Testbed | undefined;
  private readonly testbedSh = join(repoRoot(), 'test', 'testkit', 'testbed.sh');

  constructor(
    private readonly procs: Processes,
    private readonly opts: EmulatedOptions,
  ) {
    this.nodes = [new NetnsNode('a', `${this.prefix}-host-a`, opts.hostCores), new NetnsNode('b', `${this.prefix}-host-b`, opts.hostCores)];
    this.dpuCores = opts.dpuCores;
  }

  get description(): string {
    return (
      `EMULATED testbed on one ${cpuCount()}-core machine (${kernel()}): hosts and DPUs are network namespaces; ` +
      `both emulated hosts share host core(s) ${this.opts.hostCores.join(',')}, the emulated DPUs' ovs-vswitchd ` +
      `(userspace datapath) and sshd are pinned to DPU core(s) ${this.dpuCores.join(',')}. Not a measurement of real hardware.`
    );
  }

  underlayIp(node: Node): string {
    return `203.0.113.${node.name === 'a' ? 1 : 2}`;
  }

  underlayDev(): string {
    return 'ovhul0';
  }

  async prepare(maxPairs: number, cleanup: Cleanup): Promise<void> {
    if (this.opts.hostCores.some((c) => this.dpuCores.includes(c))) throw new Error('host and DPU cores must differ');
    if (!existsSync(this.opts.binary)) throw new Error(`${this.opts.binary} is missing: run npm run build first`);
    const work = this.workDir();
    cleanup.push(`work dir ${work}`, ['rm', '-rf', work]);
    await this.procs.check(['mkdir', '-p', work]);
    cleanup.push('testbed', this.testbedCommand('down'), { check: true });
    await this.procs.check(this.testbedCommand('up', '--sites', 'a,b', '--vfs', String(Math.max(1, maxPairs))));
    this.tb = JSON.parse(await this.procs.check(this.testbedCommand('env'))) as Testbed;
    await this.pinDpu();
  }

  /** testbed.sh with the harness's own state dir inside the work dir, so teardown removes all of it */
  private testbedCommand(...args: string[]): string[] {
    return ['env', `DPUO_TESTBED_PREFIX=${this.prefix}`, `DPUO_TESTBED_DIR=${this.workDir()}/testbed`, 'bash', this.testbedSh, ...args];
  }

  /** plugin and IPAM state of the dpu mode, host-overlay OVS state */
  private workDir(): string {
    return `/run/${this.prefix}-overhead`;
  }

  private testbed(): Testbed {
    if (!this.tb) throw new Error('testbed is not up');
    return this.tb;
  }

  async underlayUp(node: Node, cleanup: Cleanup): Promise<void> {
    const peer = `${this.underlayDev()}-${node.name}`;
    const ns = `${this.prefix}-underlay`;
    await this.procs.check(node.command(['ip', 'link', 'add', this.underlayDev(), 'type', 'veth', 'peer', 'name', peer, 'netns', ns]));
    cleanup.push(`underlay link of host ${node.name}`, node.command(['ip', 'link', 'del', this.underlayDev()]));
    await this.procs.check(['ip', '-n', ns, 'link', 'set', peer, 'master', 'br-ul', 'up']);
    await this.procs.check(node.command(['ip', 'addr', 'add', `${this.underlayIp(node)}/${this.underlayPrefixLen}`, 'dev', this.underlayDev()]));
    await this.procs.check(node.command(['ip', 'link', 'set', this.underlayDev(), 'up']));
  }

  cni(node: Node, env: Record<string, string>): CniCall {
    const tb = this.testbed();
    const s = tb.sites.find((x) => x.name === node.name);
    if (!s) throw new Error(`no site ${node.name} in the testbed`);
    const ranges: Record<string, [string, string]> = { a: ['10.43.0.10', '10.43.0.99'], b: ['10.43.0.110', '10.43.0.199'] };
    const [rangeStart, rangeEnd] = ranges[node.name] as [string, string];
    const conf = {
      cniVersion: '1.1.0',
      name: 'overhead',
      type: 'dpu-overlay',
      vni: VNI,
      pf: s.pf,
      mtu: 1450,
      sysfsRoot: s.sysfsRoot,
      stateDir: join(this.workDir(), `plugin-${s.name}`),
      logFile: join(this.workDir(), `plugin-${s.name}.log`),
      ipam: { type: 'host-local', subnet: '10.43.0.0/24', rangeStart, rangeEnd, dataDir: join(this.workDir(), `ipam-${s.name}`) },
      dpu: {
        host: s.dpuHost, port: s.dpuPort, user: s.dpuUser, privateKeyFile: tb.privateKeyFile, knownHostsFile: tb.knownHostsFile,
        datapathType: 'netdev', localVtep: s.localVtep, remoteVteps: s.remoteVteps, timeoutMs: 10000, daemonSocket: '',
      },
    };
    // the host's values go into its node file, root's, as an operator splits them (docs/security.md)
    const split = splitByOwner(conf);
    const nodeFile = join(this.workDir(), `node-${s.name}.json`);
    writeFileSync(nodeFile, JSON.stringify(split.node), { mode: 0o644 });
    return { argv: node.command([this.opts.binary], { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: '/usr/lib/cni', DPU_OVERLAY_NODE_CONFIG: nodeFile, ...env } }), input: JSON.stringify(split.network) };
  }

  /**
   * A veth delivers a packet in a softirq on the core that sent it, so without this the container's TCP receive
   * would run on the DPU core (OVS sends into the VF) and OVS's packet-socket receive on the host core. RPS moves
   * them where a VF's and a representor's interrupts would: the VF's to the host core, the representor's to the
   * DPU core (the inter-processor interrupts it costs count as interrupts, as a device IRQ would).
   */
  async placeVfInterrupts(node: Node, containerNs: string, vfMac: string): Promise<void> {
    const s = this.testbed().sites.find((x) => x.name === node.name);
    const vf = s?.vfs.find((v) => v.mac.toLowerCase() === vfMac.toLowerCase());
    if (!s || !vf) throw new Error(`no VF with MAC ${vfMac} on host ${node.name}`);
    const rps = (ns: string, dev: string, cores: number[]) =>
      this.procs.check(['ip', 'netns', 'exec', ns, 'sh', '-c', 'echo "$1" >"/sys/class/net/$0/queues/rx-0/rps_cpus"', dev, cpuMask(cores)]);
    await rps(containerNs, 'eth0', this.opts.hostCores);
    await rps(s.dpuNetns, vf.representor, this.dpuCores);
  }

  dpuDaemons(): DaemonPid[] {
    const tb = this.testbed();
    const daemons: DaemonPid[] = [];
    for (const [i, node] of this.nodes.entries()) {
      const dir = join(tb.stateDir, `dpu-${node.name}`);
      for (const [what, file] of [['ovs-vswitchd', 'run/ovs-vswitchd.pid'], ['ovsdb-server', 'run/ovsdb-server.pid'], ['sshd', 'sshd.pid']] as const) {
        const pid = Number(readFileSync(join(dir, file), 'utf8').trim());
        daemons.push({ node: this.nodes[i] as Node, what: `DPU ${node.name} ${what}`, pid });
      }
    }
    return daemons;
  }

  async pinDpu(): Promise<void> {
    for (const d of this.dpuDaemons()) await this.procs.check(['taskset', '-a', '-c', '-p', this.dpuCores.join(','), String(d.pid)]);
  }
}

// ---------------------------------------------------------------- real hosts

export const RealHostsConfig = z.object({
  hosts: z
    .array(
      z.object({
        name: z.string().regex(/^[a-z0-9-]+$/),
        /** ssh destination, e.g. root@node-a (key-based login) */
        ssh: z.string().min(1),
        sshOptions: z.array(z.string()).default([]),
        /** the host's underlay interface and address, used by host and host-overlay modes */
        underlayDev: z.string().min(1),
        underlayIp: z.string().regex(/^\d+\.\d+\.\d+\.\d+$/),
        underlayPrefixLen: z.number().int().min(8).max(30).default(24),
        /** host cores to measure and load with hogs; default: all online cores */
        cores: z.array(z.number().int().min(0)).optional(),
        /** the dpu-overlay plugin and a network config file for it, both on that host */
        plugin: z.string().default('/opt/cni/bin/dpu-overlay'),
        netconf: z.string().min(1),
      }),
    )
    .length(2),
});
export type RealHostsConfig = z.infer<typeof RealHostsConfig>;

export class RealEnvironment implements Environment {
  readonly kind = 'real' as const;
  readonly prefix = 'ovh';
  readonly dpuCores: number[] = [];
  readonly notes: string[] = [];
  readonly nodes: [Node, Node];
  readonly underlayPrefixLen: number;

  constructor(
    private readonly procs: Processes,
    private readonly config: RealHostsConfig,
    cores: [number[], number[]],
  ) {
    const [a, b] = config.hosts as [RealHostsConfig['hosts'][0], RealHostsConfig['hosts'][0]];
    this.nodes = [new SshNode(a.name, a.ssh, a.cores ?? cores[0], a.sshOptions), new SshNode(b.name, b.ssh, b.cores ?? cores[1], b.sshOptions)];
    this.underlayPrefixLen = a.underlayPrefixLen;
  }

  get description(): string {
    return `REAL hosts ${this.config.hosts.map((h) => `${h.name} (${h.ssh})`).join(' and ')}, driven over SSH; all counters from the hosts' own cores.`;
  }

  private host(node: Node): RealHostsConfig['hosts'][0] {
    const h = this.config.hosts.find((x) => x.name === node.name);
    if (!h) throw new Error(`no host ${node.name}`);
    return h;
  }

  underlayIp(node: Node): string {
    return this.host(node).underlayIp;
  }

  underlayDev(node: Node): string {
    return this.host(node).underlayDev;
  }

  async underlayUp(): Promise<void> {
    // real hosts are already wired
  }

  async placeVfInterrupts(): Promise<void> {
    // real VFs and representors interrupt their own CPUs
  }

  cni(node: Node, env: Record<string, string>): CniCall {
    const h = this.host(node);
    return { argv: node.command(['sh', '-c', 'exec "$0" <"$1"', h.plugin, h.netconf], { env }) };
  }

  dpuDaemons(): DaemonPid[] {
    return [];
  }

  async prepare(): Promise<void> {
    for (const node of this.nodes) await this.procs.check(node.command(['true']));
  }

  async pinDpu(): Promise<void> {
    // the DPUs have their own cores
  }
}

/** Reads a real-hosts config file and asks each host for its online cores (unless given). */
export async function realEnvironment(procs: Processes, file: string): Promise<RealEnvironment> {
  const config = RealHostsConfig.parse(JSON.parse(readFileSync(file, 'utf8')));
  const cores = await Promise.all(
    config.hosts.map(async (h) => {
      if (h.cores) return h.cores;
      const probe = new SshNode(h.name, h.ssh, [], h.sshOptions);
      const n = Number((await procs.check(probe.command(['nproc']))).trim());
      return Array.from({ length: n }, (_, i) => i);
    }),
  );
  return new RealEnvironment(procs, config, cores as [number[], number[]]);
}

/** [0, 2] -> "5" (the hex CPU mask of sysfs) */
export function cpuMask(cores: number[]): string {
  return cores.reduce((m, c) => m | (1n << BigInt(c)), 0n).toString(16);
}

function cpuCount(): number {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
}

function kernel(): string {
  return `Linux ${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}`;
}
