/**
 * Podman 4.3 (CNI backend, runc) once in OVN mode: the shipped cni-conf/podman-dpu-vni100-ovn.conflist
 * (controlPlane "ovn", no VTEPs, MTU 1400), on two hosts of the OVN testbed.
 * Containers reach each other through OVN's Geneve tunnel; podman stop sends DEL and the logical port goes away.
 */
import { linkJson, ovnNbctl, PREFIX, requireBinary, site, type Testbed, testbedDown, testbedUp } from '../testkit/testbed';
import { type ConfList, forTestbed, IMAGE, type Json, Podman, readShipped, RuntimeHost } from './runtimes';

jest.setTimeout(180000);

const NET = 'dpu-vni100';
const ranges: Record<string, [string, string]> = { a: ['10.100.0.10', '10.100.0.59'], b: ['10.100.0.60', '10.100.0.109'] };
let tb: Testbed;
const hosts: RuntimeHost[] = [];
const podman: Record<string, Podman> = {};

/** The node file of an OVN node (cni-conf/node-ovn.json.example): controlPlane ovn, no VTEPs. */
const OVN_NODE = { dpu: { controlPlane: 'ovn' }, drop: ['dpu.localVtep', 'dpu.remoteVteps'] };

beforeAll(() => {
  requireBinary();
  tb = testbedUp(3, 'a,b', 1, { ovn: true });
  const shipped = JSON.parse(readShipped('podman-dpu-vni100-ovn.conflist')) as ConfList;
  const plugin = shipped.plugins.find((p) => p.type === 'dpu-overlay') as Json;
  expect([plugin.mtu, (plugin.dpu as Json).controlPlane, (plugin.dpu as Json).localVtep]).toEqual([1400, undefined, undefined]);
  for (const name of ['a', 'b']) {
    const s = site(tb, name);
    const host = new RuntimeHost(s, `/tmp/${PREFIX}-runtimes/podman-ovn-${name}`);
    hosts.push(host);
    host.start(tb);
    host.writeConf(`${NET}.conflist`, forTestbed(shipped, tb, s, { range: ranges[name] as [string, string] }, OVN_NODE));
    podman[name] = new Podman(host);
    podman[name].importBusybox();
  }
});

afterAll(() => {
  for (const h of hosts) h.stop();
  testbedDown();
});

const p = (name: string) => podman[name] as Podman;
const lsps = () => ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch_Port').split('\n').filter(Boolean).sort();

test('podman run on two hosts in OVN mode: logical ports on vni100, ping over Geneve, podman rm sends DEL and cleans up', () => {
  const ids: Record<string, string> = {};
  for (const name of ['a', 'b']) {
    ids[name] = p(name).ok(['run', '-d', '--name', `${PREFIX}-ovn-${name}`, '--network', NET, '--cap-add', 'NET_RAW', IMAGE, 'sleep', '600']).trim();
    expect(p(name).ok(['exec', ids[name] as string, 'ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/mtu 1400/);
  }
  const ports = lsps();
  expect(ports).toHaveLength(2);
  expect(ovnNbctl(tb, 'show')).toContain('(vni100)');
  const ipB = p('b').ok(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, ids.b as string]).trim();
  expect(ipB).toBe('10.100.0.60');
  let received = false;
  // the first packets after ovn-installed may race the remote chassis's flows
  for (let i = 0; i < 10 && !received; i++) received = /2 packets received/.test(p('a').run(['exec', ids.a as string, 'ping', '-c', '2', '-W', '1', ipB]).stdout);
  expect(received).toBe(true);
  for (const name of ['a', 'b']) {
    p(name).ok(['rm', '--force', '--time', '0', ids[name] as string]);
    const s = site(tb, name);
    expect(linkJson(s.hostNetns, s.vfs[0]?.netdev as string)?.address).toBe(s.vfs[0]?.mac);
  }
  expect(lsps()).toEqual([]);
  expect(ovnNbctl(tb, '--bare', '--columns=name', 'list', 'Logical_Switch').trim()).toBe('');
});
