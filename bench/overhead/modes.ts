/**
 * The three ways of connecting the iperf3 pairs that the paper compares (section IV, Fig. 4):
 *   host          host-to-host over the underlay, no overlay
 *   host-overlay  what Docker's overlay driver builds: per-container veth into a Linux bridge with a kernel
 *                 VXLAN device, all on the host (on a kernel without vxlan: a userspace OVS on the host core)
 *   dpu           containers attached by this plugin: a VF each, bridging and VXLAN on the DPU
 */
import { join } from 'node:path';
import type { Cleanup } from './cleanup';
import type { Environment } from './env';
import { onNode, sleep, type Node, type Processes } from './exec';

export const MODES = ['host', 'host-overlay', 'dpu'] as const;
export type ModeName = (typeof MODES)[number];

export interface Place {
  node: Node;
  /** a container's network namespace; the host's own when absent */
  netns?: string;
}

export interface Pair {
  client: Place;
  server: Place;
  serverIp: string;
  port: number;
}

/** A process of the mode's own plumbing whose CPU affinity the results report (host- or DPU-side). */
export interface PlumbingProcess {
  role: 'host' | 'dpu';
  node: Node;
  what: string;
  pid: number;
}

export interface ModeSetup {
  pairs: Pair[];
  /** how the mode was realised in this environment (e.g. the host-overlay substitution) */
  realisation: string;
  processes: PlumbingProcess[];
}

export type HostOverlayDatapath = 'auto' | 'kernel' | 'ovs';

export interface ModeContext {
  env: Environment;
  /** host-overlay: kernel bridge + VXLAN device, the userspace-OVS substitute, or kernel where it has vxlan */
  hostOverlay: HostOverlayDatapath;
  procs: Processes;
  cleanup: Cleanup;
  log: (line: string) => void;
}

const BASE_PORT = 5201;
const OVERLAY_VNI = 4242;
const OVERLAY_MTU = 1450;

function containerName(ctx: ModeContext, node: Node, i: number): string {
  return `${ctx.env.prefix}-ctr-ovh-${node.name}${i}`;
}

/** A "container": a network namespace with IPv6 off (no router solicitations in the counts). */
async function addContainer(ctx: ModeContext, node: Node, i: number): Promise<string> {
  const ns = containerName(ctx, node, i);
  const root = { root: true };
  await ctx.procs.run(node.command(['ip', 'netns', 'del', ns], root));
  await onNode(ctx.procs, node, ['ip', 'netns', 'add', ns], root);
  ctx.cleanup.push(`container ${ns}`, node.command(['ip', 'netns', 'del', ns], root));
  await onNode(ctx.procs, node, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { netns: ns });
  await onNode(ctx.procs, node, ['ip', 'link', 'set', 'lo', 'up'], { netns: ns });
  return ns;
}

function pairsOf(n: number, make: (i: number) => Omit<Pair, 'port'>): Pair[] {
  return Array.from({ length: n }, (_, i) => ({ ...make(i), port: BASE_PORT + i }));
}

// ---------------------------------------------------------------- host

async function setupHost(ctx: ModeContext, n: number): Promise<ModeSetup> {
  const [a, b] = ctx.env.nodes;
  for (const node of ctx.env.nodes) await ctx.env.underlayUp(node, ctx.cleanup);
  return {
    pairs: pairsOf(n, () => ({ client: { node: a }, server: { node: b }, serverIp: ctx.env.underlayIp(b) })),
    realisation: `iperf3 endpoints in the hosts' own network namespace, over the underlay (${ctx.env.underlayDev(a)})`,
    processes: [],
  };
}

// ---------------------------------------------------------------- host-overlay

/** container i's overlay address: .10+i on the client host, .110+i on the server host */
function overlayIp(ctx: ModeContext, node: Node, i: number): string {
  return `10.42.0.${node === ctx.env.nodes[0] ? 10 + i : 110 + i}`;
}

/** Is the kernel VXLAN device available on `node`? (probed in a scratch namespace) */
async function kernelHasVxlan(ctx: ModeContext, node: Node): Promise<boolean> {
  const ns = `${ctx.env.prefix}-ovh-probe`;
  const root = { root: true };
  await ctx.procs.run(node.command(['ip', 'netns', 'add', ns], root));
  try {
    const r = await ctx.procs.run(node.command(['ip', 'link', 'add', 'vxprobe', 'type', 'vxlan', 'id', '1', 'dstport', '4789'], { netns: ns }));
    return r.code === 0;
  } finally {
    await ctx.procs.run(node.command(['ip', 'netns', 'del', ns], root));
  }
}

/** Per-container veth: eth0 in the container, `hostSide` in the host. */
async function vethContainer(ctx: ModeContext, node: Node, i: number, checksumOffload: boolean): Promise<{ ns: string; hostSide: string }> {
  const ns = await addContainer(ctx, node, i);
  const hostSide = `ovhv${i}`;
  await onNode(ctx.procs, node, ['ip', 'link', 'add', hostSide, 'mtu', String(OVERLAY_MTU), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(OVERLAY_MTU), 'netns', ns]);
  ctx.cleanup.push(`veth ${hostSide} on ${node.name}`, node.command(['ip', 'link', 'del', hostSide]));
  await onNode(ctx.procs, node, ['ip', 'addr', 'add', `${overlayIp(ctx, node, i)}/24`, 'dev', 'eth0'], { netns: ns });
  await onNode(ctx.procs, node, ['ip', 'link', 'set', 'eth0', 'up'], { netns: ns });
  await onNode(ctx.procs, node, ['ip', 'link', 'set', hostSide, 'up']);
  if (!checksumOffload) {
    // the userspace datapath reads these with packet sockets and does not fill in offloaded checksums
    await onNode(ctx.procs, node, ['ethtool', '-K', 'eth0', 'tx', 'off'], { netns: ns });
    await onNode(ctx.procs, node, ['ethtool', '-K', hostSide, 'tx', 'off']);
  }
  return { ns, hostSide };
}

/** Docker's overlay on a real kernel: Linux bridge + VXLAN device on the host. */
async function kernelOverlay(ctx: ModeContext, node: Node, peer: Node, n: number): Promise<string[]> {
  const env = ctx.env;
  const run = (argv: string[]) => onNode(ctx.procs, node, argv);
  await run(['ip', 'link', 'add', 'ovhbr0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  ctx.cleanup.push(`bridge ovhbr0 on ${node.name}`, node.command(['ip', 'link', 'del', 'ovhbr0']));
  await run(['ip', 'link', 'add', 'ovhvx0', 'type', 'vxlan', 'id', String(OVERLAY_VNI), 'local', env.underlayIp(node), 'dev', env.underlayDev(node), 'dstport', '4789', 'nolearning']);
  ctx.cleanup.push(`vxlan ovhvx0 on ${node.name}`, node.command(['ip', 'link', 'del', 'ovhvx0']));
  await run(['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'ovhvx0', 'dst', env.underlayIp(peer)]);
  await run(['ip', 'link', 'set', 'ovhvx0', 'master', 'ovhbr0', 'up']);
  await run(['ip', 'link', 'set', 'ovhbr0', 'up']);
  const nss: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await vethContainer(ctx, node, i, true);
    await run(['ip', 'link', 'set', c.hostSide, 'master', 'ovhbr0']);
    nss.push(c.ns);
  }
  return nss;
}

/**
 * Where the kernel has no vxlan: the same bridging and VXLAN encapsulation on the host core, by an OVS of the
 * host's own (userspace datapath, own ovsdb-server and ovs-vswitchd, pinned to the host cores).
 */
async function userspaceOvsOverlay(ctx: ModeContext, node: Node, peer: Node, n: number): Promise<{ nss: string[]; processes: PlumbingProcess[] }> {
  const env = ctx.env;
  const dir = `/run/${env.prefix}-overhead/ovs-${node.name}`;
  const ovsEnv = { OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir };
  const root = { root: true };
  const run = (argv: string[], where = {}) => onNode(ctx.procs, node, argv, where);
  const vsctl = (...args: string[]) => run(['ovs-vsctl', `--db=unix:${join(dir, 'db.sock')}`, '--timeout=10', ...args]);
  await run(['rm', '-rf', dir], root);
  await run(['mkdir', '-p', dir], root);
  ctx.cleanup.push(`run dir of host OVS`, node.command(['rmdir', '--ignore-fail-on-non-empty', join(dir, '..')], root));
  ctx.cleanup.push(`host OVS dir ${dir}`, node.command(['rm', '-rf', dir], root));
  await run(['ovsdb-tool', 'create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema'], root);
  const daemon = async (what: string, argv: string[]): Promise<number> => {
    const stop = 'p=$(cat "$0" 2>/dev/null) || exit 0; kill "$p" 2>/dev/null; n=0; while kill -0 "$p" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; kill -9 "$p" 2>/dev/null; true';
    ctx.cleanup.push(`${what} on host ${node.name}`, node.command(['sh', '-c', stop, join(dir, `${what}.pid`)], root));
    await run([...argv, `--pidfile=${join(dir, `${what}.pid`)}`, '--detach', '--no-chdir', `--log-file=${join(dir, `${what}.log`)}`, '-vconsole:off'], { pin: true, env: ovsEnv });
    return Number((await run(['cat', join(dir, `${what}.pid`)], root)).trim());
  };
  const dbPid = await daemon('ovsdb-server', ['ovsdb-server', join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`]);
  const nss: string[] = [];
  const ports: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await vethContainer(ctx, node, i, false);
    nss.push(c.ns);
    ports.push('--', 'add-port', 'ovhbr0', c.hostSide);
  }
  await vsctl(
    '--no-wait', 'init',
    '--', 'add-br', 'ovhphy', '--', 'set', 'bridge', 'ovhphy', 'datapath_type=netdev',
    '--', 'add-port', 'ovhphy', env.underlayDev(node),
    '--', 'add-br', 'ovhbr0', '--', 'set', 'bridge', 'ovhbr0', 'datapath_type=netdev',
    '--', 'add-port', 'ovhbr0', 'ovhvx0', '--', 'set', 'interface', 'ovhvx0', 'type=vxlan',
    `options:remote_ip=${env.underlayIp(peer)}`, `options:key=${OVERLAY_VNI}`,
    ...ports,
  );
  const vsPid = await daemon('ovs-vswitchd', ['ovs-vswitchd', `unix:${join(dir, 'db.sock')}`]);
  for (let w = 0; ; w++) {
    if ((await ctx.procs.run(node.command(['ip', 'link', 'show', 'ovhphy']))).code === 0) break;
    if (w > 500) throw new Error(`OVS bridge ovhphy did not appear on host ${node.name}`);
    await sleep(10);
  }
  // the underlay address moves to the OVS bridge's internal port: OVS routes the tunnel through it
  const dev = env.underlayDev(node);
  await run(['ip', 'addr', 'flush', 'dev', dev]);
  await run(['ip', 'addr', 'add', `${env.underlayIp(node)}/${env.underlayPrefixLen}`, 'dev', 'ovhphy']);
  await run(['ip', 'link', 'set', 'ovhphy', 'up']);
  // the host kernel must not answer the VXLAN packets OVS reads from the underlay link
  await ctx.procs.check(node.command(['nft', '-f', '-']), `table netdev ovh {\n chain ingress {\n  type filter hook ingress device "${dev}" priority 0; policy accept;\n  udp dport 4789 counter drop\n }\n}\n`);
  ctx.cleanup.push(`nft table on host ${node.name}`, node.command(['nft', 'delete', 'table', 'netdev', 'ovh']));
  return {
    nss,
    processes: [
      { role: 'host', node, what: `host ${node.name} ovs-vswitchd (host-overlay)`, pid: vsPid },
      { role: 'host', node, what: `host ${node.name} ovsdb-server (host-overlay)`, pid: dbPid },
    ],
  };
}

async function setupHostOverlay(ctx: ModeContext, n: number): Promise<ModeSetup> {
  const [a, b] = ctx.env.nodes;
  for (const node of ctx.env.nodes) await ctx.env.underlayUp(node, ctx.cleanup);
  const kernel = ctx.hostOverlay === 'kernel' || (ctx.hostOverlay === 'auto' && (await kernelHasVxlan(ctx, a)));
  const nss: string[][] = []; // [client side, server side][pair]
  const processes: PlumbingProcess[] = [];
  for (const [node, peer] of [[a, b], [b, a]] as const) {
    if (kernel) nss.push(await kernelOverlay(ctx, node, peer, n));
    else {
      const o = await userspaceOvsOverlay(ctx, node, peer, n);
      nss.push(o.nss);
      processes.push(...o.processes);
    }
  }
  return {
    pairs: pairsOf(n, (i) => ({ client: { node: a, netns: nss[0]?.[i] }, server: { node: b, netns: nss[1]?.[i] }, serverIp: overlayIp(ctx, b, i) })),
    realisation: kernel
      ? 'veth per container into a Linux bridge with a kernel VXLAN device on the host (as Docker overlay)'
      : `SUBSTITUTE (${ctx.hostOverlay === 'ovs' ? 'asked for with --host-overlay ovs' : 'this kernel has no vxlan device'}): ` +
        'veth per container into a userspace OVS bridge (netdev datapath) with a VXLAN port, run by an ovsdb-server/' +
        'ovs-vswitchd of the host pinned to the host core, so bridging and encapsulation are still paid by the host core',
    processes,
  };
}

// ---------------------------------------------------------------- dpu

async function setupDpu(ctx: ModeContext, n: number): Promise<ModeSetup> {
  const [a, b] = ctx.env.nodes;
  const ips: string[][] = [[], []]; // [client side, server side][pair]
  const nss: string[][] = [[], []];
  for (const [side, node] of [a, b].entries()) {
    for (let i = 0; i < n; i++) {
      const ns = await addContainer(ctx, node, i);
      const call = (command: string) => ctx.env.cni(node, { CNI_COMMAND: command, CNI_CONTAINERID: ns, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_ARGS: '' });
      const add = call('ADD');
      const del = call('DEL');
      ctx.cleanup.push(`CNI DEL of ${ns}`, del.argv, { input: del.input, check: true });
      const out = await ctx.procs.check(add.argv, add.input);
      const result = JSON.parse(out.slice(out.indexOf('{'))) as { ips?: Array<{ address: string }>; interfaces?: Array<{ mac?: string }> };
      const ip = result.ips?.[0]?.address.split('/')[0];
      const mac = result.interfaces?.[0]?.mac;
      if (!ip || !mac) throw new Error(`ADD of ${ns} returned no IP or MAC: ${out}`);
      await ctx.env.placeVfInterrupts(node, ns, mac);
      ips[side]?.push(ip);
      nss[side]?.push(ns);
    }
  }
  await ctx.env.pinDpu(); // ovs-vswitchd threads created for the new ports
  return {
    pairs: pairsOf(n, (i) => ({ client: { node: a, netns: nss[0]?.[i] }, server: { node: b, netns: nss[1]?.[i] }, serverIp: ips[1]?.[i] as string })),
    realisation: 'a VF per container (attached by the packaged dpu-overlay plugin); bridging and VXLAN by OVS on the DPU',
    processes: ctx.env.dpuDaemons().map((d) => ({ role: 'dpu', node: d.node, what: d.what, pid: d.pid })),
  };
}

export const SETUP: Record<ModeName, (ctx: ModeContext, pairs: number) => Promise<ModeSetup>> = {
  host: setupHost,
  'host-overlay': setupHostOverlay,
  dpu: setupDpu,
};
