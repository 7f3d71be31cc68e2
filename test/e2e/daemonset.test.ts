/**
 * The DaemonSet (cni-conf/daemonset.yaml) without a cluster: its containers run under Podman on an emulated node
 * (a private mount namespace with the node's /opt/cni/bin, /etc/cni, /var/lib, /var/log, /run; the emulated host's
 * network namespace), each with the command, mounts, propagation, host namespaces and privileges the manifest
 * gives it. The init containers install the plugin and generate the node's own key; the daemon container's
 * probe fails until the node file exists; then containerd (`ctr run --cni`) and the libcni driver run the
 * shipped conflist (node fields only in the node file) and every command is answered by the daemon (via "daemon").
 * The image stands in for cni-conf/Containerfile's: busybox, the executable's shared libraries, its COPY lines.
 * Emulation only: the testbed's directory (the sysfs tree) is mounted into the daemon container as well.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { parse } from 'yaml';
import { BINARY, PREFIX, readJsonLines, requireBinary, ROOT, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { httpGetScript, parseHttpGet } from './operations-kit';
import { buildLibcniDriver, type ConfList, Containerd, IMAGE, type Json, ok, Podman, readShipped, run, RuntimeHost } from './runtimes';

jest.setTimeout(600000);

const DS_IMAGE = `localhost/${PREFIX}-dpu-overlay:latest`;
const manifest = parse(readShipped('daemonset.yaml')) as IDaemonSet;
const pod = manifest.spec?.template.spec as NonNullable<NonNullable<IDaemonSet['spec']>['template']['spec']>;
const initContainer = (name: string) => pod.initContainers?.find((c) => c.name === name) as IContainer;
const daemonContainer = pod.containers.find((c) => c.name === 'daemon') as IContainer;

let tb: Testbed;
let A: Site;
let host: RuntimeHost;
let podman: Podman;
let nodeEtc: string;
let nodeLog: string;
let authorizedKeys: string;
let savedKeys: string;
let driver: string;

/**
 * busybox, the programs the daemon runs (ip, nsenter: the Containerfile's iproute2 and its base's util-linux) and
 * every shared library they and the executable link (what debian:bookworm-slim has), the Containerfile's files.
 */
function importDaemonImage(): void {
  const dir = join(host.dir, 'ds-image');
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cp', 'mv', 'chmod', 'mkdir', 'echo', 'cat', 'ls', 'sleep', 'tee']) symlinkSync('busybox', join(root, 'bin', applet));
  const programs = ['ip', 'nsenter'].map((p) => ok(run('sh', ['-c', `command -v ${p}`]), p).trim());
  for (const p of programs) copyFileSync(realpathSync(p), join(root, 'bin', p.split('/').pop() as string));
  for (const [from, to] of [...readShipped('Containerfile').matchAll(/^COPY\s+(\S+)\s+(\S+)$/gm)].map((m) => [m[1] as string, m[2] as string])) {
    copyFileSync(from === 'dist/dpu-overlay' ? BINARY : join(ROOT, from), join(root, to));
    chmodSync(join(root, to), from === 'dist/dpu-overlay' ? 0o755 : 0o644);
  }
  const libs = [BINARY, ...programs].flatMap((p) => ok(run('ldd', [p]), 'ldd').split('\n')).map((l) => /(\/\S+) \(0x/.exec(l)?.[1]).filter((l): l is string => l !== undefined);
  for (const lib of new Set(libs)) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(realpathSync(lib), join(root, lib));
  }
  const tar = join(dir, 'rootfs.tar');
  ok(run('tar', ['-C', root, '-cf', tar, '.']), 'tar');
  podman.ok(['import', tar, DS_IMAGE]);
}

/** `podman run` of one of the manifest's containers as the kubelet would start it on this node. */
function podmanArgs(ctr: IContainer, nodeName: string, extra: string[] = []): string[] {
  const args: string[] = [];
  if (pod.hostNetwork) args.push('--network', 'host');
  else args.push('--network', 'none');
  if (pod.hostPID) args.push('--pid', 'host');
  if (ctr.securityContext?.privileged) args.push('--privileged');
  for (const m of ctr.volumeMounts ?? []) {
    const vol = pod.volumes?.find((v) => v.name === m.name);
    const path = vol?.hostPath?.path;
    if (!path) throw new Error(`volume ${m.name} is not a hostPath: not emulated`);
    if (vol.hostPath?.type === 'DirectoryOrCreate') ok(host.exec('mkdir', ['-p', path]), `mkdir ${path}`);
    const opts = [...(m.readOnly ? ['ro'] : []), ...(m.mountPropagation === 'HostToContainer' ? ['rslave'] : m.mountPropagation === 'Bidirectional' ? ['rshared'] : [])];
    args.push('-v', `${path}:${m.mountPath}${opts.length ? `:${opts.join(',')}` : ''}`);
  }
  for (const e of ctr.env ?? []) {
    const value = e.value ?? (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName' ? nodeName : undefined);
    if (value === undefined) throw new Error(`env ${e.name}: not emulated`);
    args.push('--env', `${e.name}=${value}`);
  }
  return [...args, ...extra, '--entrypoint', JSON.stringify(ctr.command), DS_IMAGE, ...(ctr.args ?? [])];
}

function fingerprintOf(knownHosts: string, hostName: string): string {
  const line = knownHosts.split('\n').find((l) => l.split(' ')[0] === hostName && l.split(' ')[1] === 'ssh-ed25519');
  const blob = Buffer.from(line?.split(' ')[2] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** GET the daemon container's probe endpoint from the node's network namespace. */
function probe(c: IContainer): number {
  const get = c.readinessProbe?.httpGet;
  return parseHttpGet(host.exec(process.execPath, ['-e', httpGetScript(`http://${get?.host}:${get?.port}${get?.path}`)]).stdout).code;
}

function until(what: string, okNow: () => boolean, limitMs = 30000): void {
  const deadline = Date.now() + limitMs;
  while (!okNow()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${limitMs} ms`);
    run('sleep', ['0.2']);
  }
}

/** The shipped conflist as the network owner writes it: the node's values (pf, the DPU) live in the node file. */
function networkList(): ConfList {
  const shipped = JSON.parse(readShipped('10-dpu-overlay.conflist')) as ConfList;
  const plugins = shipped.plugins.map((p) => {
    if (p.type !== 'dpu-overlay') return p;
    const { pf: _pf, dpu, ...rest } = p as Json & { dpu: Json };
    const ipam = rest.ipam as Json & { ranges: Json[][] };
    return { ...rest, ipam: { ...ipam, ranges: ipam.ranges.map((set) => set.map((r) => ({ ...r, rangeStart: '10.100.0.10', rangeEnd: '10.100.0.59' }))) }, dpu: { hwOffload: dpu.hwOffload } };
  });
  return { ...shipped, plugins };
}

const viaDaemon = (containerId: string) =>
  readJsonLines(join(nodeLog, 'dpu-overlay.log')).filter((l) => l.containerId === containerId && / done$/.test(String(l.msg))).map((l) => `${String(l.command)} ${String(l.via)}`);

beforeAll(() => {
  requireBinary();
  driver = buildLibcniDriver();
  tb = testbedUp(4, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
  host = new RuntimeHost(A, `/tmp/${PREFIX}-runtimes/daemonset-a`);
  nodeEtc = join(host.dir, 'node-etc-dpu-overlay');
  nodeLog = join(host.dir, 'node-var-log');
  mkdirSync(nodeEtc, { recursive: true, mode: 0o755 });
  mkdirSync(nodeLog, { recursive: true, mode: 0o755 });
  // a node's /opt/cni/bin holds files, not links into a directory the daemon container does not mount
  for (const f of readdirSync(host.binDir)) {
    const p = join(host.binDir, f);
    if (lstatSync(p).isSymbolicLink() && f !== 'dpu-overlay') {
      const target = realpathSync(p);
      unlinkSync(p);
      copyFileSync(target, p);
      chmodSync(p, 0o755);
    }
  }
  host.start(tb, [`/etc/cni/dpu-overlay=${nodeEtc}`, `/var/log=${nodeLog}`]);
  // what `ip netns add` does on a node's first namespace: /run/netns becomes a shared mount, so namespaces made
  // later reach containers that mount it with HostToContainer propagation
  ok(host.exec('mount', ['--make-rshared', '/run/netns']), 'make /run/netns shared');
  podman = new Podman(host);
  podman.importBusybox();
  importDaemonImage();
  authorizedKeys = join(tb.stateDir, 'authorized_keys');
  savedKeys = readFileSync(authorizedKeys, 'utf8');
});

afterAll(() => {
  if (savedKeys !== undefined) writeFileSync(authorizedKeys, savedKeys);
  host?.stop();
  testbedDown();
});

describe('init containers', () => {
  test('install: the plugin lands in the node\'s /opt/cni/bin (a copy, renamed into place) and /run/dpu-overlay is 0700', () => {
    expect(ok(podman.run(['run', '--rm', ...podmanArgs(initContainer('install'), 'node-a')]), 'install')).toContain('dpu-overlay installed');
    const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(sha(join(host.binDir, 'dpu-overlay'))).toBe(sha(BINARY));
    expect(lstatSync(join(host.binDir, 'dpu-overlay')).isFile()).toBe(true);
    expect(readdirSync(host.binDir).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(ok(host.exec('stat', ['-c', '%a %U', '/run/dpu-overlay']), 'stat').trim()).toBe('700 root');
    expect(readFileSync(join(nodeEtc, 'node.json.example'), 'utf8')).toBe(readShipped('node.json.example'));
  });

  test('node-key: the node generates its own key (0600), keeps it on a restart; another node gets another key', () => {
    const out = ok(podman.run(['run', '--rm', ...podmanArgs(initContainer('node-key'), 'node-a')]), 'node-key');
    const key = join(nodeEtc, 'id_ed25519');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const pub = readFileSync(`${key}.pub`, 'utf8');
    expect(pub).toMatch(/^ssh-ed25519 \S+ dpu-overlay@node-a\n$/);
    expect(out).toContain(pub.trim());
    const first = readFileSync(key, 'utf8');
    ok(podman.run(['run', '--rm', ...podmanArgs(initContainer('node-key'), 'node-a')]), 'node-key again');
    expect(readFileSync(key, 'utf8')).toBe(first);
    // node b: the same container on another node's /etc/cni/dpu-overlay
    const otherNode = join(host.dir, 'node-b-etc');
    mkdirSync(otherNode, { recursive: true });
    const args = podmanArgs(initContainer('node-key'), 'node-b').map((a) => (a.startsWith('/etc/cni/dpu-overlay:') ? a.replace('/etc/cni/dpu-overlay', otherNode) : a));
    ok(podman.run(['run', '--rm', ...args]), 'node-key on node b');
    expect(readFileSync(join(otherNode, 'id_ed25519'), 'utf8')).not.toBe(first);
    expect(readFileSync(join(otherNode, 'id_ed25519.pub'), 'utf8')).not.toBe(pub);
  });
});

describe('the daemon container', () => {
  test('starts; its probe fails (503) while the node file is missing and passes once the node owner writes it', () => {
    ok(podman.run(['run', '-d', '--name', `${PREFIX}-ds-daemon`, '-v', `${tb.stateDir}:${tb.stateDir}`, ...podmanArgs(daemonContainer, 'node-a')]), 'daemon container');
    until('the daemon listens', () => host.exec('test', ['-S', '/run/dpu-overlay/dpu.sock']).status === 0);
    until('the probe answers', () => probe(daemonContainer) !== 0);
    expect(probe(daemonContainer)).toBe(503);
    // the node owner: this node's file, pinning its DPU's host key, with the key the node generated
    const node = {
      pf: A.pf, sysfsRoot: A.sysfsRoot, logLevel: 'debug',
      dpu: {
        host: A.dpuHost, port: A.dpuPort, user: A.dpuUser, privateKeyFile: '/etc/cni/dpu-overlay/id_ed25519', hostKeyFingerprint: fingerprintOf(readFileSync(tb.knownHostsFile, 'utf8'), A.dpuHost),
        localVtep: A.localVtep, remoteVteps: A.remoteVteps, datapathType: 'netdev',
      },
    };
    writeFileSync(join(nodeEtc, 'node.json'), JSON.stringify(node, null, 2), { mode: 0o644 });
    expect(probe(daemonContainer)).toBe(200);
    // the DPU owner: install.sh --dpu --authorize-key <node a's id_ed25519.pub> (the guard's entry for this key)
    writeFileSync(authorizedKeys, `${savedKeys}command="${join(ROOT, 'guard', 'dpu-guard.sh')}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${readFileSync(join(nodeEtc, 'id_ed25519.pub'), 'utf8')}`);
    host.writeConf('10-dpu-overlay.conflist', networkList());
  });

  test('containerd (ctr run --cni): ADD and DEL are answered by the daemon', () => {
    const archive = join(host.dir, 'image', 'busybox-docker.tar');
    podman.ok(['save', '--format', 'docker-archive', '-o', archive, IMAGE]);
    const ctr = new Containerd(host).start();
    ctr.ok(['images', 'import', archive]);
    const name = `${PREFIX}-ds1`;
    const out = ok(ctr.run(['run', '--rm', '--cni', IMAGE, name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']), 'ctr run --rm --cni');
    expect(out).toMatch(/inet 10\.100\.0\.\d+\/24/);
    expect(viaDaemon(`${PREFIX}-${name}`)).toEqual(['ADD daemon', 'DEL daemon']);
  });

  test('the libcni driver (what CRI plugins and Multus embed): ADD, CHECK and DEL are answered by the daemon', () => {
    const ns = `${PREFIX}-ds-libcni`;
    ok(host.exec('ip', ['netns', 'add', ns]), 'netns add');
    try {
      const file = join(host.dir, 'libcni.conflist');
      // without tuning: its CHECK compares its "0 2147483647" with the kernel's tab-separated value and fails
      const list = networkList();
      writeFileSync(file, JSON.stringify({ ...list, plugins: list.plugins.filter((p) => p.type === 'dpu-overlay') }));
      const env = { PATH: process.env.PATH, CNI_PATH: '/opt/cni/bin', CNI_CACHE_DIR: join(host.dir, 'libcni-cache'), CNI_CONTAINERID: 'ds-libcni', CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'net1', CNI_ARGS: 'IgnoreUnknown=1', CAP_ARGS: '{}' };
      for (const command of ['ADD', 'CHECK', 'DEL']) ok(host.exec(driver, [command, file], { env }), `libcni ${command}`);
      expect(viaDaemon('ds-libcni')).toEqual(['ADD daemon', 'CHECK daemon', 'DEL daemon']);
    } finally {
      host.exec('ip', ['netns', 'del', ns]);
    }
  });

  test('status in the daemon container shows its view; SIGTERM stops it cleanly', () => {
    const status = JSON.parse(ok(podman.run(['exec', `${PREFIX}-ds-daemon`, '/dpu-overlay', 'status', '--json']), 'status')) as { source: string; dpus: Array<{ dpu: string; connected: boolean }> };
    expect(status.source).toBe('daemon');
    expect(status.dpus).toEqual([expect.objectContaining({ dpu: `${A.dpuUser}@${A.dpuHost}:${A.dpuPort}` })]);
    ok(podman.run(['stop', '--time', '30', `${PREFIX}-ds-daemon`]), 'stop');
    expect(readJsonLines(join(nodeLog, 'dpu-overlay-daemon.log')).map((l) => l.msg)).toContain('dpu-overlay daemon stopped');
    rmSync(join(nodeLog, 'dpu-overlay-daemon.log'), { force: true });
  });
});
