import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniError } from '../../src/cni/errors';
import type { DpuConfig } from '../../src/config/schema';
import type { DpuClient, PlugRequest } from '../../src/dpu/api';
import { DaemonDpuClient } from '../../src/plugin/daemon-dpu-client';
import { HELLO, netnsId } from '../../src/protocol/framing';
import type { DaemonRequest, DaemonResponse } from '../../src/protocol/operations';
import { FakeDpu } from './helpers/fake-dpu';
import { silentLogger } from './helpers/logger';

const PORT = '22222222-2222-4222-8222-222222222222';
const req: PlugRequest = { network: 'ovl', vni: 5001, containerId: 'c1', ifname: 'net1', netns: '/run/netns/a', representor: 'pf0vf0', mtu: 1450 };

let dir: string;
let server: Server | undefined;
const received: DaemonRequest[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dpuo-daemon-client-'));
  received.length = 0;
});

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function conf(): DpuConfig {
  return {
    host: '192.0.2.10', port: 22, user: 'root', privateKeyFile: '/k', knownHostsFile: '/kh', timeoutMs: 1000, bridgePrefix: 'br-vni', datapathType: 'system',
    representorTemplate: 'pf{pf}vf{vf}', localVtep: '192.0.2.1', remoteVteps: [], hwOffload: 'enable', vfSettings: 'auto', daemonSocket: join(dir, 'dpu.sock'), controlPlane: 'static', ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 },
  };
}

/** A daemon stand-in: answer(req, socket) returns the response, or undefined to say nothing. */
async function daemon(answer: (r: DaemonRequest, sock: Socket) => Omit<DaemonResponse, 'id'> | undefined): Promise<void> {
  const s = createServer((sock) => {
    sock.write(JSON.stringify(HELLO) + '\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const r = JSON.parse(buf.slice(0, nl)) as DaemonRequest;
        buf = buf.slice(nl + 1);
        received.push(r);
        const res = answer(r, sock);
        if (res) sock.write(JSON.stringify({ ...res, id: r.id }) + '\n');
      }
    });
  });
  await new Promise<void>((resolve) => s.listen(conf().daemonSocket, resolve));
  chmodSync(conf().daemonSocket, 0o600);
  server = s;
}

function subject(): { c: DaemonDpuClient; direct: FakeDpu; made: () => number } {
  const direct = new FakeDpu();
  let made = 0;
  const c = new DaemonDpuClient(conf(), silentLogger(), (): DpuClient => {
    made++;
    return direct;
  });
  return { c, direct, made: () => made };
}

describe('DaemonDpuClient', () => {
  it('sends the request with the full DPU config and returns the daemon\'s result; no direct client', async () => {
    await daemon(() => ({ ok: true, result: { bridge: 'br-vni5001', portUuid: PORT } }));
    const { c, made } = subject();
    expect(await c.plug(req)).toEqual({ bridge: 'br-vni5001', portUuid: PORT });
    expect(received).toEqual([{ id: 1, op: 'plug', dpu: conf(), args: [req], netns: netnsId() }]);
    expect(made()).toBe(0);
    c.close();
  });

  it('a CNI error from the daemon keeps its code, message and details; not repeated directly', async () => {
    await daemon(() => ({ ok: false, error: { code: 111, msg: 'DPU root@192.0.2.10:22 presented host key X', details: 'd' } }));
    const { c, made } = subject();
    const err = await c.plug(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 111, message: 'DPU root@192.0.2.10:22 presented host key X', details: 'd' });
    expect(made()).toBe(0);
    c.close();
  });

  it('no daemon at the socket: the direct client does the request', async () => {
    const { c, direct } = subject();
    expect(await c.plug(req)).toMatchObject({ bridge: 'br-vni5001' });
    expect(direct.callsOf('plug')).toEqual([req]);
    c.close();
    expect(direct.closed).toBe(1);
  });

  it('the daemon closing the connection before answering: repeated directly, and later requests go direct', async () => {
    await daemon((_r, sock) => {
      sock.destroy();
      return undefined;
    });
    const { c, direct } = subject();
    expect(await c.plug(req)).toMatchObject({ bridge: 'br-vni5001' });
    await c.unplug({ ...req, portUuid: PORT });
    expect(direct.calls.map((x) => x.method)).toEqual(['plug', 'unplug']);
    expect(received).toHaveLength(1);
    c.close();
  });

  it('an internal daemon failure is repeated directly', async () => {
    await daemon(() => ({ ok: false, error: { code: 5, msg: 'dpu-overlay daemon: boom' }, internal: true }));
    const { c, direct } = subject();
    await expect(c.status()).resolves.toBeUndefined();
    expect(direct.callsOf('status')).toHaveLength(1);
    c.close();
  });

  it('a daemon that never answers may still be acting: past its bound for the request (4 x timeoutMs + 2 s) the request fails 11-kind, never repeated directly', async () => {
    await daemon(() => undefined);
    const { c, made } = subject();
    const t0 = Date.now();
    await expect(c.gc('ovl', 5001, [])).rejects.toMatchObject({ kind: 'timeout', message: expect.stringMatching(/did not answer gc .* within 6000 ms; it may still be acting on it/) });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(5900);
    expect(made()).toBe(0);
    c.close();
  }, 15000);

  it('an OVN-mode request\'s bound covers the daemon\'s plug (3 x timeoutMs + upTimeoutMs per attempt): longer than the old 2 x timeoutMs + 1 s', () => {
    const { dpuRequestBoundMs } = jest.requireActual<typeof import('../../src/protocol/deadlines')>('../../src/protocol/deadlines');
    const ovn = { ...conf(), controlPlane: 'ovn' as const };
    expect(dpuRequestBoundMs(ovn)).toBe(4 * (3 * 1000 + 10000));
    expect(dpuRequestBoundMs(ovn)).toBeGreaterThan(2 * ovn.timeoutMs + 1000);
  });

  it('a socket that never says hello gets nothing: the request goes direct', async () => {
    const silent = createServer((sock) => sock.on('data', (d) => received.push(JSON.parse(String(d)) as DaemonRequest)));
    await new Promise<void>((resolve) => silent.listen(conf().daemonSocket, resolve));
    chmodSync(conf().daemonSocket, 0o600);
    server = silent;
    const { c, direct } = subject();
    await expect(c.status()).resolves.toBeUndefined();
    expect(received).toEqual([]);
    expect(direct.callsOf('status')).toHaveLength(1);
    c.close();
   }, 20000);
});

describe('DaemonDpuClient trusts only a root-owned socket in a private directory', () => {
  const answering = () => daemon(() => ({ ok: true, result: { bridge: 'br-vni5001', portUuid: PORT } }));

  it('a socket directory writable by others: the daemon is ignored and the request goes direct', async () => {
    await answering();
    chmodSync(dir, 0o777);
    const { c, direct, made } = subject();
    expect(await c.plug(req)).toMatchObject({ bridge: 'br-vni5001' });
    expect(received).toEqual([]);
    expect(made()).toBe(1);
    expect(direct.callsOf('plug')).toEqual([req]);
    c.close();
  });

  it('a socket owned by another uid than expected: ignored, direct', async () => {
    await answering();
    const direct = new FakeDpu();
    const c = new DaemonDpuClient(conf(), silentLogger(), () => direct, 4242);
    await c.plug(req);
    expect(received).toEqual([]);
    expect(direct.callsOf('plug')).toEqual([req]);
    c.close();
  });

  it('a regular file in place of the socket: ignored, direct', async () => {
    writeFileSync(conf().daemonSocket, '');
    const { c, direct } = subject();
    await c.plug(req);
    expect(direct.callsOf('plug')).toEqual([req]);
    c.close();
  });
});
