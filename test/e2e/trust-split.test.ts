/**
 * The trust split through dist/dpu-overlay (both plugin paths): a network config, which under Multus a namespace
 * tenant writes, chooses no host path and cannot reach another attachment's representor; the node file (root's,
 * named by DPU_OVERLAY_NODE_CONFIG) wins, may delegate a field, and an old conflist is told which fields to move.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cni, container, dpuExec, firstIp, hostLocal, legacyConf, netConf, ping, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';

jest.setTimeout(180000);

let tb: Testbed;
let A: Site;
let B: Site;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a,b');
  A = site(tb, 'a');
  B = site(tb, 'b');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

const ipam = (s: Site, vni = 100) => hostLocal(tb, s, `10.${vni}.0.0/24`, `10.${vni}.0.10`, `10.${vni}.0.99`, `vni${vni}`);

/** A process blocked opening path for reading: it unblocks (and exits) only if someone opens the FIFO for writing. */
function fifoReader(path: string): ChildProcess {
  execFileSync('mkfifo', ['-m', '0600', path]);
  return spawn('sh', ['-c', 'exec cat "$0" >/dev/null', path], { stdio: 'ignore' });
}

const lines = (text: string) => text.split('\n').filter(Boolean);
const portsOn = (bridge: string) => (lines(dpuExec('a', 'ovs-vsctl', 'list-br')).includes(bridge) ? lines(dpuExec('a', 'ovs-vsctl', 'list-ports', bridge)) : []);

describe('a network config that chooses a host path: code 7, the path never opened', () => {
  it.each(['logFile', 'stateDir', 'sysfsRoot', 'nodeConfig'])('%s naming a FIFO: refused, its reader never unblocked', async (field) => {
    const fifo = join(tb.stateDir, `tenant-${field}.fifo`);
    rmSync(fifo, { force: true });
    const reader = fifoReader(fifo);
    try {
      const ns = container(`fifo-${field}`);
      const out = cni(A, netConf(tb, A, { ipam: ipam(A), raw: { [field]: fifo } }), { command: 'ADD', containerId: `fifo-${field}`, netns: ns });
      expect([out.status, out.json?.code]).toEqual([1, 7]);
      expect(String(out.json?.msg)).toContain(field);
      await new Promise((r) => setTimeout(r, 300));
      expect(reader.exitCode).toBeNull();
    } finally {
      reader.kill('SIGKILL');
      rmSync(fifo, { force: true });
    }
  });

  it('logFile /dev/ptmx (a NAD author\'s choice): refused with the fields to move', () => {
    const ns = container('ptmx');
    const out = cni(A, netConf(tb, A, { ipam: ipam(A), raw: { logFile: '/dev/ptmx', logLevel: 'debug' } }), { command: 'ADD', containerId: 'ptmx', netns: ns });
    expect([out.status, out.json?.code]).toEqual([1, 7]);
    expect(out.json?.msg).toMatch(/logFile is the node owner's: remove it from the network config or move it into the node file \/.*etc-a\/node\.json/);
  });

  it('logFile naming a root shell rc file: refused, the file not touched', () => {
    const rc = join(tb.stateDir, 'tenant-bashrc');
    writeFileSync(rc, '# rc\n');
    const before = statSync(rc);
    const ns = container('rc');
    const out = cni(A, netConf(tb, A, { ipam: ipam(A), raw: { logFile: rc } }), { command: 'ADD', containerId: 'rc', netns: ns });
    expect(out.json?.code).toBe(7);
    const after = statSync(rc);
    expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
  });
});

describe('a template reaching another pod\'s representor', () => {
  it('representorTemplate "pf0vf{pf}" + pfIndex 0 on VNI 200: refused 7, the other pod\'s port stays on its bridge', () => {
    const victimNs = container('victim');
    const victim = cni(A, netConf(tb, A, { ipam: ipam(A) }), { command: 'ADD', containerId: 'victim', netns: victimNs });
    expect([victim.status, victim.json?.code]).toEqual([0, undefined]);
    const before = portsOn('br-vni100');
    expect(before.length).toBeGreaterThan(0);
    const ns = container('attacker');
    const conf = netConf(tb, A, { name: 'vni200', vni: 200, ipam: ipam(A, 200), raw: { pfIndex: 0, dpu: { hwOffload: 'enable', representorTemplate: 'pf0vf{pf}' } } });
    const out = cni(A, conf, { command: 'ADD', containerId: 'attacker', netns: ns });
    expect([out.status, out.json?.code]).toEqual([1, 7]);
    expect(out.json?.msg).toMatch(/pfIndex, dpu\.representorTemplate are the node owner's/);
    expect(portsOn('br-vni100')).toEqual(before);
    expect(portsOn('br-vni200')).toEqual([]);
    expect(cni(A, netConf(tb, A, { ipam: ipam(A) }), { command: 'DEL', containerId: 'victim', netns: victimNs }).status).toBe(0);
  });
});

describe('the node file', () => {
  it('pins stateDir: a network config naming another one is refused and nothing is written there', () => {
    const other = join(tb.stateDir, 'tenant-state');
    rmSync(other, { recursive: true, force: true });
    const ns = container('pinned');
    const out = cni(A, netConf(tb, A, { ipam: ipam(A), raw: { stateDir: other } }), { command: 'ADD', containerId: 'pinned', netns: ns });
    expect(out.json?.code).toBe(7);
    expect(existsSync(other)).toBe(false);
  });

  it('a network config repeating the node\'s own values is accepted (a smooth migration)', () => {
    const own = legacyConf(tb, A, { ipam: ipam(A) });
    const ns = container('same');
    const out = cni(A, netConf(tb, A, { ipam: ipam(A), raw: { stateDir: own.stateDir, dpu: own.dpu } }), { command: 'ADD', containerId: 'same', netns: ns });
    expect([out.status, out.json?.msg]).toEqual([0, undefined]);
    expect(cni(A, netConf(tb, A, { ipam: ipam(A) }), { command: 'DEL', containerId: 'same', netns: ns }).status).toBe(0);
  });

  it('delegates dpu.remoteVteps: the network\'s list wins, and traffic flows over it', () => {
    const opts = (s: Site) => ({ ipam: ipam(s), node: { delegate: ['dpu.remoteVteps'] }, raw: { dpu: { hwOffload: 'enable', remoteVteps: [(s === A ? B : A).localVtep, '198.18.0.99'] } } });
    const nsA = container('dlg-a');
    const nsB = container('dlg-b');
    const a = cni(A, netConf(tb, A, opts(A)), { command: 'ADD', containerId: 'dlg-a', netns: nsA });
    const b = cni(B, netConf(tb, B, opts(B)), { command: 'ADD', containerId: 'dlg-b', netns: nsB });
    expect([a.status, a.json?.msg, b.status, b.json?.msg]).toEqual([0, undefined, 0, undefined]);
    expect(ping(nsA, firstIp(b.json))).toBe(true);
    expect(cni(A, netConf(tb, A, opts(A)), { command: 'DEL', containerId: 'dlg-a', netns: nsA }).status).toBe(0);
    expect(cni(B, netConf(tb, B, opts(B)), { command: 'DEL', containerId: 'dlg-b', netns: nsB }).status).toBe(0);
    // without the delegation the same network config is refused
    const refused = cni(A, netConf(tb, A, { ...opts(A), node: {} }), { command: 'ADD', containerId: 'dlg-a', netns: nsA });
    expect(refused.json?.code).toBe(7);
  });

  it('limits.maxMtu: a network asking for more is refused naming the limit', () => {
    const ns = container('mtu');
    const out = cni(A, netConf(tb, A, { ipam: ipam(A), node: { limits: { maxMtu: 1400 } } }), { command: 'ADD', containerId: 'mtu', netns: ns });
    expect(out.json?.code).toBe(7);
    expect(out.json?.msg).toContain('mtu 1450 is above this node\'s limit 1400 (limits.maxMtu');
  });

  it('an old conflist with every value in it (here another host\'s): code 7 listing each field to move into the node file', () => {
    const ns = container('legacy');
    const out = cni(A, legacyConf(tb, B, { ipam: ipam(A) }), { command: 'ADD', containerId: 'legacy', netns: ns });
    expect([out.status, out.json?.code]).toEqual([1, 7]);
    expect(out.json?.msg).toMatch(/^invalid network config: (?=.*\bsysfsRoot\b)(?=.*\bstateDir\b)(?=.*\bdpu\.host\b)(?=.*\bdpu\.localVtep\b).* are the node owner's: remove them from the network config or move them into the node file \/.*etc-a\/node\.json/);
  });
});
