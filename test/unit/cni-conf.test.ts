/**
 * The shipped configuration (cni-conf/): each file parses, the plugin's own schema accepts its dpu-overlay
 * config, the Kubernetes objects fit together (no Kubernetes runs here: structure only), and every file is
 * used by an end-to-end test that runs it under the runtime it is written for.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { parse } from 'yaml';
import { loadNetConf } from '../../src/config/load';
import { parseNodeFile } from '../../src/config/node-file';
import { NODE_FILE_KEYS, splitByOwner } from '../../src/config/ownership';
import { nodeFieldsChanged } from '../../src/config/ownership-check';

const DIR = join(__dirname, '..', '..', 'cni-conf');
const E2E = join(__dirname, '..', 'e2e');
const read = (f: string) => readFileSync(join(DIR, f), 'utf8');

type Json = Record<string, unknown>;
interface ConfList { cniVersion: string; name: string; plugins: Json[] }

/** Which end-to-end suite runs each shipped file. */
const CONSUMERS: Record<string, string> = {
  '10-dpu-overlay.conflist': 'containerd.test.ts',
  'podman-dpu-vni100.conflist': 'podman.test.ts',
  'podman-dpu-vni100-ovn.conflist': 'podman-ovn.test.ts',
  'multus-network-attachment.yaml': 'libcni-multus.test.ts',
  'multus-network-attachment-ovn.yaml': 'libcni-multus-ovn.test.ts',
  'node-ovn.json.example': 'libcni-multus-ovn.test.ts',
  'sriov-device-plugin-config.yaml': 'libcni-multus.test.ts',
  'node.json.example': 'libcni-multus.test.ts',
  'daemonset.yaml': 'daemonset.test.ts',
  Containerfile: 'daemonset.test.ts',
};

function dpuOverlayConf(list: ConfList): Json {
  const plugin = list.plugins.find((p) => p.type === 'dpu-overlay');
  if (!plugin) throw new Error(`${list.name}: no dpu-overlay plugin`);
  return { ...plugin, cniVersion: list.cniVersion, name: list.name };
}

const nad = parse(read('multus-network-attachment.yaml')) as { apiVersion: string; kind: string; metadata: { name: string; annotations: Record<string, string> }; spec: { config: string } };
const dpConfigMap = parse(read('sriov-device-plugin-config.yaml')) as { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
const resource = (JSON.parse(dpConfigMap.data['config.json'] ?? '{}') as { resourceList: Array<{ resourcePrefix: string; resourceName: string; selectors: { pfNames: string[]; vendors: string[] } }> }).resourceList;

test('every file in cni-conf/ is run by an end-to-end test under its runtime', () => {
  expect(readdirSync(DIR).sort()).toEqual(Object.keys(CONSUMERS).sort());
  for (const [file, suite] of Object.entries(CONSUMERS)) expect(readFileSync(join(E2E, suite), 'utf8')).toContain(`'${file}'`);
});

test.each([
  ['10-dpu-overlay.conflist (containerd, CRI-O)'],
  ['podman-dpu-vni100.conflist (Podman)'],
  ['podman-dpu-vni100-ovn.conflist (Podman, OVN)'],
])('%s: cniVersion 1.0.0 (Podman 4.3 rejects 1.1.0), dpu-overlay then tuning, network fields only, a config the plugin accepts with the node file', (label) => {
  const list = JSON.parse(read(label.split(' ')[0] as string)) as ConfList;
  expect(list.cniVersion).toBe('1.0.0');
  expect(list.plugins.map((p) => p.type)).toEqual(['dpu-overlay', 'tuning']);
  const plugin = dpuOverlayConf(list);
  expect(nodeFieldsChanged(plugin, { path: '/etc/cni/dpu-overlay/node.json' })).toEqual([]);
  expect(splitByOwner(plugin).node).toEqual({});
  const nodeExample = label.includes('OVN') ? 'node-ovn.json.example' : 'node.json.example';
  const conf = loadNetConf(plugin, {}, { path: '/etc/cni/dpu-overlay/node.json', values: parseNodeFile(read(nodeExample), nodeExample) });
  expect(conf.pf).toBe(resource[0]?.selectors.pfNames[0]);
});

test('the containerd/CRI-O conflist declares the capabilities libcni turns into runtimeConfig', () => {
  const plugin = dpuOverlayConf(JSON.parse(read('10-dpu-overlay.conflist')) as ConfList);
  expect(plugin.capabilities).toEqual({ mac: true, ips: true, deviceID: true });
});

describe('Multus NetworkAttachmentDefinition and SR-IOV device plugin config', () => {
  test('kinds and apiVersions', () => {
    expect(nad).toMatchObject({ apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition' });
    expect(dpConfigMap).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sriovdp-config', namespace: 'kube-system' } });
  });

  test('the NAD asks for the resource the device plugin advertises', () => {
    expect(resource).toHaveLength(1);
    const r = resource[0] as (typeof resource)[number];
    expect(nad.metadata.annotations['k8s.v1.cni.cncf.io/resourceName']).toBe(`${r.resourcePrefix}/${r.resourceName}`);
    expect(r.selectors.vendors).toEqual(['15b3']);
  });

  test('the embedded CNI config is a valid conflist named like the NAD, taking its VF from the device plugin (deviceID), not from pf', () => {
    const list = JSON.parse(nad.spec.config) as ConfList;
    expect(list.name).toBe(nad.metadata.name);
    expect(list.cniVersion).toBe('1.0.0');
    const plugin = dpuOverlayConf(list);
    expect(plugin.pf).toBeUndefined();
    expect(plugin.capabilities).toMatchObject({ deviceID: true });
    expect(list.plugins.map((p) => p.type)).toEqual(['dpu-overlay', 'tuning']);
  });

  test('the NAD is one object for the whole cluster: no value that differs per host, all of them from the node file', () => {
    const plugin = dpuOverlayConf(JSON.parse(nad.spec.config) as ConfList);
    for (const key of NODE_FILE_KEYS) {
      if (key !== 'dpu') expect([key, plugin[key]]).toEqual([key, undefined]);
    }
    const dpu = plugin.dpu as Json;
    for (const key of ['host', 'port', 'user', 'privateKeyFile', 'knownHostsFile', 'hostKeyFingerprint', 'localVtep', 'remoteVteps', 'daemonSocket']) {
      expect([key, dpu[key]]).toEqual([key, undefined]);
    }
    const node = parseNodeFile(read('node.json.example'), 'node.json.example');
    const conf = loadNetConf({ ...plugin, deviceID: '0000:03:00.2' }, {}, { path: '/etc/cni/dpu-overlay/node.json', values: node });
    expect(conf.dpu).toMatchObject({ ...(node.dpu as Json), hwOffload: dpu.hwOffload });
    expect(conf.pf).toBe(resource[0]?.selectors.pfNames[0]);
  });

  test('without a node file the NAD is refused, naming the field and both places it could come from', () => {
    const plugin = dpuOverlayConf(JSON.parse(nad.spec.config) as ConfList);
    expect(() => loadNetConf(plugin, {}, { path: '/etc/cni/dpu-overlay/node.json' })).toThrow(/dpu\.host: not set in the network config nor in the node file \/etc\/cni\/dpu-overlay\/node\.json/);
  });
});

test('the OVN-mode NAD: the static NAD with MTU 1400, no node value; its node file sets controlPlane ovn and no VTEPs; together a valid config', () => {
  const ovnNad = parse(read('multus-network-attachment-ovn.yaml')) as typeof nad;
  expect(ovnNad).toMatchObject({ apiVersion: nad.apiVersion, kind: nad.kind, metadata: { annotations: nad.metadata.annotations } });
  const list = JSON.parse(ovnNad.spec.config) as ConfList;
  expect(list.name).toBe(ovnNad.metadata.name);
  expect(list.plugins.map((p) => p.type)).toEqual(['dpu-overlay', 'tuning']);
  const plugin = dpuOverlayConf(list);
  expect(plugin.mtu).toBe(1400);
  for (const key of NODE_FILE_KEYS) {
    if (key !== 'dpu') expect([key, plugin[key]]).toEqual([key, undefined]);
  }
  const dpu = plugin.dpu as Json;
  expect(splitByOwner(plugin).node).toEqual({});
  for (const key of ['host', 'port', 'user', 'privateKeyFile', 'knownHostsFile', 'localVtep', 'remoteVteps', 'daemonSocket', 'controlPlane']) {
    expect([key, dpu[key]]).toEqual([key, undefined]);
  }
  const node = parseNodeFile(read('node-ovn.json.example'), 'node-ovn.json.example');
  expect((node.dpu as Json).localVtep).toBeUndefined();
  expect((node.dpu as Json).controlPlane).toBe('ovn');
  const conf = loadNetConf({ ...plugin, deviceID: '0000:03:00.2' }, {}, { path: '/etc/cni/dpu-overlay/node.json', values: node });
  expect(conf.dpu).toMatchObject({ ...(node.dpu as Json), controlPlane: 'ovn' });
});

describe('DaemonSet and its image', () => {
  const raw = parse(read('daemonset.yaml')) as Json;
  const ds = raw as unknown as IDaemonSet;
  const pod = ds.spec?.template.spec as NonNullable<NonNullable<IDaemonSet['spec']>['template']['spec']>;
  const init = (name: string) => pod.initContainers?.find((c) => c.name === name);
  const daemon = pod.containers.find((c) => c.name === 'daemon');
  const hostPathOf = (ctr: typeof daemon, mountPath: string) => {
    const m = ctr?.volumeMounts?.find((v) => v.mountPath === mountPath);
    return pod.volumes?.find((v) => v.name === m?.name)?.hostPath?.path;
  };
  const mountOf = (ctr: typeof daemon, hostPath: string) => {
    const vol = pod.volumes?.find((v) => v.hostPath?.path === hostPath);
    return ctr?.volumeMounts?.find((m) => m.name === vol?.name);
  };

  test('validates against the Kubernetes API schemas (kubernetes-models), and a broken copy does not', () => {
    expect(() => new DaemonSet(ds).validate()).not.toThrow();
    const broken = JSON.parse(JSON.stringify(raw)) as IDaemonSet;
    (broken.spec?.template.spec?.containers[0]?.volumeMounts?.[0] as { mountPropagation: string }).mountPropagation = 'Sideways';
    expect(() => new DaemonSet(broken).validate()).toThrow(/mountPropagation/);
  });

  test('selector matches the pod template; every volume mount names a volume', () => {
    expect(ds.spec?.template.metadata?.labels).toMatchObject(ds.spec?.selector.matchLabels ?? { none: 'x' });
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const m of c.volumeMounts ?? []) expect([c.name, m.name, pod.volumes?.some((v) => v.name === m.name)]).toEqual([c.name, m.name, true]);
    }
  });

  test('the install init container puts the binary into the node\'s /opt/cni/bin atomically (copy, then rename) and makes the socket directory 0700', () => {
    const ctr = init('install');
    const bin = mountOf(ctr, '/opt/cni/bin')?.mountPath;
    const run = mountOf(ctr, '/run/dpu-overlay')?.mountPath;
    const script = ctr?.args?.join(' ') ?? '';
    expect(script).toContain(`mv -f ${bin}/.dpu-overlay.new ${bin}/dpu-overlay`);
    expect(script).toContain(`chmod 0700 ${run}`);
    expect(script).not.toMatch(/node\.json[^.]/);
  });

  test('no key in a Secret: each node generates its own (dpu-overlay keygen) where the node file\'s privateKeyFile points', () => {
    expect(pod.volumes?.some((v) => v.secret)).toBe(false);
    const ctr = init('node-key');
    expect(ctr?.command).toEqual(['/dpu-overlay', 'keygen']);
    const dir = mountOf(ctr, '/etc/cni/dpu-overlay')?.mountPath;
    expect(ctr?.args).toEqual([`${dir}/id_ed25519`]);
    const node = parseNodeFile(read('node.json.example'), 'node.json.example');
    expect((node.dpu as Json).privateKeyFile).toBe('/etc/cni/dpu-overlay/id_ed25519');
  });

  test('the daemon container: host network and PID namespace, privileged, the runtime\'s netns directories with HostToContainer propagation, socket, state and node file on hostPath', () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.hostPID).toBe(true);
    expect(daemon?.securityContext?.privileged).toBe(true);
    expect(daemon?.command).toEqual(['/dpu-overlay']);
    const args = daemon?.args ?? [];
    const flag = (f: string) => args[args.indexOf(f) + 1];
    expect(args[0]).toBe('daemon');
    expect(flag('--socket')).toBe('/run/dpu-overlay/dpu.sock');
    expect(flag('--metrics-address')).toBe('127.0.0.1:9741');
    expect(hostPathOf(daemon, '/run/dpu-overlay')).toBe('/run/dpu-overlay');
    expect(hostPathOf(daemon, flag('--state-dir') as string)).toBeUndefined(); // under /var/lib/cni:
    expect(hostPathOf(daemon, '/var/lib/cni')).toBe('/var/lib/cni');
    expect((flag('--state-dir') as string).startsWith('/var/lib/cni/')).toBe(true);
    for (const netns of ['/run/netns', '/var/run/netns']) expect(mountOf(daemon, netns)?.mountPropagation).toBe('HostToContainer');
    expect(hostPathOf(daemon, '/opt/cni/bin')).toBe('/opt/cni/bin');
    expect(flag('--node-config')).toBe('/etc/cni/dpu-overlay/node.json');
    expect(hostPathOf(daemon, '/etc/cni/dpu-overlay')).toBe('/etc/cni/dpu-overlay');
  });

  test('readiness and liveness ask /healthz on the metrics address (503 without node file or socket)', () => {
    const [host, port] = ((daemon?.args ?? [])[(daemon?.args ?? []).indexOf('--metrics-address') + 1] as string).split(':');
    for (const probe of [daemon?.readinessProbe, daemon?.livenessProbe]) expect(probe?.httpGet).toEqual({ host, port: Number(port), path: '/healthz' });
  });

  test('the Containerfile puts dist/dpu-overlay at /dpu-overlay on a glibc base, and node.json.example where install copies it from', () => {
    const copies = [...read('Containerfile').matchAll(/^COPY\s+(\S+)\s+(\S+)$/gm)].map((m) => [m[1], m[2]]);
    expect(copies).toEqual([['dist/dpu-overlay', '/dpu-overlay'], ['cni-conf/node.json.example', '/node.json.example']]);
    expect(read('Containerfile')).toMatch(/^FROM \S*debian:\S+-slim$/m);
    expect(init('install')?.args?.join(' ')).toContain('cp /dpu-overlay ');
  });
});
