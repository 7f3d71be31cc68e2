/**
 * containerd 1.6 + `ctr run --cni` with the shipped cni-conf/10-dpu-overlay.conflist in /etc/cni/net.d
 * (a private mount namespace: ctr reads the fixed default dirs). ctr passes CNI_NETNS=/proc/<pid>/ns/net,
 * sends DEL with an empty CNI_NETNS after a foreground container exits, and never sends DEL for `ctr run -d`:
 * the plugin's GC (CNI 1.1, cni.dev/valid-attachments) reclaims what such a container leaked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cni, container, dpuExec, firstIp, PREFIX, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { type ConfList, Containerd, forTestbed, IMAGE, type Json, ok, Podman, readShipped, RuntimeHost } from './runtimes';

jest.setTimeout(180000);

const ranges: Record<string, [string, string]> = { a: ['10.100.0.10', '10.100.0.59'], b: ['10.100.0.60', '10.100.0.109'] };
let tb: Testbed;
let A: Site;
let host: RuntimeHost;
let ctr: Containerd;
let listA: ConfList;

/** ctr's CNI container ID: "<namespace>-<container>". */
const cniId = (name: string) => `${PREFIX}-${name}`;

beforeAll(() => {
  requireBinary();
  tb = testbedUp(6, 'a,b');
  A = site(tb, 'a');
  host = new RuntimeHost(A, `/tmp/${PREFIX}-runtimes/containerd-a`);
  host.start(tb);
  listA = forTestbed(JSON.parse(readShipped('10-dpu-overlay.conflist')) as ConfList, tb, A, { range: ranges.a as [string, string] });
  host.writeConf('10-dpu-overlay.conflist', listA);
  const podman = new Podman(host);
  podman.importBusybox();
  const archive = join(host.dir, 'image', 'busybox-docker.tar');
  podman.ok(['save', '--format', 'docker-archive', '-o', archive, IMAGE]);
  ctr = new Containerd(host).start();
  ctr.ok(['images', 'import', archive]);
});

afterAll(() => {
  host?.stop();
  removeContainers();
  testbedDown();
});

/** The dpu-overlay entry of a conflist as the single network config a runtime hands to the plugin. */
function pluginConf(list: ConfList, cniVersion = list.cniVersion): Json {
  const plugin = list.plugins.find((p) => p.type === 'dpu-overlay') as Json;
  return { ...plugin, cniVersion, name: list.name };
}

function portOf(containerId: string): string {
  return dpuExec('a', 'ovs-vsctl', '--columns=name,external_ids', 'find', 'Port', `external_ids:dpu-overlay.container=${containerId}`);
}

function attachments(): string[] {
  const dir = join(tb.stateDir, 'plugin-a', 'attachments');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
}

/** Containers holding a VF allocation. */
function allocationOwners(): string[] {
  const dir = join(tb.stateDir, 'plugin-a', 'allocations');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
  return files.map((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { containerId: string }).containerId);
}

function ipamHolds(ip: string): boolean {
  return existsSync(join(tb.stateDir, `ipam-a-${listA.name}`, listA.name, ip));
}

function eth0(name: string): string {
  return ctr.ok(['tasks', 'exec', '--exec-id', `x${Date.now()}`, name, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']);
}

const k1 = `${PREFIX}-k1`;
let k1Ip = '';

test('ctr run --cni -d: ADD through the shipped conflist with CNI_NETNS=/proc/<pid>/ns/net; the container reaches host b', () => {
  ctr.ok(['run', '--cni', '-d', IMAGE, k1, 'sleep', '600']);
  const pid = ctr.taskPid(k1);
  expect(pid).toBeGreaterThan(0);
  const addr = eth0(k1);
  k1Ip = /inet (\S+)\//.exec(addr)?.[1] ?? '';
  expect(k1Ip).toBe('10.100.0.10');
  expect(portOf(cniId(k1))).toContain(`dpu-overlay.netns="/proc/${pid}/ns/net"`);

  const B = site(tb, 'b');
  const listB = forTestbed(JSON.parse(readShipped('10-dpu-overlay.conflist')) as ConfList, tb, B, { range: ranges.b as [string, string] });
  const nsB = container('ctrd-b');
  const addB = cni(B, pluginConf(listB), { command: 'ADD', containerId: 'ctrd-b', netns: nsB });
  expect(addB.status).toBe(0);
  const ping = ctr.ok(['tasks', 'exec', '--exec-id', 'ping', k1, 'ping', '-c', '3', '-W', '2', firstIp(addB.json)]);
  expect(ping).toMatch(/3 packets transmitted, 3 packets received/);
});

test('ctr run --cni (foreground): DEL with an empty CNI_NETNS after exit releases the IP, the allocation and the DPU port', () => {
  const k2 = `${PREFIX}-k2`;
  const out = ok(ctr.run(['run', '--rm', '--cni', IMAGE, k2, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']), 'ctr run --rm');
  const ip = /inet (\S+)\//.exec(out)?.[1] ?? '';
  expect(ip).toBe('10.100.0.11');
  expect(ipamHolds(ip)).toBe(false);
  expect(portOf(cniId(k2))).toBe('');
  expect(attachments().some((f) => f.includes(cniId(k2)))).toBe(false);
  expect(allocationOwners()).toEqual([cniId(k1)]);
  expect(ipamHolds(k1Ip)).toBe(true);
});

test('ctr run -d never sends DEL: after the task is killed and removed, GC (cni.dev/valid-attachments) reclaims IP, VF allocation and DPU port', () => {
  const k3 = `${PREFIX}-k3`;
  ctr.ok(['run', '--cni', '-d', IMAGE, k3, 'sleep', '600']);
  const ip = /inet (\S+)\//.exec(eth0(k3))?.[1] ?? '';
  ctr.ok(['tasks', 'kill', '-s', 'SIGKILL', k3]);
  for (let i = 0; i < 50 && ctr.run(['tasks', 'delete', k3]).status !== 0; i++) ok(ctr.run(['version']), 'ctr');
  ctr.ok(['containers', 'delete', k3]);
  // leaked: no runtime will ever DEL it
  expect(ipamHolds(ip)).toBe(true);
  expect(portOf(cniId(k3))).toContain('pf0vf');
  expect(attachments().some((f) => f.includes(cniId(k3)))).toBe(true);
  expect(allocationOwners()).toContain(cniId(k3));

  const gc = cni(A, { ...pluginConf(listA, '1.1.0'), 'cni.dev/valid-attachments': [{ containerID: cniId(k1), ifname: 'eth0' }] }, { command: 'GC' });
  expect(gc.status).toBe(0);
  // On hardware the kernel gives the VF back to the host namespace when the container's namespace dies and GC
  // renames it back; in the emulation the VF is a veth pair, which dies with the namespace (GC warns, no error).
  expect(gc.stderr).not.toMatch(/"level":(50|60)/);
  expect(ipamHolds(ip)).toBe(false);
  expect(portOf(cniId(k3))).toBe('');
  expect(attachments().some((f) => f.includes(cniId(k3)))).toBe(false);
  expect(allocationOwners()).toEqual([cniId(k1)]);
  // the valid attachment is untouched and still works
  expect(ipamHolds(k1Ip)).toBe(true);
  expect(portOf(cniId(k1))).toContain('pf0vf0');
  expect(eth0(k1)).toContain(`inet ${k1Ip}/24`);
});
