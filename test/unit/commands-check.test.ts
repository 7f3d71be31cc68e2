import { CniError } from '../../src/cni/errors';
import { Bed } from './helpers/bed';
import { createNetns, type TestNetns } from './helpers/netns';
import { removeTmpDirs } from './helpers/tmp';

let nets: TestNetns[] = [];
let NS = '';
beforeAll(async () => {
  nets = [await createNetns()];
  NS = nets[0]!.path;
});
afterAll(() => {
  for (const n of nets) n.close();
  removeTmpDirs();
});

async function added(cniVersion = '1.1.0'): Promise<{ b: Bed; prevResult: Record<string, unknown>; check: () => ReturnType<Bed['run']> }> {
  const b = new Bed(nets.map((n) => n.path));
  b.ipam.setResult({ cniVersion: '1.1.0', ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }], routes: [{ dst: '0.0.0.0/0' }, { dst: '172.16.0.0/12' }, { dst: '10.9.9.9/32' }] });
  const add = await b.run('ADD', { config: b.config({ cniVersion }) });
  expect(add.exitCode).toBe(0);
  const prevResult = add.json as Record<string, unknown>;
  b.ipam.resetLog();
  b.host.clearCalls();
  b.dpu.calls.length = 0;
  return { b, prevResult, check: () => b.run('CHECK', { config: b.config({ cniVersion, prevResult }) }) };
}

describe('CHECK', () => {
  it('passes right after ADD: link, addresses, routes, IPAM CHECK, DPU check', async () => {
    const { b, check } = await added();
    const out = await check();
    expect(out).toMatchObject({ exitCode: 0, writes: [] });
    expect(b.ipam.log()).toEqual([['CHECK', 'c1', 'net1', NS, '-']]);
    expect(b.dpu.callsOf('check')).toEqual([{ network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: NS, representor: 'pf0vf0', mtu: 1450 }]);
  });

  it('passes with a 0.4.0 config and prevResult', async () => {
    const { check } = await added('0.4.0');
    expect((await check()).exitCode).toBe(0);
  });

  it.each<[string, (b: Bed) => void, RegExp]>([
    ['interface missing', (b) => b.host.namespaces.get(NS)?.delete('net1'), /missing/],
    ['MTU changed', (b) => void (b.host.link(NS, 'net1')!.mtu = 1500), /MTU 1500, expected 1450/],
    ['MAC changed', (b) => void (b.host.link(NS, 'net1')!.mac = '02:de:ad:be:ef:00'), /MAC/],
    ['link down', (b) => void (b.host.link(NS, 'net1')!.up = false), /down/],
    ['address removed', (b) => void (b.host.link(NS, 'net1')!.addrs = []), /address 10.1.0.5\/24/],
    ['default route removed', (b) => void (b.host.link(NS, 'net1')!.routes = b.host.link(NS, 'net1')!.routes.filter((r) => r.dst !== 'default')), /route to 0.0.0.0\/0/],
    ['subnet route removed', (b) => void (b.host.link(NS, 'net1')!.routes = b.host.link(NS, 'net1')!.routes.filter((r) => r.dst !== '172.16.0.0/12')), /route to 172.16.0.0\/12/],
  ])('%s: code 120', async (_n, mutate, msg) => {
    const { b, check } = await added();
    mutate(b);
    const out = await check();
    expect(out.json?.code).toBe(120);
    expect(out.json?.msg).toMatch(msg);
  });

  it('a /32 route listed without prefix length by iproute2 counts as present', async () => {
    const { b, check } = await added();
    const l = b.host.link(NS, 'net1')!;
    l.routes = l.routes.map((r) => (r.dst === '10.9.9.9/32' ? { dst: '10.9.9.9' } : r));
    expect((await check()).exitCode).toBe(0);
  });

  it('without prevResult: code 7', async () => {
    const { b } = await added();
    expect((await b.run('CHECK')).json?.code).toBe(7);
  });

  it('no record of the attachment: code 120 (not 3, which would tell the runtime that DEL is not needed)', async () => {
    const { b, prevResult } = await added();
    const out = await b.run('CHECK', { containerId: 'nope', config: b.config({ prevResult }) });
    expect(out.json?.code).toBe(120);
    expect(out.json?.msg).toMatch(/DEL/);
  });

  it('the IPAM plugin gets the runtime CHECK config with prevResult, its CNI_PATH, and the rest of the environment', async () => {
    const { b, prevResult } = await added();
    const config = b.config({ prevResult });
    expect((await b.run('CHECK', { config, env: { CNI_PATH: `/nonexistent:${b.cniPath}`, HTTP_PROXY: 'http://proxy:3128' } })).exitCode).toBe(0);
    expect(JSON.parse(b.ipam.stdinOf('CHECK'))).toEqual(b.sent(config));
    expect(b.ipam.envOf('CHECK')).toMatchObject({ CNI_COMMAND: 'CHECK', CNI_PATH: `/nonexistent:${b.cniPath}`, HTTP_PROXY: 'http://proxy:3128', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'net1', CNI_NETNS: NS });
  });

  it("the IPAM plugin's stderr passes through", async () => {
    const { b, check } = await added();
    b.ipam.failNext('CHECK', '{"code":999,"msg":"Required prevResult missing"}');
    expect((await check()).json?.code).toBe(103);
    expect(b.stderr.join('')).toContain('fake ipam: CHECK failed');
  });

  it('a later plugin (tuning) changed the MTU and said so in the final result: passes', async () => {
    const { b, prevResult } = await added();
    b.host.link(NS, 'net1')!.mtu = 9000;
    const interfaces = (prevResult.interfaces as Array<Record<string, unknown>>).map((i) => ({ ...i, mtu: 9000 }));
    expect((await b.run('CHECK', { config: b.config({ prevResult: { ...prevResult, interfaces } }) })).exitCode).toBe(0);
  });

  it('a later plugin changed the MTU and the final result has no mtu (CNI < 1.1 results): passes', async () => {
    const { b, prevResult } = await added('1.0.0');
    b.host.link(NS, 'net1')!.mtu = 9000;
    expect((await b.run('CHECK', { config: b.config({ cniVersion: '1.0.0', prevResult }) })).exitCode).toBe(0);
  });

  it('a later plugin changed the MAC and updated the final result: passes', async () => {
    const { b, prevResult } = await added();
    b.host.link(NS, 'net1')!.mac = '02:aa:bb:cc:dd:ee';
    const interfaces = (prevResult.interfaces as Array<Record<string, unknown>>).map((i) => ({ ...i, mac: '02:aa:bb:cc:dd:ee' }));
    expect((await b.run('CHECK', { config: b.config({ prevResult: { ...prevResult, interfaces } }) })).exitCode).toBe(0);
  });

  it('a route a later plugin removed from the final result is not required', async () => {
    const { b, prevResult } = await added();
    const l = b.host.link(NS, 'net1')!;
    l.routes = l.routes.filter((r) => r.dst !== '172.16.0.0/12');
    const routes = (prevResult.routes as Array<{ dst: string }>).filter((r) => r.dst !== '172.16.0.0/12');
    expect((await b.run('CHECK', { config: b.config({ prevResult: { ...prevResult, routes } }) })).exitCode).toBe(0);
  });

  it('prevResult without our interface: code 120', async () => {
    const { b, prevResult } = await added();
    const other = { ...prevResult, interfaces: [{ name: 'eth0', sandbox: NS }] };
    expect((await b.run('CHECK', { config: b.config({ prevResult: other }) })).json?.code).toBe(120);
  });

  it('IPAM CHECK failing fails CHECK (code 103)', async () => {
    const { b, check } = await added();
    b.ipam.failNext('CHECK');
    expect((await check()).json?.code).toBe(103);
  });

  it('the DPU check failing fails CHECK with its code', async () => {
    const { b, check } = await added();
    b.dpu.failures.check = new CniError(120, 'DPU: VXLAN tunnel missing');
    const out = await check();
    expect(out.json).toMatchObject({ code: 120, msg: 'DPU: VXLAN tunnel missing' });
    expect(b.dpu.closed).toBe(b.dpuClientsMade);
  });

  it('CHECK with cniVersion 0.3.1 is code 1', async () => {
    const { b, prevResult } = await added();
    expect((await b.run('CHECK', { config: b.config({ cniVersion: '0.3.1', prevResult }) })).json?.code).toBe(1);
  });

  it('CHECK changes nothing', async () => {
    const { b, check } = await added();
    await check();
    expect(b.host.ipCalls().length).toBeGreaterThan(0);
    expect(b.host.ipCalls().every((c) => c.args[0] === '-j')).toBe(true);
  });
});
