/**
 * The daemon as install.sh's systemd unit runs it serves runtimes outside its mount namespace. No systemd runs
 * here: the unit's text is read from install.sh and its sandboxing options are applied as systemd applies them
 * (systemd.exec: a mount namespace of the service's own whose root is a slave of the host's, so mounts made later
 * on the host, such as new /run/netns entries, reach it; ProtectSystem=full: /usr, /boot, /efi and /etc
 * read-only; PrivateTmp=yes: its own /tmp and /var/tmp). An option that changes the mount namespace and is not
 * emulated here fails the test. The libcni driver, in the host's own mount namespace, then runs ADD, CHECK and DEL
 * for a namespace made after the daemon started (/run/netns/NAME, as CRI-O and podman name them) and for one named
 * /proc/PID/ns/net (containerd): every command is answered by the daemon (via "daemon").
 * Emulation only: the socket, stateDir and log paths are the testbed's (other testbeds may run on this machine).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BINARY, hostLocal, NODE_FILE, netConf, nodeEnv, PREFIX, readJsonLines, requireBinary, ROOT, type Site, site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { buildLibcniDriver, ok, pluginDir, run } from './runtimes';
import { httpGet } from './operations-kit';

jest.setTimeout(300000);

const EMULATED = new Set(['ExecStart', 'ExecReload', 'Restart', 'RestartSec', 'RuntimeDirectory', 'RuntimeDirectoryMode', 'UMask', 'NoNewPrivileges', 'ProtectSystem', 'PrivateTmp']);

let tb: Testbed;
let A: Site;
let driver: string;
let daemon: ChildProcess | undefined;
let socket: string;
let work: string;
let sleeper: ChildProcess | undefined;

/** The [Service] section of the unit install.sh writes. */
function unitService(): Map<string, string> {
  const text = /daemon_unit\(\) \{\n {2}cat <<EOF\n([\s\S]*?)\nEOF/.exec(readFileSync(join(ROOT, 'install.sh'), 'utf8'))?.[1] ?? '';
  const service = text.split('[Service]')[1]?.split(/\n\[/)[0] ?? '';
  return new Map(service.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
}

/** Shell lines that give the current (new) mount namespace the unit's sandbox. */
function sandbox(service: Map<string, string>): string[] {
  const lines = ['mount --make-rslave /'];
  if (service.get('ProtectSystem') === 'full') {
    for (const d of ['/usr', '/boot', '/efi', '/etc']) lines.push(`if [ -d ${d} ]; then mount --bind ${d} ${d} && mount -o remount,bind,ro ${d}; fi`);
  } else if (service.has('ProtectSystem')) throw new Error(`ProtectSystem=${service.get('ProtectSystem')} is not emulated`);
  if (service.get('PrivateTmp') === 'yes') lines.push('mount -t tmpfs tmpfs /tmp', 'mount -t tmpfs tmpfs /var/tmp');
  return lines;
}

const conf = () => netConf(tb, A, { cniVersion: '1.0.0', ipam: hostLocal(tb, A, '10.124.0.0/24', '10.124.0.10', '10.124.0.99'), dpu: { daemonSocket: socket } });
const viaOf = (containerId: string) => readJsonLines(join(tb.stateDir, 'plugin-a.log')).filter((l) => l.containerId === containerId && / done$/.test(String(l.msg))).map((l) => `${String(l.command)} ${String(l.via)}`);

function libcni(command: string, containerId: string, netns: string): void {
  const file = join(work, `${containerId}.conflist`);
  const c = conf();
  writeFileSync(file, JSON.stringify({ cniVersion: c.cniVersion, name: c.name, plugins: [c] }));
  // the runtime names the node file (the unit's daemon reads the same one: its --node-config)
  const env = { ...nodeEnv(A, c), PATH: process.env.PATH, CNI_PATH: join(work, 'bin'), CNI_CACHE_DIR: join(work, 'cache'), CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'net1', CNI_ARGS: 'IgnoreUnknown=1', CAP_ARGS: '{}' };
  // nsenter --net, not ip netns exec: the runtime stays in the host's own mount namespace
  ok(run('nsenter', [`--net=/run/netns/${A.hostNetns}`, driver, command, file], { env }), `libcni ${command} ${containerId}`);
}

beforeAll(async () => {
  requireBinary();
  driver = buildLibcniDriver();
  tb = testbedUp(4, 'a,b', 1, { path: 'standalone' });
  A = site(tb, 'a');
  // not under /tmp: the unit's daemon has a /tmp of its own (PrivateTmp), and runs the IPAM plugins from CNI_PATH
  work = join(tb.stateDir, 'unit-work');
  rmSync(work, { recursive: true, force: true });
  pluginDir(join(work, 'bin'));
  mkdirSync(join(work, 'cache'), { recursive: true });
  socket = join(tb.stateDir, 'unit-run', 'dpu.sock');
  const service = unitService();
  for (const key of service.keys()) if (!EMULATED.has(key)) throw new Error(`unit option ${key} is not emulated by this test: emulate it or leave it out of the unit`);
  const exec = (service.get('ExecStart') ?? '').split(' ');
  expect(exec.slice(0, 2)).toEqual(['$CNI_BIN_DIR/dpu-overlay', 'daemon']);
  const nodeFile = conf()[NODE_FILE] as string;
  const args = exec.slice(2).map((a) => (a === '/run/dpu-overlay/dpu.sock' ? socket : a === '/etc/cni/dpu-overlay/node.json' ? nodeFile : a));
  expect(args).toContain(nodeFile);
  const log = join(tb.stateDir, 'unit-daemon.log');
  rmSync(log, { force: true });
  const script = [...sandbox(service), 'exec "$@"'].join('\n');
  // the unit runs $CNI_BIN_DIR/dpu-overlay: a copy, since a checkout under /tmp is hidden by the unit's PrivateTmp
  const unitBin = join(work, 'unit-bin', 'dpu-overlay');
  mkdirSync(dirname(unitBin), { recursive: true });
  copyFileSync(BINARY, unitBin);
  chmodSync(unitBin, 0o755);
  daemon = spawn('nsenter', [`--net=/run/netns/${A.hostNetns}`, 'unshare', '-m', '--propagation', 'slave', 'sh', '-c', script, 'unit', unitBin, 'daemon', ...args, '--state-dir', join(tb.stateDir, 'plugin-a'), '--log-file', log], { stdio: 'ignore', cwd: '/' }); // systemd starts a system service in /
  const deadline = Date.now() + 20000;
  while (!readJsonLines(log).some((l) => l.msg === 'dpu-overlay daemon listening')) {
    if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the unit's daemon did not start (see ${log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  sleeper?.kill('SIGKILL');
  if (daemon && daemon.exitCode === null) {
    await new Promise<void>((resolve) => {
      daemon?.once('exit', () => resolve());
      daemon?.kill('SIGTERM');
    });
  }
  spawnSync('ip', ['netns', 'del', `${PREFIX}-unit-ns1`]);
  rmSync(work, { recursive: true, force: true });
  testbedDown();
});

test('the unit\'s daemon runs sandboxed (a mount namespace of its own, /etc read-only, its own /tmp) with metrics on 127.0.0.1:9741', () => {
  const pid = daemon?.pid as number;
  const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim() || pid);
  const target = existsSync(`/proc/${child}/ns/mnt`) ? child : pid;
  expect(readFileSync(`/proc/${target}/cmdline`, 'utf8')).toContain('daemon');
  expect(spawnSync('readlink', [`/proc/${target}/ns/mnt`]).stdout.toString()).not.toBe(spawnSync('readlink', ['/proc/self/ns/mnt']).stdout.toString());
  expect(readFileSync(`/proc/${target}/mountinfo`, 'utf8')).toMatch(/ \/etc ro,/);
  expect(httpGet(A, '/metrics').code).toBe(200);
});

test('a runtime outside its mount namespace: a /run/netns namespace made after the daemon started (CRI-O, podman) is served via the daemon', () => {
  const ns = `${PREFIX}-unit-ns1`;
  ok(run('ip', ['netns', 'add', ns]), 'netns add');
  for (const command of ['ADD', 'CHECK', 'DEL']) libcni(command, 'unit-c1', `/run/netns/${ns}`);
  expect(viaOf('unit-c1')).toEqual(['ADD daemon', 'CHECK daemon', 'DEL daemon']);
});

test('… and a /proc/PID/ns/net namespace (containerd) is served via the daemon', async () => {
  sleeper = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const netns = `/proc/${sleeper.pid}/ns/net`;
  for (const command of ['ADD', 'CHECK', 'DEL']) libcni(command, 'unit-c2', netns);
  expect(viaOf('unit-c2')).toEqual(['ADD daemon', 'CHECK daemon', 'DEL daemon']);
});
