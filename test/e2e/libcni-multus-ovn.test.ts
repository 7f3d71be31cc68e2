/**
 * libcni (what Multus embeds) runs the shipped OVN-mode NetworkAttachmentDefinition
 * (cni-conf/multus-network-attachment-ovn.yaml) unchanged on two nodes of the OVN testbed, each with its own node
 * file (cni-conf/node-ovn.json.example filled in for that site) at /etc/cni/dpu-overlay/node.json, as Multus would
 * for a pod that got a VF from the SR-IOV device plugin: deviceID, CNI_IFNAME=net1, the K8S_POD_* CNI_ARGS,
 * runtimeConfig ips; ADD, CHECK and DEL of the whole list.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { container, daemonSocketFor, dpuExec, inNetns, ovnNbctl, PREFIX, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { buildLibcniDriver, type ConfList, type Json, pluginDir, readShipped, rmEmptyDir, RuntimeHost } from './runtimes';

jest.setTimeout(180000);

const WORK = `/tmp/${PREFIX}-runtimes/libcni-ovn`;
let tb: Testbed;
let A: Site;
let B: Site;
let driver: string;
let nad: { spec: { config: string } };
const hosts = new Map<string, RuntimeHost>();
const netns = new Map<string, string>();
const etcDir = (s: Site) => join(WORK, `etc-dpu-overlay-${s.name}`);

/** cni-conf/node-ovn.json.example filled in for the site, as its operator would (plus the emulation's paths and datapath). */
function writeNodeFile(s: Site): void {
  const example = JSON.parse(readShipped('node-ovn.json.example')) as Json;
  const node = {
    ...example,
    pf: s.pf,
    sysfsRoot: s.sysfsRoot,
    stateDir: join(tb.stateDir, `plugin-${s.name}`),
    logFile: join(tb.stateDir, `plugin-${s.name}.log`),
    logLevel: 'debug',
    dpu: { ...(example.dpu as Json), host: s.dpuHost, port: s.dpuPort, user: s.dpuUser, privateKeyFile: tb.privateKeyFile, knownHostsFile: tb.knownHostsFile, datapathType: 'netdev', daemonSocket: daemonSocketFor(s) },
  };
  writeFileSync(join(etcDir(s), 'node.json'), JSON.stringify(node, null, 2), { mode: 0o644 });
}

beforeAll(() => {
  requireBinary();
  driver = buildLibcniDriver();
  tb = testbedUp(3, 'a,b', 1, { ovn: true });
  A = site(tb, 'a');
  B = site(tb, 'b');
  rmSync(WORK, { recursive: true, force: true });
  pluginDir(join(WORK, 'bin'));
  mkdirSync(join(WORK, 'cache'), { recursive: true });
  nad = parse(readShipped('multus-network-attachment-ovn.yaml'));
  // before the nodes' mount namespaces: a netns mounted later under /run/netns would not show in them
  for (const name of ['ovn-nad-a', 'ovn-nad-b']) netns.set(name, container(name));
  for (const s of [A, B]) {
    mkdirSync(etcDir(s), { recursive: true });
    chmodSync(etcDir(s), 0o755);
    writeNodeFile(s);
    hosts.set(s.name, new RuntimeHost(s, `/tmp/${PREFIX}-runtimes/ovn-nad-${s.name}`).start(tb, [`/etc/cni/dpu-overlay=${etcDir(s)}`]));
  }
});

afterAll(() => {
  for (const h of hosts.values()) h.stop();
  removeContainers();
  testbedDown();
  rmSync(WORK, { recursive: true, force: true });
  rmEmptyDir(`/tmp/${PREFIX}-runtimes`);
});

/** The PCI addresses of the PF's VFs, as the SR-IOV device plugin finds them. */
function pool(s: Site): string[] {
  const dev = join(s.sysfsRoot, 'class', 'net', s.pf, 'device');
  return readdirSync(dev).filter((e) => /^virtfn\d+$/.test(e)).sort((x, y) => Number(x.slice(6)) - Number(y.slice(6))).map((e) => basename(readlinkSync(join(dev, e))));
}

function libcni(command: 'ADD' | 'CHECK' | 'DEL', s: Site, name: string, pci: string, ip: string): Json | undefined {
  const list = JSON.parse(nad.spec.config) as ConfList;
  const id = `${PREFIX}${name.replace(/-/g, '')}0123456789abcdef`;
  const file = join(WORK, `${id}.conflist`);
  writeFileSync(file, JSON.stringify({ ...list, plugins: list.plugins.map((p) => ({ ...p, deviceID: pci, pciBusID: pci })) }));
  const env = {
    PATH: process.env.PATH,
    CNI_PATH: join(WORK, 'bin'),
    CNI_CACHE_DIR: join(WORK, 'cache'),
    CNI_CONTAINERID: id,
    CNI_NETNS: netns.get(name) as string,
    CNI_IFNAME: 'net1',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${id}`,
    CAP_ARGS: JSON.stringify({ ips: [`${ip}/24`] }),
  };
  const r = (hosts.get(s.name) as RuntimeHost).exec(driver, [command, file], { env });
  if (r.status !== 0) throw new Error(`libcni ${command} on ${s.name} failed: ${r.stdout} ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : undefined;
}

const lsps = () => ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch_Port').split('\n').filter(Boolean).sort();

test('ADD, CHECK and DEL of the unchanged OVN-mode NAD on sites a and b: logical ports on vni100 bound to each chassis, pods ping each other', () => {
  const pods = [
    { s: A, name: 'ovn-nad-a', pci: pool(A)[1] as string, ip: '10.100.0.21' },
    { s: B, name: 'ovn-nad-b', pci: pool(B)[1] as string, ip: '10.100.0.22' },
  ];
  for (const p of pods) {
    const add = libcni('ADD', p.s, p.name, p.pci, p.ip);
    expect(add?.ips).toEqual([expect.objectContaining({ address: `${p.ip}/24` })]);
  }
  const names = lsps();
  expect(names).toHaveLength(2);
  expect(names[0]).toMatch(new RegExp(`^dpuo-${A.ovnSystemId}-`));
  expect(names[1]).toMatch(new RegExp(`^dpuo-${B.ovnSystemId}-`));
  expect(ovnNbctl(tb, 'get', 'Logical_Switch_Port', names[0] as string, 'external_ids:"dpu-overlay.ifname"').trim()).toBe('net1');
  let pinged = false;
  for (let i = 0; i < 10 && !pinged; i++) pinged = inNetns(netns.get('ovn-nad-a') as string, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.100.0.22']).status === 0;
  expect(pinged).toBe(true);
  expect(inNetns(netns.get('ovn-nad-a') as string, 'cat', ['/sys/class/net/net1/mtu']).stdout.trim()).toBe('1400');
  for (const p of pods) libcni('CHECK', p.s, p.name, p.pci, p.ip);
  expect(readFileSync(join(tb.stateDir, 'plugin-b.log'), 'utf8')).toContain('"msg":"node file merged"');
  for (const p of pods) libcni('DEL', p.s, p.name, p.pci, p.ip);
  expect(lsps()).toEqual([]);
  expect(ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch').trim()).toBe('');
  for (const s of [A, B]) expect(dpuExec(s.dpu, 'ovs-vsctl', 'list-ports', 'br-int').split('\n').filter((x) => x && !x.startsWith('ovn-'))).toEqual([]);
});
