/**
 * End-to-end: static mode's VNI bridges follow remoteVteps. Site C leaves A's and B's node files: their bridges
 * lose C's tunnels (the daemon within its stated bound; without it at the next GC or ADD) while A<->B traffic
 * flows; C comes back: the tunnels return and A<->C pings. On both plugin paths (DPUO_PLUGIN_PATH).
 */
import {
  cni, container, dpuExec, firstIp, hostLocal, netConf, ping, pluginPath, removeContainers, requireBinary, setRemoteVteps, site, type Site,
  type Testbed, testbedDown, testbedUp, vtepsInNodeFile,
} from '../testkit/testbed';

jest.setTimeout(180000);

/** The daemon's bound (docs/underlay.md): two recovery polls (2 s each by default) and a round trip; generous here. */
const DAEMON_BOUND_MS = 20000;

let tb: Testbed;
let A: Site;
let B: Site;
let C: Site;
const ctr: Record<string, string> = {};
const ip: Record<string, string> = {};

const ranges: Record<string, [string, string]> = { a: ['10.123.0.10', '10.123.0.59'], b: ['10.123.0.60', '10.123.0.109'], c: ['10.123.0.110', '10.123.0.159'] };
function conf(s: Site): Record<string, unknown> {
  const [start, end] = ranges[s.name] as [string, string];
  return vtepsInNodeFile(tb, s, netConf(tb, s, { ipam: hostLocal(tb, s, '10.123.0.0/24', start, end) }));
}

/** The remotes of br-vni100's VXLAN tunnels on a DPU. */
function tunnelRemotes(dpu: string): string[] {
  const out = dpuExec(dpu, 'ovs-vsctl', '--columns=options', 'find', 'Interface', 'type=vxlan', 'options:key=100');
  return [...out.matchAll(/remote_ip="?([0-9a-fA-F.:]+)/g)].map((m) => m[1] as string).sort();
}

async function until(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

function gc(s: Site): void {
  const r = cni(s, { ...conf(s), 'cni.dev/valid-attachments': [{ containerID: `ctr-${s.name}1`, ifname: 'eth0' }, { containerID: `ctr-${s.name}2`, ifname: 'eth0' }] }, { command: 'GC' });
  if (r.status !== 0) throw new Error(`GC on ${s.name}: ${r.stdout} ${r.stderr}`);
}

function add(s: Site, n: number): void {
  const name = `${s.name}${n}`;
  ctr[name] = container(`mb-${name}`);
  const r = cni(s, conf(s), { command: 'ADD', containerId: `ctr-${name}`, netns: ctr[name] });
  if (r.status !== 0) throw new Error(`ADD on ${s.name}: ${r.stdout} ${r.stderr}`);
  ip[name] = firstIp(r.json);
}

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4);
  A = site(tb, 'a');
  B = site(tb, 'b');
  C = site(tb, 'c');
});

afterAll(() => {
  removeContainers();
  testbedDown();
});

test('three sites on VNI 100, the VTEPs in each node file: a full mesh', () => {
  for (const s of [A, B, C]) add(s, 1);
  expect(tunnelRemotes('a')).toEqual([B.localVtep, C.localVtep].sort());
  expect(tunnelRemotes('b')).toEqual([A.localVtep, C.localVtep].sort());
  expect(ping(ctr.a1 as string, ip.b1 as string)).toBe(true);
  expect(ping(ctr.a1 as string, ip.c1 as string)).toBe(true);
});

test('standalone: CHECK reports a bridge whose tunnels differ from the node file (120, naming the remote)', () => {
  if (pluginPath() === 'daemon') return; // the daemon reconciles on its own within its bound: a race
  setRemoteVteps(tb, A, [B.localVtep]);
  // CHECK's prevResult: the ADD result as far as CHECK holds the container to it
  const result = { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', sandbox: ctr.a1 }], ips: [{ address: `${ip.a1}/24`, interface: 0 }] };
  const r = cni(A, { ...conf(A), prevResult: result }, { command: 'CHECK', containerId: 'ctr-a1', netns: ctr.a1 });
  expect(r.status).toBe(1);
  expect(r.json).toMatchObject({ code: 120 });
  expect(String(r.json?.msg)).toContain(`tunnel to ${C.localVtep}, which is not in remoteVteps`);
  // ... and repaired it
  expect(tunnelRemotes('a')).toEqual([B.localVtep]);
  setRemoteVteps(tb, A, [B.localVtep, C.localVtep]);
  gc(A);
  expect(tunnelRemotes('a')).toEqual([B.localVtep, C.localVtep].sort());
});

test('C leaves A\'s and B\'s node files: their bridges lose C\'s tunnels while A<->B flows', async () => {
  setRemoteVteps(tb, A, [B.localVtep]);
  setRemoteVteps(tb, B, [A.localVtep]);
  if (pluginPath() === 'daemon') {
    const ms = await until('A and B lose their tunnels to C', () => tunnelRemotes('a').length === 1 && tunnelRemotes('b').length === 1, DAEMON_BOUND_MS);
    expect(ms).toBeLessThan(DAEMON_BOUND_MS);
  } else {
    // without the daemon: nothing happens until a command touches the bridge
    expect(tunnelRemotes('a')).toContain(C.localVtep);
    gc(A); // GC on A
    add(B, 2); // an ADD on B
  }
  expect(tunnelRemotes('a')).toEqual([B.localVtep]);
  expect(tunnelRemotes('b')).toEqual([A.localVtep]);
  expect(ping(ctr.a1 as string, ip.b1 as string)).toBe(true);
  // C's own bridge still lists A and B (its node file was not edited); nothing crosses to C any more
  expect(ping(ctr.a1 as string, ip.c1 as string, 1)).toBe(false);
  // nothing else on the DPU was touched: the representor is still there
  expect(dpuExec('a', 'ovs-vsctl', 'list-ports', 'br-vni100')).toContain('pf0vf0');
});

test('C comes back: the tunnels are restored and A<->C pings', async () => {
  setRemoteVteps(tb, A, [B.localVtep, C.localVtep]);
  setRemoteVteps(tb, B, [A.localVtep, C.localVtep]);
  if (pluginPath() === 'daemon') {
    await until('A and B regain their tunnels to C', () => tunnelRemotes('a').length === 2 && tunnelRemotes('b').length === 2, DAEMON_BOUND_MS);
  } else {
    gc(A);
    gc(B);
  }
  expect(tunnelRemotes('a')).toEqual([B.localVtep, C.localVtep].sort());
  expect(tunnelRemotes('b')).toEqual([A.localVtep, C.localVtep].sort());
  expect(ping(ctr.a1 as string, ip.c1 as string)).toBe(true);
  expect(ping(ctr.b1 as string, ip.c1 as string)).toBe(true);
  expect(ping(ctr.a1 as string, ip.b1 as string)).toBe(true);
});
