/**
 * libcni (what containerd's CRI plugin, CRI-O and Multus embed) runs the shipped Multus
 * NetworkAttachmentDefinition (cni-conf/multus-network-attachment.yaml) as Multus would for a pod that got a VF
 * from the SR-IOV device plugin (cni-conf/sriov-device-plugin-config.yaml): deviceID of the allocated VF,
 * CNI_IFNAME=net1, the K8S_POD_* CNI_ARGS, runtimeConfig mac/ips, the conflist chained via prevResult;
 * ADD, CHECK and DEL of the whole list. The driver (test/e2e/libcni-driver) is built here from Debian's
 * libcni sources.
 * Then the NAD as shipped (no per-host value) on two sites, each host with its own node file
 * (cni-conf/node.json.example filled in for that site) at the default /etc/cni/dpu-overlay/node.json.
 */
import { chmodSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { container, daemonSocketFor, nodeEnv, dpuExec, inNetns, linkJson, ping, PREFIX, removeContainers, requireBinary, site, type Site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { buildLibcniDriver, type ConfList, forTestbed, type Json, pluginDir, readShipped, rmEmptyDir, run, RuntimeHost } from './runtimes';

jest.setTimeout(180000);

const WORK = `/tmp/${PREFIX}-runtimes/libcni`;
let tb: Testbed;
let A: Site;
let B: Site;
let driver: string;
let nad: { metadata: { annotations: Record<string, string> }; spec: { config: string } };
let resource: { resourcePrefix: string; resourceName: string; selectors: { pfNames: string[] } };

beforeAll(() => {
  requireBinary();
  driver = buildLibcniDriver();
  tb = testbedUp(6, 'a,b');
  A = site(tb, 'a');
  B = site(tb, 'b');
  rmSync(WORK, { recursive: true, force: true });
  pluginDir(join(WORK, 'bin'));
  mkdirSync(join(WORK, 'cache'), { recursive: true });
  nad = parse(readShipped('multus-network-attachment.yaml'));
  const cm = parse(readShipped('sriov-device-plugin-config.yaml')) as { data: Record<string, string> };
  resource = (JSON.parse(cm.data['config.json'] as string) as { resourceList: Array<typeof resource> }).resourceList[0] as typeof resource;
});

afterAll(() => {
  removeContainers();
  testbedDown();
  rmSync(WORK, { recursive: true, force: true });
  rmEmptyDir(`/tmp/${PREFIX}-runtimes`);
});

/** What the SR-IOV device plugin's pfNames selector finds on this node: the PCI addresses of the PFs' VFs. */
function devicePluginPool(s: Site): string[] {
  return resource.selectors.pfNames.flatMap((pf) => {
    const dev = join(s.sysfsRoot, 'class', 'net', pf, 'device');
    return readdirSync(dev).filter((e) => /^virtfn\d+$/.test(e)).sort((x, y) => Number(x.slice(6)) - Number(y.slice(6))).map((e) => basename(readlinkSync(join(dev, e))));
  });
}

interface DriverCall { command: 'ADD' | 'CHECK' | 'DEL'; list: ConfList; netns: string; id: string; pod: string; capArgs?: Json }

/** Runs the driver in site a's network namespace, or (host) in an emulated node with its own mounts. */
function libcni(c: DriverCall, host?: RuntimeHost): { status: number; json: Json | undefined; out: string } {
  const r = libcniRun(c, host);
  if (r.status !== 0) throw new Error(`libcni ${c.command} failed: ${r.out} ${r.err}`);
  return r;
}

function libcniRun(c: DriverCall, host?: RuntimeHost): { status: number; json: Json | undefined; out: string; err: string } {
  const file = join(WORK, `${c.id}.conflist`);
  writeFileSync(file, JSON.stringify(c.list));
  const env = {
    PATH: process.env.PATH,
    CNI_PATH: join(WORK, 'bin'),
    CNI_CACHE_DIR: join(WORK, 'cache'),
    CNI_CONTAINERID: c.id,
    CNI_NETNS: c.netns,
    CNI_IFNAME: 'net1',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${c.pod};K8S_POD_INFRA_CONTAINER_ID=${c.id};K8S_POD_UID=6f3c1a52-${c.id.slice(-4)}-4f7e-9d0c-${c.id.slice(0, 12)}`,
    CAP_ARGS: JSON.stringify(c.capArgs ?? {}),
  };
  const r = host ? host.exec(driver, [c.command, file], { env }) : run('ip', ['netns', 'exec', A.hostNetns, driver, c.command, file], { env: { ...env, ...nodeEnv(A, c.list) } });
  let json: Json | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : undefined;
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, json, out: r.stdout, err: r.stderr };
}

/** The NAD's config as this node's Multus hands it to libcni. */
function nadList(before: Json[] = []): ConfList {
  const list = forTestbed(JSON.parse(nad.spec.config) as ConfList, tb, A, { range: ['10.100.0.10', '10.100.0.59'] });
  return { ...list, plugins: [...before, ...list.plugins] };
}

/** With the device plugin's VF injected the way Multus does (today: deviceID and pciBusID into every plugin). */
function injected(how: 'both' | 'first' | 'pciBusID', pci: string): ConfList {
  const list = nadList();
  const extra = how === 'both' ? { deviceID: pci, pciBusID: pci } : how === 'first' ? { deviceID: pci } : { pciBusID: pci };
  return { ...list, plugins: list.plugins.map((p, i) => (how === 'first' && i > 0 ? p : { ...p, ...extra })) };
}

function representorPort(pci: string): string {
  const vf = A.vfs.find((v) => v.pci === pci);
  return dpuExec('a', 'ovs-vsctl', '--columns=name,external_ids', 'find', 'Port', `name=${vf?.representor}`);
}

test('the NAD names the resource the device plugin advertises, and its pfNames selector finds the testbed VFs', () => {
  expect(nad.metadata.annotations['k8s.v1.cni.cncf.io/resourceName']).toBe(`${resource.resourcePrefix}/${resource.resourceName}`);
  expect(devicePluginPool(A)).toEqual(A.vfs.map((v) => v.pci));
});

test.each([
  ['deviceID and pciBusID in every plugin (Multus today)', 'both', 2],
  ['deviceID in the first plugin (older Multus)', 'first', 4],
  ['pciBusID only', 'pciBusID', 1],
] as const)('the allocated VF injected as %s: that exact VF becomes net1 with runtimeConfig mac/ips; CHECK and DEL of the list', (_how, key, index) => {
  const pci = devicePluginPool(A)[index] as string;
  const vf = A.vfs[index];
  const id = `${PREFIX}multus${key}0123456789abcdef`;
  const ns = container(`pod-${key.toLowerCase()}`);
  const list = injected(key, pci);
  const capArgs = { mac: '0a:58:0a:64:00:2a', ips: [`10.100.0.${40 + index}/24`] };
  const add = libcni({ command: 'ADD', list, netns: ns, id, pod: `pod-${index}`, capArgs });
  const ifaces = add.json?.interfaces as Json[];
  // no pciID here: tuning and libcni re-encode the result as 1.0.0 types, which have no such field
  expect(ifaces).toEqual([expect.objectContaining({ name: 'net1', mac: '0a:58:0a:64:00:2a', sandbox: ns })]);
  expect(add.json?.ips).toEqual([expect.objectContaining({ address: `10.100.0.${40 + index}/24`, interface: 0 })]);
  expect(linkJson(`${PREFIX}-ctr-pod-${key.toLowerCase()}`, 'net1')?.address).toBe('0a:58:0a:64:00:2a');
  expect(linkJson(A.hostNetns, vf?.netdev as string)).toBeUndefined();
  // tuning ran after dpu-overlay on net1
  expect(inNetns(ns, 'sysctl', ['-n', 'net.ipv4.conf.net1.arp_notify']).stdout.trim()).toBe('1');
  expect(representorPort(pci)).toContain(`dpu-overlay.container=${id}`);
  expect(representorPort(pci)).toContain('dpu-overlay.ifname=net1');

  libcni({ command: 'CHECK', list, netns: ns, id, pod: `pod-${index}`, capArgs });
  libcni({ command: 'DEL', list, netns: ns, id, pod: `pod-${index}`, capArgs });
  expect(linkJson(A.hostNetns, vf?.netdev as string)?.address).toBe(vf?.mac);
  expect(representorPort(pci)).not.toContain('dpu-overlay.container');
});

test('runtimeConfig.deviceID (CAP_ARGS), chained after loopback and before tuning via prevResult; CHECK and DEL of the list', () => {
  const pci = devicePluginPool(A)[3] as string;
  const vf = A.vfs[3];
  const id = `${PREFIX}multuscapargs0123456789`;
  const ns = container('pod-capargs');
  const list = nadList([{ type: 'loopback' }]);
  const capArgs = { deviceID: pci };
  const add = libcni({ command: 'ADD', list, netns: ns, id, pod: 'pod-capargs', capArgs });
  const ifaces = add.json?.interfaces as Json[];
  expect(ifaces.map((i) => i.name)).toEqual(['lo', 'net1']);
  expect(ifaces[1]).toMatchObject({ mac: vf?.mac, sandbox: ns });
  expect(linkJson(A.hostNetns, vf?.netdev as string)).toBeUndefined();
  const ips = add.json?.ips as Json[];
  expect(ips).toEqual([expect.objectContaining({ address: '127.0.0.1/8', interface: 0 }), expect.objectContaining({ address: expect.stringMatching(/^10\.100\.0\.\d+\/24$/), interface: 1 })]);
  expect(inNetns(ns, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'net1']).stdout).toContain(`inet ${(ips[1] as { address: string }).address}`);
  libcni({ command: 'CHECK', list, netns: ns, id, pod: 'pod-capargs', capArgs });
  libcni({ command: 'DEL', list, netns: ns, id, pod: 'pod-capargs', capArgs });
  expect(linkJson(A.hostNetns, vf?.netdev as string)?.address).toBe(vf?.mac);
  expect(representorPort(pci)).not.toContain('dpu-overlay.container');
});

test('a deviceID that is already attached is refused with VfInUse (102), and nothing of the first pod is touched', () => {
  const pci = devicePluginPool(A)[5] as string;
  const list = injected('both', pci);
  const first = container('pod-first');
  libcni({ command: 'ADD', list, netns: first, id: `${PREFIX}first`, pod: 'first' });
  const second = container('pod-second');
  expect(() => libcni({ command: 'ADD', list, netns: second, id: `${PREFIX}second`, pod: 'second' })).toThrow(/"code":102/);
  expect(linkJson(`${PREFIX}-ctr-pod-first`, 'net1')?.address).toBe(A.vfs[5]?.mac);
  libcni({ command: 'DEL', list, netns: first, id: `${PREFIX}first`, pod: 'first' });
  expect(readFileSync(join(tb.stateDir, 'plugin-a.log'), 'utf8')).toMatch(/already in use by container/);
});

describe('the NAD as shipped on two nodes, each with its own node file', () => {
  const NODE_FILE = '/etc/cni/dpu-overlay/node.json';
  const hosts = new Map<string, RuntimeHost>();
  /** What stands in for each node's /etc/cni/dpu-overlay. */
  const etcDir = (s: Site) => join(WORK, `etc-dpu-overlay-${s.name}`);
  const nodeJson = (s: Site) => join(etcDir(s), 'node.json');
  const host = (s: Site) => hosts.get(s.name) as RuntimeHost;

  /** cni-conf/node.json.example filled in for the site, as its operator would (plus the emulation's paths and datapath). */
  function writeNodeFile(s: Site): Json {
    const example = JSON.parse(readShipped('node.json.example')) as Json;
    const node = {
      ...example,
      pf: s.pf,
      sysfsRoot: s.sysfsRoot,
      stateDir: join(tb.stateDir, `plugin-${s.name}`),
      logFile: join(tb.stateDir, `plugin-${s.name}.log`),
      logLevel: 'debug',
      dpu: {
        ...(example.dpu as Json),
        host: s.dpuHost,
        port: s.dpuPort,
        user: s.dpuUser,
        privateKeyFile: tb.privateKeyFile,
        knownHostsFile: tb.knownHostsFile,
        localVtep: s.localVtep,
        remoteVteps: s.remoteVteps,
        datapathType: 'netdev',
        daemonSocket: daemonSocketFor(s),
      },
    };
    expect(Object.keys(node).sort()).toEqual([...Object.keys(example), 'sysfsRoot', 'stateDir', 'logFile', 'logLevel'].sort());
    writeFileSync(nodeJson(s), JSON.stringify(node, null, 2), { mode: 0o644 });
    return node;
  }

  const netns = new Map<string, string>();

  beforeAll(() => {
    // before the nodes' mount namespaces: a netns mounted later under /run/netns would not show in them
    for (const name of ['nad-a', 'nad-a2', 'nad-b']) netns.set(name, container(name));
    for (const s of [A, B]) {
      mkdirSync(etcDir(s), { recursive: true });
      chmodSync(etcDir(s), 0o755);
      writeNodeFile(s);
      hosts.set(s.name, new RuntimeHost(s, `/tmp/${PREFIX}-runtimes/nad-${s.name}`).start(tb, [`/etc/cni/dpu-overlay=${etcDir(s)}`]));
    }
  });

  afterAll(() => {
    for (const h of hosts.values()) h.stop();
  });

  /** The NAD's config byte for byte, with the VF the device plugin gave the pod (Multus today: deviceID and pciBusID). */
  function shippedWith(pci: string): ConfList {
    const list = JSON.parse(nad.spec.config) as ConfList;
    return { ...list, plugins: list.plugins.map((p) => ({ ...p, deviceID: pci, pciBusID: pci })) };
  }

  function pod(s: Site, name: string, vfIndex: number, ip: string) {
    const vf = s.vfs[vfIndex] as (typeof s.vfs)[number];
    const ns = netns.get(name) as string;
    const id = `${PREFIX}${name.replace('-', '')}0123456789abcdef`;
    const call = { list: shippedWith(devicePluginPool(s)[vfIndex] as string), netns: ns, id, pod: name, capArgs: { ips: [`${ip}/24`] } };
    return { s, vf, ns, id, ip, call };
  }

  const portOf = (s: Site, representor: string) => dpuExec(s.name, 'ovs-vsctl', '--columns=name,external_ids', 'find', 'Port', `name=${representor}`);

  test('ADD, CHECK and DEL of the unchanged NAD on sites a and b, each plugged on its own DPU; the pods ping each other over VNI 100', () => {
    const pods = [pod(A, 'nad-a', 1, '10.100.0.21'), pod(B, 'nad-b', 1, '10.100.0.22')];
    for (const p of pods) {
      const add = libcni({ command: 'ADD', ...p.call }, host(p.s));
      expect(add.json?.interfaces).toEqual([expect.objectContaining({ name: 'net1', mac: p.vf.mac, sandbox: p.ns })]);
      expect(add.json?.ips).toEqual([expect.objectContaining({ address: `${p.ip}/24`, interface: 0 })]);
      expect(linkJson(p.s.hostNetns, p.vf.netdev)).toBeUndefined();
      expect(portOf(p.s, p.vf.representor)).toContain(`dpu-overlay.container=${p.id}`);
    }
    const [a, b] = pods as [(typeof pods)[0], (typeof pods)[0]];
    expect(ping(a.ns, b.ip)).toBe(true);
    expect(ping(b.ns, a.ip)).toBe(true);
    for (const p of pods) libcni({ command: 'CHECK', ...p.call }, host(p.s));
    // each node's plugin logged where its own node file says (site b has no other configuration at all)
    const logB = readFileSync(join(tb.stateDir, 'plugin-b.log'), 'utf8');
    expect(logB).toContain(`"nodeConfig":"${NODE_FILE}"`);
    expect(logB).toContain('"msg":"node file merged"');
    expect(logB).toContain('"msg":"attached"');
    for (const p of pods) {
      libcni({ command: 'DEL', ...p.call }, host(p.s));
      expect(linkJson(p.s.hostNetns, p.vf.netdev)?.address).toBe(p.vf.mac);
      expect(portOf(p.s, p.vf.representor)).not.toContain('dpu-overlay.container');
    }
  });

  test('a node file others can write is refused with code 7 saying chmod go-w; no node file: code 7 naming dpu.host and both places', () => {
    const p = pod(A, 'nad-a2', 2, '10.100.0.23');
    const add = () => libcniRun({ command: 'ADD', ...p.call }, host(A));
    chmodSync(nodeJson(A), 0o664);
    try {
      const r = add();
      expect(r.status).not.toBe(0);
      expect(r.json).toMatchObject({ code: 7 });
      expect(r.json?.msg).toContain(`node file ${NODE_FILE} is writable by group or others (mode 664); chmod go-w ${NODE_FILE}`);
    } finally {
      chmodSync(nodeJson(A), 0o644);
    }
    renameSync(nodeJson(A), `${nodeJson(A)}.away`);
    try {
      const r = add();
      expect(r.json).toMatchObject({ code: 7 });
      expect(r.json?.msg).toContain(`dpu.host: not set in the network config nor in the node file ${NODE_FILE} (there is no such file); set it in one of them`);
    } finally {
      renameSync(`${nodeJson(A)}.away`, nodeJson(A));
    }
    expect(linkJson(A.hostNetns, p.vf.netdev)?.address).toBe(p.vf.mac);
    expect(portOf(A, p.vf.representor)).not.toContain('dpu-overlay.container');
  });
});
