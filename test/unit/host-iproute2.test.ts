import { HOST_NETNS, interfaceSetupLines, LinkOps, temporaryName } from '../../src/kernel/iproute2';
import { fail, ok, ScriptedRunner } from './helpers/scripted-runner';
import { KernelError } from '../../src/kernel/errors';
import { layerErrorToCni as toCniError } from '../../src/plugin/layer-errors';

const links = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, address: '00:00:00:00:00:00' },
  { ifindex: 7, ifname: 'ens1f0v0', flags: ['BROADCAST', 'MULTICAST'], mtu: 1500, address: '02:AB:CD:00:00:01' },
  { ifindex: 8, ifname: 'tun0', flags: ['POINTOPOINT', 'UP'], mtu: 1400 },
]);

describe('LinkOps', () => {
  it('linkOf parses ip -j link show dev NAME (MAC lower-cased, UP flag); in another namespace through nsenter --net=', async () => {
    const r = new ScriptedRunner([ok(JSON.stringify([JSON.parse(links)[1]])), ok(JSON.stringify([JSON.parse(links)[2]]))]);
    expect(await new LinkOps(r).linkOf('ens1f0v0')).toEqual({ name: 'ens1f0v0', ifindex: 7, mac: '02:ab:cd:00:00:01', mtu: 1500, up: false });
    expect(await new LinkOps(r).linkOf('tun0', '/run/netns/a b')).toEqual({ name: 'tun0', ifindex: 8, mac: '', mtu: 1400, up: true });
    expect(r.calls.map((c) => [c.file, c.args])).toEqual([
      ['ip', ['-j', 'link', 'show', 'dev', 'ens1f0v0']],
      ['nsenter', ['--net=/run/netns/a b', 'ip', '-j', 'link', 'show', 'dev', 'tun0']],
    ]);
  });

  it('linkOf: no such device is undefined; garbage is an io KernelError (code 5 once mapped)', async () => {
    expect(await new LinkOps(new ScriptedRunner([fail('Device "x" does not exist.\n')])).linkOf('x')).toBeUndefined();
    const err = await new LinkOps(new ScriptedRunner([ok('Error: garbage')])).linkOf('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(toCniError(err)).toMatchObject({ code: 5 });
  });

  it('a failing ip is a KernelError naming the command and its stderr (code 5 once mapped)', async () => {
    const err = await new LinkOps(new ScriptedRunner([fail('Cannot open network namespace "x": Permission denied')])).linkOf('a', '/run/netns/x').catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'permission', message: expect.stringMatching(/nsenter.*Cannot open network namespace/) });
    expect(toCniError(err)).toMatchObject({ code: 5, message: expect.stringMatching(/nsenter.*Cannot open network namespace/) });
  });

  it('hostNames asks the runner (/proc/self/net/dev), no command', () => {
    const r = new ScriptedRunner([], new Set(['lo', 'ens1f0v0']));
    expect([...new LinkOps(r).hostNames()]).toEqual(['lo', 'ens1f0v0']);
    expect(r.calls).toEqual([]);
  });

  it('moveToNetns renames while moving, from the given namespace', async () => {
    const r = new ScriptedRunner([ok(), ok()]);
    await new LinkOps(r).moveToNetns('ens1f0v0', '/proc/42/ns/net', 'dpuo00000001');
    await new LinkOps(r).moveToNetns('net1', HOST_NETNS, 'dpuo00000002', '/proc/42/ns/net');
    expect(r.calls.map((c) => [c.file, c.args])).toEqual([
      ['ip', ['link', 'set', 'dev', 'ens1f0v0', 'netns', '/proc/42/ns/net', 'name', 'dpuo00000001']],
      ['nsenter', ['--net=/proc/42/ns/net', 'ip', 'link', 'set', 'dev', 'net1', 'netns', HOST_NETNS, 'name', 'dpuo00000002']],
    ]);
  });

  it('batch sends all commands, encoded, on stdin to one ip -batch -; nothing for no commands', async () => {
    const r = new ScriptedRunner([ok()]);
    await new LinkOps(r).batch('/run/netns/a', [['link', 'set', 'dev', 'a', 'up'], ['addr', 'add', '10.0.0.1/24', 'dev', 'a']]);
    await new LinkOps(r).batch('/run/netns/a', []);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]).toMatchObject({ file: 'nsenter', args: ['--net=/run/netns/a', 'ip', '-batch', '-'], opts: { input: 'link set dev a up\naddr add 10.0.0.1/24 dev a\n' } });
  });

  it('names iproute2 reads specially in a batch are quoted so they read back exactly', async () => {
    const r = new ScriptedRunner([ok()]);
    await new LinkOps(r).batch(undefined, [['link', 'set', 'dev', 'x', 'name', '"x""netns"1'], ['link', 'set', 'dev', 'a\\', 'up']], ['-d', '-j']);
    expect(r.calls[0]).toMatchObject({ file: 'ip', args: ['-d', '-j', '-batch', '-'], opts: { input: `link set dev x name '"x""netns"1'\nlink set dev "a\\" up\n` } });
  });

  it('a word no batch token can carry ("#", both quotes after a leading quote) runs the commands one by one via argv', async () => {
    const r = new ScriptedRunner([ok(), ok('[{"ifindex":4}]')]);
    const out = await new LinkOps(r).batch('/run/netns/a', [['link', 'set', 'dev', 'dpuo1', 'name', 'e#x'], ['link', 'show', 'dev', 'e#x']], ['-j']);
    expect(out).toBe('[{"ifindex":4}]');
    expect(r.calls.map((c) => [c.file, c.args, c.opts?.input])).toEqual([
      ['nsenter', ['--net=/run/netns/a', 'ip', '-j', 'link', 'set', 'dev', 'dpuo1', 'name', 'e#x'], undefined],
      ['nsenter', ['--net=/run/netns/a', 'ip', '-j', 'link', 'show', 'dev', 'e#x'], undefined],
    ]);
  });

  it('a failing batch is a KernelError (kind exists here; code 5 once mapped) with iproute2 stderr', async () => {
    const r = new ScriptedRunner([fail('RTNETLINK answers: File exists\nCommand failed -:2\n')]);
    const err = await new LinkOps(r).batch(undefined, [['x'], ['y']]).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'exists', message: 'configuring the interface failed: RTNETLINK answers: File exists\nCommand failed -:2' });
    expect(toCniError(err)).toMatchObject({ code: 5, message: 'configuring the interface failed: RTNETLINK answers: File exists\nCommand failed -:2' });
  });

  it('announceOnUp writes arp_notify and ndisc_notify in the namespace with one tee; a failure is reported, not thrown', async () => {
    const r = new ScriptedRunner([ok('1\n'), fail('tee: /proc/sys/net/ipv6/conf/x/ndisc_notify: No such file or directory')]);
    expect(await new LinkOps(r).announceOnUp('/run/netns/a', 'e#"x')).toBeUndefined();
    expect(await new LinkOps(r).announceOnUp('/run/netns/a', 'x')).toMatch(/ndisc_notify/);
    expect(r.calls[0]).toMatchObject({ file: 'nsenter', args: ['--net=/run/netns/a', 'tee', '/proc/sys/net/ipv4/conf/e#"x/arp_notify', '/proc/sys/net/ipv6/conf/e#"x/ndisc_notify'], opts: { input: '1\n' } });
  });

  it('interfaceState: link, global addresses and main-table routes of both families from one ip -j -batch', async () => {
    const addr = JSON.stringify([{ ifindex: 9, ifname: 'net1', flags: ['UP'], mtu: 1450, address: '02:00:00:00:00:0A', addr_info: [{ local: '10.1.0.5', prefixlen: 24, scope: 'global' }, { local: 'fe80::1', prefixlen: 64, scope: 'link' }, { local: 'fd00::5', prefixlen: 64, scope: 'global' }, { local: '127.0.0.1', prefixlen: 8, scope: 'host' }] }]);
    const routes = JSON.stringify([{ dst: 'default', gateway: '10.1.0.1' }, { type: 'unicast', dst: 'fd09::/64', gateway: 'fd00::1' }, { type: 'local', dst: '10.1.0.5', table: 'local' }, { type: 'multicast', dst: 'ff00::/8', table: 'local' }]);
    const r = new ScriptedRunner([ok(`${addr}\n${routes}\n`)]);
    expect(await new LinkOps(r).interfaceState('net1', '/run/netns/a')).toEqual({
      link: { name: 'net1', ifindex: 9, mac: '02:00:00:00:00:0a', mtu: 1450, up: true },
      addresses: ['10.1.0.5/24', 'fd00::5/64'],
      routes: [{ dst: 'default', gateway: '10.1.0.1' }, { dst: 'fd09::/64', gateway: 'fd00::1' }],
    });
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]).toMatchObject({ args: ['--net=/run/netns/a', 'ip', '-j', '-batch', '-'], opts: { input: 'addr show dev net1\nroute show table all dev net1\n' } });
  });

  it('interfaceState: no such device is undefined', async () => {
    const r = new ScriptedRunner([fail('Device "net1" does not exist.\nCommand failed -:1\n')]);
    expect(await new LinkOps(r).interfaceState('net1', '/run/netns/a')).toBeUndefined();
  });

  it('vfAdmin reads one VF from the PF vfinfo_list', async () => {
    const pf = JSON.stringify([
      {
        ifname: 'ens1f0',
        vfinfo_list: [
          { vf: 0, address: '00:00:00:00:00:00', vlan_list: [{ vlan: 0 }] },
          { vf: 3, address: '02:00:00:00:00:33', vlan_list: [{ vlan: 100, qos: 2 }], spoofchk: false, trust: true, link_state: 'enable', rate: { max_tx: 1000, min_tx: 10 } },
        ],
      },
    ]);
    const r = new ScriptedRunner([ok(pf), ok(pf)]);
    expect(await new LinkOps(r).vfAdmin('ens1f0', 3)).toEqual({ mac: '02:00:00:00:00:33', vlan: 100, vlanQoS: 2, spoofchk: 'off', trust: 'on', linkState: 'enable', minTxRate: 10, maxTxRate: 1000 });
    expect(await new LinkOps(r).vfAdmin('ens1f0', 9)).toEqual({});
    expect(r.calls[0]?.args).toEqual(['-j', 'link', 'show', 'dev', 'ens1f0']);
  });

  it('setVfAdmin: one ip link set ... vf N with the given attributes; nothing when none', async () => {
    const r = new ScriptedRunner([ok(), ok()]);
    await new LinkOps(r).setVfAdmin('ens1f0', 2, { mac: '02:00:00:00:00:01', vlan: 10, vlanQoS: 1, spoofchk: 'on', trust: 'off', linkState: 'auto', minTxRate: 0, maxTxRate: 0 });
    await new LinkOps(r).setVfAdmin('ens1f0', 2, {});
    await new LinkOps(r).setVfAdmin('ens1f0', 2, { vlan: 7 });
    expect(r.calls.map((c) => c.args)).toEqual([
      ['link', 'set', 'dev', 'ens1f0', 'vf', '2', 'mac', '02:00:00:00:00:01', 'vlan', '10', 'qos', '1', 'spoofchk', 'on', 'trust', 'off', 'state', 'auto', 'min_tx_rate', '0', 'max_tx_rate', '0'],
      ['link', 'set', 'dev', 'ens1f0', 'vf', '2', 'vlan', '7'],
    ]);
  });

  it('setVfAdmin failure is code 5 (once mapped) naming the VF and PF', async () => {
    await expect(new LinkOps(new ScriptedRunner([fail('RTNETLINK answers: Operation not supported')])).setVfAdmin('ens1f0', 2, { trust: 'on' }).catch((e: unknown) => Promise.reject(toCniError(e)))).rejects.toMatchObject({
      code: 5,
      message: expect.stringContaining('VF 2 admin attributes on PF ens1f0 failed: RTNETLINK answers: Operation not supported'),
    });
  });
});

describe('interfaceSetupLines', () => {
  it('rename, MAC, MTU, addresses, then up (announcing them), then routes via the family gateway', () => {
    expect(
      interfaceSetupLines({
        from: 'dpuo01',
        ifname: 'net1',
        mac: '02:00:00:00:00:01',
        mtu: 1450,
        ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1' }, { address: '10.2.0.5/24', gateway: '10.2.0.1' }],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }, { dst: '192.168.0.0/16', gw: '10.2.0.254' }],
      }),
    ).toEqual([
      ['link', 'set', 'dev', 'dpuo01', 'name', 'net1'],
      ['link', 'set', 'dev', 'net1', 'address', '02:00:00:00:00:01'],
      ['link', 'set', 'dev', 'net1', 'mtu', '1450'],
      ['addr', 'add', '10.1.0.5/24', 'dev', 'net1'],
      ['addr', 'add', 'fd00::5/64', 'dev', 'net1', 'nodad'],
      ['addr', 'add', '10.2.0.5/24', 'dev', 'net1'],
      ['link', 'set', 'dev', 'net1', 'up'],
      ['route', 'add', '0.0.0.0/0', 'via', '10.1.0.1', 'dev', 'net1'],
      ['route', 'add', '::/0', 'via', 'fd00::1', 'dev', 'net1'],
      ['route', 'add', '192.168.0.0/16', 'via', '10.2.0.254', 'dev', 'net1'],
    ]);
  });

  it('no rename when the name is already right; no MAC line without a MAC; a route without any gateway is on-link', () => {
    expect(interfaceSetupLines({ from: 'net1', ifname: 'net1', mtu: 9000, ips: [{ address: '10.0.0.2/24' }], routes: [{ dst: '10.9.0.0/16' }] })).toEqual([
      ['link', 'set', 'dev', 'net1', 'mtu', '9000'],
      ['addr', 'add', '10.0.0.2/24', 'dev', 'net1'],
      ['link', 'set', 'dev', 'net1', 'up'],
      ['route', 'add', '10.9.0.0/16', 'dev', 'net1'],
    ]);
  });
});

describe('names', () => {
  it('temporaryName: dpuo + 8 hex, a valid netdev name, different each time', () => {
    const names = new Set(Array.from({ length: 50 }, temporaryName));
    for (const n of names) expect(n).toMatch(/^dpuo[0-9a-f]{8}$/);
    expect(names.size).toBe(50);
  });
  it('HOST_NETNS is this process\'s own namespace file', () => {
    expect(HOST_NETNS).toBe(`/proc/${process.pid}/ns/net`);
  });
});
