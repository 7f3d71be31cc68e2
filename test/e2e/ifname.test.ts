/**
 * End-to-end, issue 12: interface names iproute2's batch reader treats specially, DEL's trust in CNI_NETNS
 * and in names, and neighbours learning a reused address's new MAC. Packaged binary, two emulated sites.
 */
import { spawnSync } from 'node:child_process';
import { encodeBatchLine } from '../../src/kernel/iproute2-batch';
import {
  cni, container, firstIp, inNetns, linkJson, netConf, nsName, ping, PREFIX, removeContainers, requireBinary, sh, site, type Site, type Testbed, testbedDown,
  testbedUp,
} from '../testkit/testbed';

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

function links(nsPath: string): Array<{ ifname: string; address: string; mtu: number; flags: string[] }> {
  return JSON.parse(sh('ip', ['-n', nsName(nsPath), '-j', 'link', 'show'])) as Array<{ ifname: string; address: string; mtu: number; flags: string[] }>;
}

function hostVf(s: Site, n: number) {
  return linkJson(s.hostNetns, s.vfs[n]?.netdev as string);
}

function staticConf(s: Site, address: string) {
  // a generous DPU timeout: these tests are about names and identity, not latency on a loaded machine
  return netConf(tb, s, { ipam: { type: 'static', addresses: [{ address }] }, dpu: { timeoutMs: 30000 } });
}

describe('ip -batch reads back every name the encoder gives it', () => {
  const scratch = `${PREFIX}-ifn-scratch`;
  afterAll(() => spawnSync('ip', ['netns', 'del', scratch]));

  test('names with each byte 0x21-0x7e, in several positions, created by real ip -batch, read back exactly', () => {
    spawnSync('ip', ['netns', 'del', scratch]);
    sh('ip', ['netns', 'add', scratch]);
    const kind = spawnSync('ip', ['-n', scratch, 'link', 'add', 'probe', 'type', 'dummy']).status === 0 ? 'dummy' : 'ifb';
    spawnSync('ip', ['-n', scratch, 'link', 'del', 'probe']);
    const names = new Set<string>();
    for (let b = 0x21; b <= 0x7e; b++) {
      const c = String.fromCharCode(b);
      if (c === '/' || c === ':' || c === '%') continue; // the kernel refuses these ("%" makes a name template)
      for (const n of [c, `${c}x`, `x${c}`, `x${c}y`, `"${c}`, `${c}\\`]) if (n !== '.' && n !== '..') names.add(n);
    }
    const lines: string[] = [];
    const unencodable: string[] = [];
    for (const n of names) {
      const line = encodeBatchLine(['link', 'add', 'name', n, 'type', kind]);
      if (line === undefined) unencodable.push(n);
      else lines.push(line);
    }
    expect(unencodable.every((n) => n.includes('#') || (n.startsWith('"') && n.includes("'")))).toBe(true);
    const r = spawnSync('ip', ['-n', scratch, '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const got = links(`/run/netns/${scratch}`).map((l) => l.ifname).filter((n) => n !== 'lo').sort();
    expect(got).toEqual([...names].filter((n) => !unencodable.includes(n)).sort());
  });
});

describe('odd but legal ifnames work end to end', () => {
  const odd = ['"x""netns"1', 'e#x', 'a\\', `q'"#\\@`, '@n', '#', "'"];
  test.each(odd.map((n, i) => [n, i]))('%j: ADD reports and creates it (up, MTU, MAC); DEL returns the VF', (name, i) => {
    const ns = container(`odd${i}`);
    const conf = staticConf(A, '10.100.0.200/24');
    const add = cni(A, conf, { command: 'ADD', containerId: `ctr-odd${i}`, netns: ns, ifname: name as string });
    expect(add.stderr).not.toMatch(/\n\s+at /);
    if (add.status !== 0) throw new Error(`ADD ${name} failed: ${add.stdout}`);
    const iface = (add.json?.interfaces as Array<Record<string, unknown>>)[0];
    expect(iface).toMatchObject({ name, mtu: 1450, mac: A.vfs[0]?.mac });
    const inside = links(ns).filter((l) => l.ifname !== 'lo');
    expect(inside.map((l) => l.ifname)).toEqual([name]);
    expect(inside[0]).toMatchObject({ mtu: 1450, address: A.vfs[0]?.mac });
    expect(inside[0]?.flags).toContain('UP');
    expect(inNetns(ns, 'ip', ['-4', 'addr', 'show', 'dev', name as string]).stdout).toContain('inet 10.100.0.200/24');
    expect(hostVf(A, 0)).toBeUndefined();
    const del = cni(A, conf, { command: 'DEL', containerId: `ctr-odd${i}`, netns: ns, ifname: name as string });
    expect(del).toMatchObject({ status: 0, stdout: '' });
    expect(hostVf(A, 0)).toMatchObject({ address: A.vfs[0]?.mac, mtu: 1500 });
    expect(links(ns).map((l) => l.ifname)).toEqual(['lo']);
  });

  test.each([['a b'], ['a:b'], ['a/b'], ['.'], ['x'.repeat(16)], ['a\u00a0b'], ['net%d']])('%j is refused with code 4 and nothing changes', (name) => {
    const ns = container('bad');
    const r = cni(A, staticConf(A, '10.100.0.201/24'), { command: 'ADD', containerId: 'ctr-bad', netns: ns, ifname: name });
    expect(r.status).not.toBe(0);
    expect(r.json).toMatchObject({ code: 4 });
    expect(hostVf(A, 0)).toBeDefined();
  });
});

describe('DEL trusts neither CNI_NETNS nor names', () => {
  test('CNI_NETNS=/etc/passwd: the recorded namespace is used and DEL succeeds', () => {
    const ns = container('passwd');
    const conf = staticConf(A, '10.100.0.202/24');
    expect(cni(A, conf, { command: 'ADD', containerId: 'ctr-passwd', netns: ns }).status).toBe(0);
    const del = cni(A, conf, { command: 'DEL', containerId: 'ctr-passwd', netns: '/etc/passwd' });
    expect(del).toMatchObject({ status: 0, stdout: '' });
    expect(hostVf(A, 0)).toMatchObject({ address: A.vfs[0]?.mac });
    expect(links(ns).map((l) => l.ifname)).toEqual(['lo']);
  });

  test("CNI_NETNS of another container: that container keeps its VF, ours comes back", () => {
    const ns1 = container('hint1');
    const ns2 = container('hint2');
    expect(cni(A, staticConf(A, '10.100.0.203/24'), { command: 'ADD', containerId: 'ctr-hint1', netns: ns1 }).status).toBe(0);
    expect(cni(A, staticConf(A, '10.100.0.204/24'), { command: 'ADD', containerId: 'ctr-hint2', netns: ns2 }).status).toBe(0);
    const theirs = linkJson(nsName(ns2), 'eth0');
    const del = cni(A, staticConf(A, '10.100.0.203/24'), { command: 'DEL', containerId: 'ctr-hint1', netns: ns2 });
    expect(del.status).toBe(0);
    expect(linkJson(nsName(ns2), 'eth0')).toMatchObject({ address: theirs?.address, mtu: 1450 });
    expect(links(ns1).map((l) => l.ifname)).toEqual(['lo']);
    expect(hostVf(A, 0)).toMatchObject({ address: A.vfs[0]?.mac });
    expect(cni(A, staticConf(A, '10.100.0.204/24'), { command: 'DEL', containerId: 'ctr-hint2', netns: ns2 }).status).toBe(0);
    expect(hostVf(A, 1)).toMatchObject({ address: A.vfs[1]?.mac });
  });

  test('a container renames its VF and plants a veth called eth0: the VF comes back, the decoy stays', () => {
    const ns = container('decoy');
    const conf = staticConf(A, '10.100.0.205/24');
    expect(cni(A, conf, { command: 'ADD', containerId: 'ctr-decoy', netns: ns }).status).toBe(0);
    sh('ip', ['-n', nsName(ns), 'link', 'set', 'dev', 'eth0', 'name', 'hidden']);
    sh('ip', ['-n', nsName(ns), 'link', 'add', 'eth0', 'address', A.vfs[0]?.mac as string, 'type', 'veth', 'peer', 'name', 'decoyp']);
    const del = cni(A, conf, { command: 'DEL', containerId: 'ctr-decoy', netns: ns });
    expect(del.status).toBe(0);
    expect(hostVf(A, 0)).toMatchObject({ address: A.vfs[0]?.mac, mtu: 1500 });
    expect(links(ns).map((l) => l.ifname).sort()).toEqual(['decoyp', 'eth0', 'lo']);
    expect(linkJson(A.hostNetns, 'decoyp')).toBeUndefined();
  });

  test('a decoy alone (the VF was moved away): never moved to the host or given the VF name', () => {
    const ns = container('decoy2');
    const away = container('decoy2-away');
    const conf = staticConf(A, '10.100.0.206/24');
    expect(cni(A, conf, { command: 'ADD', containerId: 'ctr-decoy2', netns: ns }).status).toBe(0);
    sh('ip', ['-n', nsName(ns), 'link', 'set', 'dev', 'eth0', 'netns', nsName(away)]);
    sh('ip', ['-n', nsName(ns), 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'decoyp']);
    expect(cni(A, conf, { command: 'DEL', containerId: 'ctr-decoy2', netns: ns }).status).toBe(0);
    expect(links(ns).map((l) => l.ifname).sort()).toEqual(['decoyp', 'eth0', 'lo']);
    expect(hostVf(A, 0)).toBeUndefined();
    // give the VF back for the next tests
    sh('ip', ['-n', nsName(away), 'link', 'set', 'dev', 'eth0', 'netns', A.hostNetns, 'name', A.vfs[0]?.netdev as string]);
    sh('ip', ['-n', A.hostNetns, 'link', 'set', 'dev', A.vfs[0]?.netdev as string, 'down', 'address', A.vfs[0]?.mac as string, 'mtu', '1500']);
  });
});

describe('neighbours learn the new MAC of a reused address', () => {
  test('peer on b has the new MAC right after ADD, without resolving again', () => {
    const ip = '10.100.0.210';
    const peerNs = container('peer');
    expect(cni(B, staticConf(B, '10.100.0.220/24'), { command: 'ADD', containerId: 'ctr-peer', netns: peerNs }).status).toBe(0);
    const first = container('reuse1');
    const add1 = cni(A, staticConf(A, `${ip}/24`), { command: 'ADD', containerId: 'ctr-reuse1', netns: first });
    expect(add1.status).toBe(0);
    expect(ping(peerNs, ip)).toBe(true);
    const neigh = () => (JSON.parse(sh('ip', ['-n', nsName(peerNs), '-j', 'neigh', 'show', ip])) as Array<{ lladdr?: string }>)[0]?.lladdr;
    expect(neigh()).toBe(A.vfs[0]?.mac);
    expect(cni(A, staticConf(A, `${ip}/24`), { command: 'DEL', containerId: 'ctr-reuse1', netns: first }).status).toBe(0);
    const newMac = '02:12:34:56:78:9a';
    const second = container('reuse2');
    const add2 = cni(A, staticConf(A, `${ip}/24`), { command: 'ADD', containerId: 'ctr-reuse2', netns: second, args: `IgnoreUnknown=1;MAC=${newMac}` });
    if (add2.status !== 0) throw new Error(`ADD with a new MAC failed: ${add2.stdout}`);
    expect(add2.status).toBe(0);
    expect(firstIp(add2.json)).toBe(ip);
    // The announcement is sent on link up, within ADD; give it the overlay's transit, no traffic from b meanwhile.
    let seen = neigh();
    for (let i = 0; i < 40 && seen !== newMac; i++) {
      spawnSync('sleep', ['0.05']);
      seen = neigh();
    }
    expect(seen).toBe(newMac);
    expect(cni(A, staticConf(A, `${ip}/24`), { command: 'DEL', containerId: 'ctr-reuse2', netns: second }).status).toBe(0);
    expect(cni(B, staticConf(B, '10.100.0.220/24'), { command: 'DEL', containerId: 'ctr-peer', netns: peerNs }).status).toBe(0);
  });
});
