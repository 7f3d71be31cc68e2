/**
 * Podman 4.3 with its CNI backend (runc) drives the packaged plugin with the shipped
 * cni-conf/podman-dpu-vni100.conflist: containers on two emulated hosts reach each other over VNI 100,
 * --mac-address/--ip arrive as CNI_ARGS MAC=/IP=, podman stop sends DEL and the VF goes back.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { linkJson, PREFIX, requireBinary, site, type Site, type Testbed, TESTBED, testbedDown, testbedUp } from '../testkit/testbed';
import { type ConfList, forTestbed, IMAGE, Podman, readShipped, run, RuntimeHost } from './runtimes';

jest.setTimeout(180000);

const NET = 'dpu-vni100';
const ranges: Record<string, [string, string]> = { a: ['10.100.0.10', '10.100.0.59'], b: ['10.100.0.60', '10.100.0.109'] };
let tb: Testbed;
const hosts: RuntimeHost[] = [];
const podman: Record<string, Podman> = {};

beforeAll(() => {
  requireBinary();
  tb = testbedUp(4, 'a,b');
  const shipped = JSON.parse(readShipped('podman-dpu-vni100.conflist')) as ConfList;
  for (const name of ['a', 'b']) {
    const s = site(tb, name);
    const host = new RuntimeHost(s, `/tmp/${PREFIX}-runtimes/podman-${name}`);
    hosts.push(host);
    host.start(tb);
    host.writeConf(`${NET}.conflist`, forTestbed(shipped, tb, s, { range: ranges[name] as [string, string] }));
    podman[name] = new Podman(host);
    podman[name].importBusybox();
  }
});

afterAll(() => {
  for (const h of hosts) h.stop();
  testbedDown();
});

function p(name: string): Podman {
  return podman[name] as Podman;
}

function ipOf(name: string, ctr: string): string {
  return p(name).ok(['inspect', '-f', `{{(index .NetworkSettings.Networks "${NET}").IPAddress}}`, ctr]).trim();
}

function eth0(name: string, ctr: string): string {
  return p(name).ok(['exec', ctr, 'ip', '-o', 'addr', 'show', 'dev', 'eth0']) + p(name).ok(['exec', ctr, 'ip', '-o', 'link', 'show', 'dev', 'eth0']);
}

function dpuPorts(siteName: string): string {
  const r = run('bash', [TESTBED, 'dpu-exec', siteName, 'ovs-vsctl', '--columns=name,external_ids', 'find', 'Port', `external_ids:dpu-overlay.network=${NET}`]);
  return r.stdout;
}

test('podman lists the shipped network with the dpu-overlay driver', () => {
  const out = p('a').ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
  expect(out.split('\n')).toContain(`${NET} dpu-overlay`);
});

describe('containers on two hosts', () => {
  const ids: Record<string, string> = {};

  test('podman run --network attaches a VF on each host and the containers reach each other over VNI 100', () => {
    for (const name of ['a', 'b']) {
      ids[name] = p(name).ok(['run', '-d', '--name', `${PREFIX}-web-${name}`, '--network', NET, '--cap-add', 'NET_RAW', IMAGE, 'sleep', '600']).trim();
      const s = site(tb, name) as Site;
      const vf = s.vfs[0];
      expect(eth0(name, ids[name] as string)).toContain(`link/ether ${vf?.mac}`);
      expect(eth0(name, ids[name] as string)).toMatch(/mtu 1450/);
      expect(linkJson(s.hostNetns, vf?.netdev as string)).toBeUndefined();
      expect(dpuPorts(name)).toMatch(new RegExp(`dpu-overlay.container="?${ids[name]}`));
    }
    const ipB = ipOf('b', ids.b as string);
    expect(ipB).toBe('10.100.0.60');
    const ping = p('a').run(['exec', ids.a as string, 'ping', '-c', '3', '-W', '2', ipB]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 packets received/);
  });

  test('--mac-address and --ip reach the plugin (CNI_ARGS MAC=, IP=) and are honoured', () => {
    const id = p('a').ok(['run', '-d', '--name', `${PREFIX}-static-a`, '--network', NET, '--mac-address', '02:aa:00:00:00:42', '--ip', '10.100.0.42', IMAGE, 'sleep', '600']).trim();
    const out = eth0('a', id);
    expect(out).toContain('link/ether 02:aa:00:00:00:42');
    expect(out).toContain('inet 10.100.0.42/24');
    p('a').ok(['rm', '--force', '--time', '0', id]);
    expect(linkJson(site(tb, 'a').hostNetns, site(tb, 'a').vfs[1]?.netdev as string)?.address).toBe(site(tb, 'a').vfs[1]?.mac);
  });

  test('podman stop sends DEL: the VF goes back to the host with its name and MAC, the DPU port goes away', () => {
    const a = site(tb, 'a');
    p('a').ok(['stop', '--time', '0', ids.a as string]);
    const vf = linkJson(a.hostNetns, a.vfs[0]?.netdev as string);
    expect(vf?.address).toBe(a.vfs[0]?.mac);
    expect(vf?.mtu).toBe(1500);
    expect(dpuPorts('a')).not.toContain(ids.a as string);
    expect(readFileSync(join(tb.stateDir, `plugin-a.log`), 'utf8')).toMatch(new RegExp(`"command":"DEL","containerId":"${ids.a}".*"DEL done"`));
    // restart: ADD again on the same VF, then rm (DEL)
    p('a').ok(['start', ids.a as string]);
    expect(eth0('a', ids.a as string)).toContain(`link/ether ${a.vfs[0]?.mac}`);
    p('a').ok(['rm', '--force', '--time', '0', ids.a as string]);
    expect(linkJson(a.hostNetns, a.vfs[0]?.netdev as string)?.address).toBe(a.vfs[0]?.mac);
    expect(dpuPorts('a')).toBe('');
  });
});
