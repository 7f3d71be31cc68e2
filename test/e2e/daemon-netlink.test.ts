/**
 * End-to-end: the host steps go through in-process rtnetlink (native/rtnetlink, loaded from the executable's SEA
 * asset), in the daemon and in the standalone plugin alike: an ADD and a DEL start no `ip`, `nsenter` or `tee`
 * (counted with strace: every child that made a successful execve). A file of the addon's name in the native
 * directory whose hash is not the one recorded at build time is replaced; when the addon cannot be loaded at all
 * (here: a directory in the file's place) the process says why once and runs `ip` and `nsenter` instead.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  BINARY, cni, type CniCall, container, envFor, firstIp, hostLocal, inNetns, netConf, nodeEnv, readJsonLines, removeContainers, requireBinary, type Site, site, spawnDaemon, stopDaemon,
  type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(240000);

const hasStrace = spawnSync('strace', ['-V']).status === 0;
const maybe = hasStrace ? describe : describe.skip;
const ADDON_SHA = join(__dirname, '../../build/rtnetlink.node.sha256');

let tb: Testbed;
let A: Site;

beforeAll(() => {
  if (!hasStrace) return;
  requireBinary();
  tb = testbedUp(4, 'a,b');
  A = site(tb, 'a');
});

afterAll(() => {
  if (!hasStrace) return;
  removeContainers();
  testbedDown();
});

interface Traced {
  proc: ChildProcess;
  out: string;
}

/** Attaches strace -f to a running daemon; resolves once the kernel reports the tracer. */
async function trace(pid: number, out: string): Promise<Traced> {
  rmSync(out, { force: true });
  const proc = spawn('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  const deadline = Date.now() + 20000;
  while (!/TracerPid:\s+[1-9]/.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) {
    if (Date.now() > deadline) throw new Error(`strace did not attach to ${pid}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, out };
}

/** Detaches and returns the program each child of the daemon ran first (nsenter then execs ip in the same process). */
async function children(t: Traced): Promise<string[]> {
  await new Promise<void>((resolve) => {
    t.proc.once('exit', () => resolve());
    t.proc.kill('SIGINT');
  });
  const byPid = new Map<string, string>();
  // Concurrent children split a call: `execve("X", ... <unfinished ...>`, later `<... execve resumed>...) = 0`.
  const pending = new Map<string, string>();
  for (const line of existsSync(t.out) ? readFileSync(t.out, 'utf8').split('\n') : []) {
    const started = /^(\d+) +execve\("([^"]+)"/.exec(line);
    const pid = /^(\d+) /.exec(line)?.[1] ?? '';
    if (started && line.endsWith('<unfinished ...>')) pending.set(pid, started[2] as string);
    const path = started && / = 0$/.test(line) ? started[2] : /^\d+ +<\.\.\. execve resumed>.* = 0$/.test(line) ? pending.get(pid) : undefined;
    if (path && !byPid.has(pid)) byPid.set(pid, path.split('/').pop() as string);
  }
  return [...byPid.values()];
}

const addonFile = (dir: string) => join(dir, `rtnetlink-${readFileSync(ADDON_SHA, 'utf8').trim().slice(0, 16)}.node`);

/** A root-only native directory (under the testbed's state) whose addon file name is taken by a directory. */
function unplaceableNativeDir(name: string): string {
  const dir = join(tb.stateDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  chmodSync(dir, 0o700);
  mkdirSync(addonFile(dir));
  return dir;
}

/** Runs the standalone plugin under strace -f in the host's netns; its stdout, status and the programs its children ran. */
function tracedPlugin(conf: Record<string, unknown>, call: CniCall, env: Record<string, string>): { stdout: string; status: number | null; children: string[] } {
  const out = join(tb.stateDir, `strace-standalone-${call.containerId}-${call.command}`);
  rmSync(out, { force: true });
  const r = spawnSync('ip', ['netns', 'exec', A.hostNetns, 'strace', '-f', '-qq', '-e', 'trace=execve', '-o', out, BINARY], { input: JSON.stringify(conf), env: { ...envFor(call, nodeEnv(A, conf)), ...env }, encoding: 'utf8', timeout: 120000 });
  const byPid = new Map<string, string>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^(\d+) +execve\("([^"]+)".*= 0$/.exec(line);
    if (m && !byPid.has(m[1] as string)) byPid.set(m[1] as string, (m[2] as string).split('/').pop() as string);
  }
  const [, ...children] = [...byPid.values()]; // the first is the plugin itself
  return { stdout: r.stdout, status: r.status, children };
}

/** A standalone ADD (with an address and a route) then DEL with native directory dir; the children of each and the plugin's netlink log lines. */
function standaloneAddDel(id: string, dir: string): { add: string[]; del: string[]; lines: Array<Record<string, unknown>> } {
  const logFile = join(tb.stateDir, `plugin-${A.name}.log`);
  const before = readJsonLines(logFile).length;
  const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.95.0.0/24', '10.95.0.10', '10.95.0.20') });
  const ns = container(id);
  const call = { containerId: id, netns: ns, ifname: 'net1' };
  const add = tracedPlugin(conf, { command: 'ADD', ...call }, { DPU_OVERLAY_NATIVE_DIR: dir });
  expect([add.status, add.stdout]).toEqual([0, expect.stringContaining('"interfaces"')]);
  expect(via(id, 'ADD')).toBeUndefined();
  expect(inNetns(ns, 'ip', ['-o', 'addr', 'show', 'dev', 'net1']).stdout).toContain(`inet ${firstIp(JSON.parse(add.stdout))}/24`);
  expect(inNetns(ns, 'cat', ['/proc/sys/net/ipv4/conf/net1/arp_notify']).stdout.trim()).toBe('1');
  const del = tracedPlugin(conf, { command: 'DEL', ...call }, { DPU_OVERLAY_NATIVE_DIR: dir });
  expect(del.status).toBe(0);
  expect(inNetns(ns, 'ip', ['-o', 'link', 'show']).stdout.split('\n').filter(Boolean)).toHaveLength(1); // lo only
  return { add: add.children, del: del.children, lines: readJsonLines(logFile).slice(before).filter((l) => /in-process netlink/.test(String(l.msg))) };
}

function daemonConf(socket: string): Record<string, unknown> {
  return netConf(tb, A, { ipam: hostLocal(tb, A, '10.94.0.0/24', '10.94.0.10', '10.94.0.20'), dpu: { daemonSocket: socket } });
}

const netlinkLines = (log: string) => readJsonLines(log).filter((l) => /in-process netlink/.test(String(l.msg)));
const via = (containerId: string, command: string) => readJsonLines(join(tb.stateDir, `plugin-${A.name}.log`)).filter((l) => l.msg === `${command} done` && l.containerId === containerId).at(-1)?.via;

/** ADD (with an address and a route), then DEL, through the daemon at socket, with strace on it; the children of each. */
async function addAndDel(daemon: ChildProcess, socket: string, id: string): Promise<{ add: string[]; del: string[] }> {
  const conf = daemonConf(socket);
  const ns = container(id);
  const call = { containerId: id, netns: ns, ifname: 'net1' };
  let t = await trace(daemon.pid as number, join(tb.stateDir, `strace-${id}-add`));
  const add = cni(A, conf, { command: 'ADD', ...call });
  const addChildren = await children(t);
  expect([add.status, add.json?.msg]).toEqual([0, undefined]);
  expect(via(id, 'ADD')).toBe('daemon');
  expect(inNetns(ns, 'ip', ['-o', 'addr', 'show', 'dev', 'net1']).stdout).toContain(`inet ${firstIp(add.json)}/24`);
  expect(inNetns(ns, 'cat', ['/proc/sys/net/ipv4/conf/net1/arp_notify']).stdout.trim()).toBe('1');

  t = await trace(daemon.pid as number, join(tb.stateDir, `strace-${id}-del`));
  const del = cni(A, conf, { command: 'DEL', ...call });
  const delChildren = await children(t);
  expect(del.status).toBe(0);
  expect(via(id, 'DEL')).toBe('daemon');
  expect(inNetns(ns, 'ip', ['-o', 'link', 'show']).stdout.split('\n').filter(Boolean)).toHaveLength(1); // lo only
  return { add: addChildren, del: delChildren };
}

maybe('the daemon speaks rtnetlink itself', () => {
  test('ADD and DEL through the daemon start no ip, nsenter or tee: only the IPAM plugin', async () => {
    const socket = join(tb.stateDir, 'daemon-nl', 'd.sock');
    const log = join(tb.stateDir, 'daemon-nl.log');
    const d = await spawnDaemon(A, { socket, logFile: log, stateDir: join(tb.stateDir, `plugin-${A.name}`) });
    try {
      expect(netlinkLines(log)).toEqual([expect.objectContaining({ msg: 'in-process netlink loaded', level: 30 })]);
      const { add, del } = await addAndDel(d, socket, 'nl1');
      expect(add.filter((n) => n !== 'host-local')).toEqual([]);
      expect(add).toContain('host-local');
      expect(del.filter((n) => n !== 'host-local')).toEqual([]);
    } finally {
      await stopDaemon(d);
    }
  });

  test('an addon that cannot be placed (a directory in its file\'s place): one warning saying so and what to do, and the daemon runs ip', async () => {
    const dir = unplaceableNativeDir('native-bad');
    const socket = join(tb.stateDir, 'daemon-nlbad', 'd.sock');
    const log = join(tb.stateDir, 'daemon-nlbad.log');
    const d = await spawnDaemon(A, { socket, logFile: log, stateDir: join(tb.stateDir, `plugin-${A.name}`), env: { DPU_OVERLAY_NATIVE_DIR: dir } });
    try {
      const { add, del } = await addAndDel(d, socket, 'nl2');
      expect(add).toEqual(expect.arrayContaining(['ip', 'nsenter']));
      expect(del).toEqual(expect.arrayContaining(['ip', 'nsenter']));
      const lines = netlinkLines(log);
      expect(lines).toEqual([expect.objectContaining({ level: 40, msg: 'in-process netlink unavailable: host link steps run ip and nsenter' })]);
      expect(String(lines[0]?.reason)).toMatch(/rtnetlink-[0-9a-f]{16}\.node is not a regular file: remove it, and writing it from the executable failed/);
    } finally {
      await stopDaemon(d);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the container looks the same after an ADD through the daemon as after a standalone one: IPv4 and IPv6 addresses, routes, MAC, MTU, sysctls; CHECK agrees', async () => {
    const socket = join(tb.stateDir, 'daemon-nl3', 'd.sock');
    const d = await spawnDaemon(A, { socket, logFile: join(tb.stateDir, 'daemon-nl3.log'), stateDir: join(tb.stateDir, `plugin-${A.name}`) });
    const ipam = {
      type: 'static',
      addresses: [{ address: '10.96.0.5/24', gateway: '10.96.0.1' }, { address: 'fd96::5/64', gateway: 'fd96::1' }],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '10.97.0.0/16', gw: '10.96.0.254' }, { dst: '10.98.0.0/16' }],
    };
    const seen = (ns: string) => ({
      link: (JSON.parse(inNetns(ns, 'ip', ['-j', 'link', 'show', 'dev', 'net1']).stdout) as Array<Record<string, unknown>>).map((l) => ({ mtu: l.mtu, flags: l.flags, up: l.operstate })),
      addrs: (JSON.parse(inNetns(ns, 'ip', ['-j', 'addr', 'show', 'dev', 'net1']).stdout) as Array<{ addr_info: Array<Record<string, unknown>> }>)[0]?.addr_info
        .filter((a) => a.scope !== 'link').map((a) => ({ family: a.family, local: a.local, prefixlen: a.prefixlen, scope: a.scope, nodad: a.nodad, broadcast: a.broadcast })),
      routes: inNetns(ns, 'ip', ['route', 'show', 'table', 'all', 'dev', 'net1']).stdout.split('\n').filter((l) => l && !/^(local|multicast|fe80|anycast)/.test(l)).sort(),
      sysctls: inNetns(ns, 'cat', ['/proc/sys/net/ipv4/conf/net1/arp_notify', '/proc/sys/net/ipv6/conf/net1/ndisc_notify']).stdout,
    });
    try {
      const views: Array<ReturnType<typeof seen>> = [];
      for (const [id, sock] of [['nl3d', socket], ['nl3s', '']] as const) {
        const conf = netConf(tb, A, { ipam, extra: { mac: '02:00:00:96:00:05', mtu: 1400 }, dpu: { daemonSocket: sock } });
        const ns = container(id);
        // container() turns IPv6 off; a link that moves in takes the namespace's defaults.
        expect(inNetns(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0']).status).toBe(0);
        const call = { containerId: id, netns: ns, ifname: 'net1' };
        const add = cni(A, conf, { command: 'ADD', ...call });
        expect([add.status, add.json?.msg]).toEqual([0, undefined]);
        expect(via(id, 'ADD')).toBe(sock ? 'daemon' : undefined);
        expect(inNetns(ns, 'cat', ['/sys/class/net/net1/address']).stdout.trim()).toBe('02:00:00:96:00:05');
        views.push(seen(ns));
        expect(cni(A, { ...conf, prevResult: add.json }, { command: 'CHECK', ...call }).status).toBe(0);
        expect(cni(A, conf, { command: 'DEL', ...call }).status).toBe(0);
      }
      expect(views[0]).toEqual(views[1]);
      expect(views[0]?.routes).toEqual(expect.arrayContaining([expect.stringMatching(/^default via fd96::1 /), expect.stringMatching(/^10\.97\.0\.0\/16 via 10\.96\.0\.254 /)]));
      expect(views[0]?.sysctls).toBe('1\n1\n');
    } finally {
      await stopDaemon(d);
    }
  });
});

maybe('the standalone plugin speaks rtnetlink itself', () => {
  const sha = () => readFileSync(ADDON_SHA, 'utf8').trim();
  const fresh = (name: string) => {
    const dir = join(tb.stateDir, name);
    rmSync(dir, { recursive: true, force: true });
    return dir;
  };

  test('first ADD writes the addon (0700 directory, 0500 file, the recorded hash); ADD and DEL start only the IPAM plugin', () => {
    const dir = fresh('native-sa');
    const { add, del, lines } = standaloneAddDel('sa1', dir);
    expect(add.filter((n) => n !== 'host-local')).toEqual([]);
    expect(add).toContain('host-local');
    expect(del.filter((n) => n !== 'host-local')).toEqual([]);
    expect(lines.filter((l) => Number(l.level) >= 40)).toEqual([]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(addonFile(dir)).mode & 0o777).toBe(0o500);
    expect(createHash('sha256').update(readFileSync(addonFile(dir))).digest('hex')).toBe(sha());
    expect(readdirSync(dir)).toEqual([basename(addonFile(dir))]);
  });

  test('a file of the addon\'s name with another hash is replaced (one warning saying what was there) and loaded', () => {
    const dir = fresh('native-sa-wrong');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700);
    writeFileSync(addonFile(dir), 'not the addon', { mode: 0o500 });
    const { add, del, lines } = standaloneAddDel('sa2', dir);
    expect(add.filter((n) => n !== 'host-local')).toEqual([]);
    expect(del.filter((n) => n !== 'host-local')).toEqual([]);
    expect(lines.filter((l) => Number(l.level) >= 40)).toEqual([expect.objectContaining({ msg: 'in-process netlink: replaced an addon file that failed its checks', was: expect.stringMatching(/has sha256 [0-9a-f]{64}, not the/) })]);
    expect(createHash('sha256').update(readFileSync(addonFile(dir))).digest('hex')).toBe(sha());
  });

  test('an addon that cannot be placed: one warning per command saying why, and ip and nsenter do the host steps', () => {
    const dir = unplaceableNativeDir('native-sa-bad');
    const { add, del, lines } = standaloneAddDel('sa3', dir);
    expect(add).toEqual(expect.arrayContaining(['ip', 'nsenter']));
    expect(del).toEqual(expect.arrayContaining(['ip', 'nsenter']));
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, command: 'ADD', msg: 'in-process netlink unavailable: host link steps run ip and nsenter', reason: expect.stringMatching(/is not a regular file: remove it/) }),
      expect.objectContaining({ level: 40, command: 'DEL', msg: 'in-process netlink unavailable: host link steps run ip and nsenter' }),
    ]);
  });

  test('concurrent first commands: eight processes race to write the addon; all load it, one file is left, no temporary files', async () => {
    const dir = fresh('native-sa-race');
    const conf = netConf(tb, A, { ipam: hostLocal(tb, A, '10.95.1.0/24', '10.95.1.10', '10.95.1.20') });
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => new Promise<number | null>((resolve) => {
      const p = spawn('ip', ['netns', 'exec', A.hostNetns, BINARY], { env: { ...envFor({ command: 'STATUS' }, nodeEnv(A, conf)), DPU_OVERLAY_NATIVE_DIR: dir }, stdio: ['pipe', 'ignore', 'ignore'] });
      p.stdin.end(JSON.stringify({ ...conf, name: `race${i}` }));
      p.once('exit', (code) => resolve(code));
    })));
    expect(runs).toEqual(Array(8).fill(0));
    expect(readdirSync(dir)).toEqual([basename(addonFile(dir))]);
    expect(createHash('sha256').update(readFileSync(addonFile(dir))).digest('hex')).toBe(sha());
    const warned = readJsonLines(join(tb.stateDir, `plugin-${A.name}.log`)).filter((l) => /in-process netlink/.test(String(l.msg)) && Number(l.level) >= 40 && /^race/.test(String(l.network)));
    expect(warned).toEqual([]);
  });
});
