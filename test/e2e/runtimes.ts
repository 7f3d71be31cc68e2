/**
 * Real container runtimes (Podman with its CNI backend, containerd + ctr, libcni) on an emulated host, kept
 * private to the test: each runtime host is a long-lived private mount namespace (an "anchor" process, as the
 * testbed does for the DPUs) in which /etc/cni/net.d, /opt/cni/bin and /var/lib are test directories, and
 * every runtime command joins that mount namespace and the emulated host's network namespace.
 * `ip netns exec` is not used: it remounts /sys, and runc then finds no cgroup mounts.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BINARY, CNI_PATH, hostNodeFilePath, NODE_FILE, netConf, type NetOptions, PREFIX, ROOT, type Site, type Testbed } from '../testkit/testbed';

export const CNI_CONF = join(ROOT, 'cni-conf');
export const IMAGE = `localhost/${PREFIX}-busybox:latest`;

export type Json = Record<string, unknown>;
export interface ConfList extends Json { cniVersion: string; name: string; plugins: Json[] }

export function readShipped(file: string): string {
  return readFileSync(join(CNI_CONF, file), 'utf8');
}

export interface SiteAddresses {
  /** host-local range of this host inside the shipped subnet (each node gets its own range). */
  range: [string, string];
}

/** The directory a runtime host sees as /etc/cni/dpu-overlay: its node.json is the site's node file. */
export function etcDirOf(tb: Testbed, s: Site): string {
  return dirname(hostNodeFilePath(tb, s));
}

/**
 * The one place where a shipped config is adapted to the testbed. The network config keeps only the IPAM
 * directories and range of the site; the site's values (DPU address, VTEPs, SSH files, and the emulation's sysfs
 * tree, datapath, state and log) go into its node file, etcDirOf(tb, s)/node.json, which runtime hosts see at
 * the default path /etc/cni/dpu-overlay/node.json (the returned list's NODE_FILE names it). node: other node
 * values (NetOptions dpu / drop), e.g. OVN mode.
 */
export function forTestbed(shipped: ConfList, tb: Testbed, s: Site, a: SiteAddresses, node: Pick<NetOptions, 'dpu' | 'drop' | 'extra'> = {}): ConfList & { [NODE_FILE]?: string } {
  const plugins = shipped.plugins.map((p) => {
    if (p.type !== 'dpu-overlay') return p;
    const ipam = p.ipam as Json | undefined;
    const ranges = ipam?.ranges as Array<Array<Json>> | undefined;
    return {
      ...p,
      ...(ipam ? {
        ipam: {
          ...ipam,
          ...(ranges ? { ranges: ranges.map((set) => set.map((r) => ({ ...r, rangeStart: a.range[0], rangeEnd: a.range[1] }))) } : {}),
          dataDir: join(tb.stateDir, `ipam-${s.name}-${shipped.name}`),
        },
      } : {}),
    };
  });
  // the host's own node file (the one its daemon reads too), with the test's node values if it has any
  const path = hostNodeFilePath(tb, s);
  const own = netConf(tb, s, node)[NODE_FILE] as string;
  if (own !== path) {
    writeFileSync(`${path}.tmp`, readFileSync(own, 'utf8'), { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
  }
  return Object.assign({ ...shipped, plugins }, { [NODE_FILE]: path });
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, timeout: opts.timeout ?? 120000 });
}

export function ok(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const ANCHOR_SCRIPT = `set -e
d=$1; shift
n=0
# A writable overlay on an existing directory: what is written below it lands in $d. The paths in $KEEP
# below it (shared with the host: /run/netns, the testbed's state) are carried over on top of it.
overlay() {
  n=$((n + 1))
  o=$d/overlay$n
  mkdir -p "$o/upper" "$o/work" "$o/keep"
  k=0
  for keep in $KEEP; do
    case $keep in "$1"/*) k=$((k + 1)); mkdir -p "$o/keep/$k"; mount --rbind "$keep" "$o/keep/$k" ;; esac
  done
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$o/upper,workdir=$o/work" "$1"
  k=0
  for keep in $KEEP; do
    case $keep in "$1"/*) k=$((k + 1)); mount --move "$o/keep/$k" "$keep" ;; esac
  done
}
for pair in "$@"; do
  target=\${pair%%=*} source=\${pair#*=}
  if [ "$source" = overlay ]; then overlay "$target"; continue; fi
  if [ ! -d "$target" ]; then
    parent=$(dirname "$target")
    while [ ! -d "$parent" ]; do parent=$(dirname "$parent"); done
    overlay "$parent"
    mkdir -p "$target"
  fi
  mount --bind "$source" "$target"
done
echo $$ >"$d/anchor.pid.tmp"
mv "$d/anchor.pid.tmp" "$d/anchor.pid"
exec sleep infinity`;

function sameMountNs(pid: number, anchor: number): boolean {
  try {
    return pid !== anchor && statSync(`/proc/${pid}/ns/mnt`).ino === statSync(`/proc/${anchor}/ns/mnt`).ino;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The CNI plugins a runtime host offers: the packaged dpu-overlay and Debian's reference plugins. */
export function pluginDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  symlinkSync(BINARY, join(dir, 'dpu-overlay'));
  for (const p of readdirSync(CNI_PATH)) symlinkSync(join(CNI_PATH, p), join(dir, p));
  return dir;
}

/** One emulated host as a runtime sees it: its netns, a private mount namespace, private CNI dirs. */
export class RuntimeHost {
  readonly netDir: string;
  readonly binDir: string;
  private anchor = 0;
  private readonly teardowns: Array<() => void> = [];

  constructor(readonly site: Site, readonly dir: string) {
    rmSync(dir, { recursive: true, force: true });
    this.netDir = join(dir, 'net.d');
    mkdirSync(this.netDir, { recursive: true });
    this.binDir = pluginDir(join(dir, 'bin'));
  }

  /**
   * /etc/cni/net.d and /opt/cni/bin (fixed in ctr) are this host's. /var/lib (libcni's cache /var/lib/cni) and
   * /run (runc, containerd's shim sockets and FIFOs, libpod) are overlays, except /run/netns and the testbed.
   * extraBinds: more "target=source" directories of this host (e.g. its /etc/cni/dpu-overlay).
   */
  start(tb: Testbed, extraBinds: string[] = []): this {
    // the site's node file at the default path, as on a real node (unless the test brings its own directory)
    const etc = extraBinds.some((b) => b.startsWith('/etc/cni/dpu-overlay=')) ? [] : [`/etc/cni/dpu-overlay=${etcDirOf(tb, this.site)}`];
    mkdirSync(etcDirOf(tb, this.site), { recursive: true, mode: 0o755 });
    const binds = [`/etc/cni/net.d=${this.netDir}`, `/opt/cni/bin=${this.binDir}`, '/var/lib=overlay', '/run=overlay', ...etc, ...extraBinds];
    const env = { ...process.env, KEEP: `/run/netns ${tb.stateDir}` };
    const log = join(this.dir, 'anchor.log');
    // the anchor must not hold our pipes open (spawnSync would wait for it)
    ok(run('sh', ['-c', 'setsid -f "$@" </dev/null >"$0" 2>&1', log, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', ANCHOR_SCRIPT, 'anchor', this.dir, ...binds], { env }), 'anchor');
    const pidFile = join(this.dir, 'anchor.pid');
    for (let i = 0; i < 500 && !existsSync(pidFile); i++) spawnSync('sleep', ['0.01']);
    if (!existsSync(pidFile)) throw new Error(`mount namespace for ${this.site.name} did not come up: ${readFileSync(log, 'utf8')}`);
    this.anchor = Number(readFileSync(pidFile, 'utf8').trim());
    return this;
  }

  /** Runs a command in this host's network namespace and private mount namespace. */
  exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
    return run('nsenter', ['-t', String(this.anchor), '-m', `--net=/run/netns/${this.site.hostNetns}`, cmd, ...args], opts);
  }

  writeConf(file: string, conf: Json): string {
    const path = join(this.netDir, file);
    writeFileSync(path, JSON.stringify(conf, null, 2));
    return path;
  }

  onStop(fn: () => void): void {
    this.teardowns.unshift(fn);
  }

  /** Runtime-level cleanup first (containers live in their own mount namespaces), then every process left in ours. */
  stop(): void {
    for (const fn of this.teardowns) {
      try {
        fn();
      } catch (err) {
        console.warn(`teardown of ${this.dir}: ${(err as Error).message}`);
      }
    }
    if (this.anchor && alive(this.anchor)) {
      const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => sameMountNs(p, this.anchor));
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        for (const p of [...pids, this.anchor]) {
          try { process.kill(p, sig); } catch { /* gone */ }
        }
        for (let i = 0; i < 200 && [...pids, this.anchor].some(alive); i++) spawnSync('sleep', ['0.01']);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmEmptyDir(dirname(this.dir));
  }
}

export function rmEmptyDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty or gone
  }
}

/** A root filesystem with Debian's busybox-static, packed for `podman import` (no registry here). */
export function busyboxRootfsTar(dir: string): string {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  ok(run('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]), 'copy busybox');
  for (const applet of ['sh', 'ip', 'ping', 'sleep', 'cat', 'ls', 'cp', 'mv', 'chmod', 'mkdir', 'echo', 'sysctl']) {
    symlinkSync('busybox', join(root, 'bin', applet));
  }
  const tar = join(dir, 'rootfs.tar');
  ok(run('tar', ['-C', root, '-cf', tar, '.']), 'tar rootfs');
  return tar;
}

/** Podman 4.3, CNI backend, runc, all state under the host's dir. */
export class Podman {
  readonly env: NodeJS.ProcessEnv;

  constructor(readonly host: RuntimeHost) {
    const d = join(host.dir, 'podman');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'containers.conf'), [
      '[containers]',
      // podman's default ulimits fail in this sandbox
      'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${host.binDir}"]`,
      `network_config_dir = "${host.netDir}"`,
      '[engine]',
      // crun: "cgroups in hybrid mode not supported"
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(d, 'events.log')}"`,
      `tmp_dir = "${join(d, 'tmp')}"`,
      `volume_path = "${join(d, 'volumes')}"`,
      '',
    ].join('\n'));
    writeFileSync(join(d, 'storage.conf'), ['[storage]', 'driver = "vfs"', `graphroot = "${join(d, 'root')}"`, `runroot = "${join(d, 'run')}"`, ''].join('\n'));
    this.env = { ...process.env, CONTAINERS_CONF: join(d, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(d, 'storage.conf') };
    host.onStop(() => {
      this.run(['rm', '--all', '--force', '--time', '0']);
    });
  }

  run(args: string[]): SpawnSyncReturns<string> {
    return this.host.exec('podman', args, { env: this.env });
  }

  ok(args: string[]): string {
    return ok(this.run(args), `podman ${args.join(' ')}`);
  }

  importBusybox(): void {
    this.ok(['import', busyboxRootfsTar(join(this.host.dir, 'image')), IMAGE]);
  }
}

/** A private containerd 1.6 (own config, root, state, socket) and ctr in namespace <prefix>. */
export class Containerd {
  readonly socket: string;
  private pid = 0;

  constructor(readonly host: RuntimeHost) {
    const d = join(host.dir, 'containerd');
    mkdirSync(d, { recursive: true });
    this.socket = join(d, 'containerd.sock');
    writeFileSync(join(d, 'config.toml'), [
      'version = 2',
      `root = "${join(d, 'root')}"`,
      `state = "${join(d, 'state')}"`,
      // CRI would load CNI configs and start its own machinery: ctr --cni is what is tested here
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${this.socket}"`,
      '[ttrpc]',
      `  address = "${this.socket}.ttrpc"`,
      '[debug]',
      `  address = "${join(d, 'debug.sock')}"`,
      '',
    ].join('\n'));
    host.onStop(() => this.cleanup());
  }

  start(): this {
    const d = dirname(this.socket);
    ok(this.host.exec('sh', ['-c', `setsid containerd --config "$1" >"$2" 2>&1 </dev/null & echo $! >"$3"`, 'sh', join(d, 'config.toml'), join(d, 'containerd.log'), join(d, 'containerd.pid')]), 'containerd');
    this.pid = Number(readFileSync(join(d, 'containerd.pid'), 'utf8').trim());
    for (let i = 0; i < 500; i++) {
      if (this.run(['version']).status === 0) return this;
      spawnSync('sleep', ['0.02']);
    }
    throw new Error(`containerd did not come up: ${readFileSync(join(d, 'containerd.log'), 'utf8').slice(-2000)}`);
  }

  run(args: string[], timeout?: number): SpawnSyncReturns<string> {
    return this.host.exec('ctr', ['-a', this.socket, '-n', PREFIX, ...args], { timeout });
  }

  ok(args: string[]): string {
    return ok(this.run(args), `ctr ${args.join(' ')}`);
  }

  taskPid(id: string): number {
    const line = this.ok(['tasks', 'ls']).split('\n').find((l) => l.split(/\s+/)[0] === id);
    return Number(line?.split(/\s+/)[1]);
  }

  private cleanup(): void {
    for (const line of this.run(['tasks', 'ls', '-q']).stdout.split('\n').filter(Boolean)) {
      this.run(['tasks', 'kill', '-s', 'SIGKILL', line]);
      this.run(['tasks', 'delete', '-f', line]);
    }
    for (const c of this.run(['containers', 'ls', '-q']).stdout.split('\n').filter(Boolean)) this.run(['containers', 'delete', c]);
    if (this.pid) {
      try { process.kill(this.pid, 'SIGTERM'); } catch { /* gone */ }
    }
  }
}

/** Builds test/e2e/libcni-driver offline against Debian's libcni sources (GOPATH mode) into build/. */
export function buildLibcniDriver(): string {
  const out = join(ROOT, 'build', 'libcni-driver');
  const gopath = join(ROOT, 'build', 'gopath');
  mkdirSync(gopath, { recursive: true });
  const env = { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:/usr/share/gocode`, GOCACHE: join(gopath, 'cache'), GOFLAGS: '', CGO_ENABLED: '0' };
  ok(run('go', ['build', '-o', out, join(__dirname, 'libcni-driver', 'main.go')], { env, timeout: 300000 }), 'go build libcni-driver');
  return out;
}
