import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { Server, utils } from 'ssh2';
import type { DpuConfig } from '../../src/config/schema';
import type { DpuClient, PlugRequest } from '../../src/dpu/api';
import { DaemonDpuClient } from '../../src/plugin/daemon-dpu-client';
import { fingerprint, REMOTE_COMMAND } from '../../src/dpu/ssh';
import { DpuConnection, MAX_BATCH, MAX_BATCH_BYTES, MAX_CHANNELS, RESERVED_CHANNELS, takeBatch } from '../../src/daemon/connection';
import { DaemonServer } from '../../src/daemon/server';
import { memoryLogger, silentLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

const dir = tmpDir('daemon-server-');
afterAll(removeTmpDirs);

function keygen(name: string): { priv: string; pub: string } {
  const priv = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', priv]);
  chmodSync(priv, 0o600);
  return { priv, pub: `${priv}.pub` };
}

const hostKey = keygen('dpu-host');
const userKey = keygen('client');
const hostKeyFingerprint = fingerprint(Buffer.from(readFileSync(hostKey.pub, 'utf8').split(' ')[1] as string, 'base64'));
const ovsConfig = JSON.stringify({ data: [[['map', [['hw-offload', 'true']]]]], headings: ['other_config'] });
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A fake DPU sshd: answers plug transactions like ovs-vsctl (UUIDs, other_config) and fails any naming pfbad. */
const commands: string[] = [];
let connections = 0;
const liveConnections = new Set<{ end(): void }>();
let seq = 0;
let dropped = 0;
let sshd: Server;
let port = 0;

const table = (headings: string[], data: unknown[][]) => JSON.stringify({ data, headings });

function answer(command: string): { out: string; err: string; code: number } {
  if (command.startsWith('ip -j addr show to ')) {
    const ports = { port: { 'pci/0000:03:00.0/1': { netdev: 'pf0vf0', flavour: 'pcivf', function: { hw_addr: '00:00:00:00:00:00', state: 'active' } } } };
    return { out: `[{"ifname":"br-phy","mtu":1500}]\n${command.includes('devlink -j port show') ? JSON.stringify(ports) : ''}`, err: '', code: 0 };
  }
  if (command.startsWith('devlink port function set ')) return { out: '', err: '', code: 0 };
  if (command.includes('name=pfbad')) return { out: '', err: 'ovs-vsctl: cannot create pfbad', code: 1 };
  const removals = command.split(' remove Bridge ').length - 1;
  if (removals > 0) {
    // Another container stays on the bridge: no bridge removal follows.
    const usage = [table(['_uuid', 'ports'], [[['uuid', uuid(900)], ['uuid', uuid(901)]]]), table(['_uuid'], []), table(['_uuid'], [])];
    return { out: Array.from({ length: removals }, () => usage.map((l) => `${l}\n`).join('')).join(''), err: '', code: 0 };
  }
  const plugs = command.split('--id=@p').length - 1;
  const lines: string[] = [];
  for (let k = 0; k < plugs; k++) lines.push(uuid(++seq), uuid(++seq), ovsConfig);
  // the tunnel reading after the plug: bridge, tunnel ports, tunnel interfaces per bridge
  const tunnelReads = command.split(' find Bridge name=').length - 1;
  for (let k = 0; k < tunnelReads; k++) lines.push(table(['_uuid', 'ports'], []), table(['_uuid', 'name', 'external_ids'], []), table(['name', 'options'], []));
  return { out: lines.map((l) => `${l}\n`).join(''), err: '', code: 0 };
}

beforeAll(async () => {
  const allowed = utils.parseKey(readFileSync(userKey.pub));
  if (allowed instanceof Error) throw allowed;
  sshd = new Server({ hostKeys: [readFileSync(hostKey.priv)] }, (conn) => {
    connections++;
    liveConnections.add(conn);
    conn.on('close', () => liveConnections.delete(conn));
    conn.on('authentication', (ctx) => (ctx.method === 'publickey' && ctx.key.data.equals(allowed.getPublicSSH()) ? ctx.accept() : ctx.reject(['publickey'])));
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        accept().once('exec', (acc, _rej, info) => {
          const stream = acc();
          const input: Buffer[] = [];
          stream.on('data', (d: Buffer) => input.push(d));
          stream.on('error', () => undefined);
          stream.once('end', () => {
            const command = info.command === REMOTE_COMMAND ? Buffer.concat(input).toString().replace(/\n$/, '') : `unexpected exec request: ${info.command}`;
            commands.push(command);
            if (command === 'drop-connection' && dropped++ === 0) return conn.end();
            // Never answers: a DPU whose ovn-controller is stopped (the client's deadline closes the channel).
            if (command === 'hang') return;
            if (command === 'flood') {
              const pump = () => {
                while (stream.writable && stream.write(Buffer.alloc(65536, 'x')));
                if (stream.writable) stream.once('drain', pump);
              };
              return pump();
            }
            const a = answer(command);
            // A little latency, so that requests arriving meanwhile queue up as on a real DPU.
            setTimeout(() => {
              stream.write(a.out);
              stream.stderr.write(a.err);
              stream.exit(a.code);
              stream.end();
            }, command === 'slow' ? 300 : command.includes('name=slowrep') ? 600 : 30);
          });
        });
      });
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => sshd.listen(0, '127.0.0.1', resolve));
  port = (sshd.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => sshd.close(r));
});

function dpuConf(socket: string, extra: Partial<DpuConfig> = {}): DpuConfig {
  return {
    host: '127.0.0.1', port, user: 'root', privateKeyFile: userKey.priv, hostKeyFingerprint, timeoutMs: 5000, bridgePrefix: 'br-vni', datapathType: 'netdev',
    representorTemplate: 'pf{pf}vf{vf}', localVtep: '192.0.2.1', remoteVteps: [], hwOffload: 'ignore', vfSettings: 'auto', daemonSocket: socket, controlPlane: 'static', ovn: { switchPrefix: 'vni', portSecurity: true, upTimeoutMs: 10000 }, ...extra,
  };
}

const noDirect = (): DpuClient => {
  throw new Error('the request went direct instead of through the daemon');
};
const plugReq = (rep: string): PlugRequest => ({ network: 'ovl', vni: 100, containerId: `c-${rep}`, ifname: 'eth0', netns: '/run/netns/x', representor: rep, mtu: 1450 });

async function withDaemon(name: string, body: (socket: string, records: Array<Record<string, unknown>>) => Promise<void>): Promise<void> {
  const socket = join(dir, name, 'dpu.sock');
  const m = memoryLogger();
  const server = new DaemonServer(socket, m.log);
  await server.listen();
  try {
    await body(socket, m.records);
  } finally {
    await server.close();
  }
}

describe('DaemonServer', () => {
  it('listens on a 0600 socket in a 0700 directory and removes it on close', async () => {
    const socket = join(dir, 'perm', 'dpu.sock');
    await withDaemon('perm', async () => {
      expect(statSync(join(dir, 'perm')).mode & 0o777).toBe(0o700);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
    });
    expect(() => statSync(socket)).toThrow();
  });

  it('refuses a socket directory that others can enter', async () => {
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    await expect(new DaemonServer(join(open, 'dpu.sock'), silentLogger()).listen()).rejects.toThrow(/mode 0700/);
  });

  it('refuses to start where another daemon is serving', async () => {
    await withDaemon('twice', async (socket) => {
      await expect(new DaemonServer(socket, silentLogger()).listen()).rejects.toThrow(/another dpu-overlay daemon/);
    });
  });

  it('keeps one connection, and plugs arriving while one is in flight go in one transaction', async () => {
    await withDaemon('batch', async (socket, records) => {
      const before = { connections, commands: commands.length };
      const clients = Array.from({ length: 6 }, () => new DaemonDpuClient(dpuConf(socket), silentLogger(), noDirect));
      const results = await Promise.all(clients.map((c, i) => c.plug(plugReq(`pf0vf${i}`))));
      expect(new Set(results.map((r) => r.portUuid)).size).toBe(6);
      const txns = records.filter((r) => r.msg === 'ovs-vsctl transaction');
      expect(txns.reduce((n, r) => n + Number(r.requests), 0)).toBe(6);
      expect(txns.length).toBeLessThan(6);
      expect(commands.length - before.commands).toBe(txns.length);
      expect(connections - before.connections).toBe(1);
      for (const c of clients) c.close();
    });
  });

  it('answers a DPU operation from another network namespace as internal: the plugin goes to the DPU directly', async () => {
    await withDaemon('netns', async (socket) => {
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = connect(socket);
        let got = '';
        sock.on('data', (d) => {
          got += String(d);
          const lines = got.split('\n');
          if (lines.length > 2) {
            sock.destroy();
            resolve(lines[1] as string);
          }
        });
        sock.on('error', reject);
        sock.write(JSON.stringify({ id: 7, op: 'status', dpu: dpuConf(socket), args: [], netns: '0:1' }) + '\n');
      });
      expect(JSON.parse(answer)).toMatchObject({ id: 7, ok: false, internal: true, error: { msg: expect.stringMatching(/another network namespace \(0:1\)/) } });
    });
  });

  it('carries facts (the uplink cached per localVtep) and VF function settings', async () => {
    await withDaemon('facts', async (socket) => {
      const c = new DaemonDpuClient(dpuConf(socket), silentLogger(), noDirect);
      const before = commands.length;
      const req = { representor: 'pf0vf0', pfIndex: 0, vfIndex: 0 };
      expect(await c.facts(req)).toEqual({ uplink: { dev: 'br-phy', mtu: 1500 } });
      expect(await c.facts(req)).toEqual({ uplink: { dev: 'br-phy', mtu: 1500 } });
      expect(commands.length - before).toBe(1);
      expect((await c.facts({ ...req, vfFunction: { rates: false } })).vfFunction).toEqual({ target: { path: 'devlink', handle: 'pci/0000:03:00.0/1' }, values: { mac: '00:00:00:00:00:00', linkState: 'enable' } });
      await c.setVfFunction({ path: 'devlink', handle: 'pci/0000:03:00.0/1' }, { mac: '02:aa:00:00:00:01' });
      expect(commands.slice(before)).toEqual([
        'ip -j addr show to 192.0.2.1',
        'ip -j addr show to 192.0.2.1 && devlink -j port show',
        'devlink port function set pci/0000:03:00.0/1 hw_addr 02:aa:00:00:00:01',
      ]);
      c.close();
    });
  });

  it('unplugs by port UUID arriving together also share a transaction', async () => {
    await withDaemon('unplug', async (socket, records) => {
      const clients = Array.from({ length: 6 }, () => new DaemonDpuClient(dpuConf(socket), silentLogger(), noDirect));
      await Promise.all(clients.map((c, i) => c.unplug({ ...plugReq(`pf0vf${i}`), portUuid: uuid(100 + i) })));
      const txns = records.filter((r) => r.msg === 'ovs-vsctl transaction' && r.op === 'unplug');
      expect(txns.reduce((n, r) => n + Number(r.requests), 0)).toBe(6);
      expect(txns.length).toBeLessThan(6);
      for (const c of clients) c.close();
    });
  });

  it('a failing batch is retried request by request: only the bad request fails, with its own code', async () => {
    await withDaemon('retry', async (socket, records) => {
      const mk = () => new DaemonDpuClient(dpuConf(socket), silentLogger(), noDirect);
      const first = mk();
      const inFlight = first.plug(plugReq('pf0vf0'));
      await new Promise((r) => setTimeout(r, 10));
      const queued = [mk().plug(plugReq('pf0vf1')), mk().plug(plugReq('pfbad')), mk().plug(plugReq('pf0vf2'))].map((p) => p.then(() => 'ok', (e: { code?: number }) => e.code));
      await inFlight;
      expect(await Promise.all(queued)).toEqual(['ok', 112, 'ok']);
      expect(records.some((r) => r.msg === 'batched transaction failed; retrying each request alone')).toBe(true);
    });
  });

  it('serves each DPU identity on its own connection: a wrong pin is code 111 and sends nothing', async () => {
    await withDaemon('identity', async (socket) => {
      const before = commands.length;
      const wrong = new DaemonDpuClient(dpuConf(socket, { hostKeyFingerprint: `SHA256:${'A'.repeat(43)}` }), silentLogger(), noDirect);
      await expect(wrong.plug(plugReq('pf0vf3'))).rejects.toMatchObject({ code: 111 });
      expect(commands.length).toBe(before);
      const right = new DaemonDpuClient(dpuConf(socket), silentLogger(), noDirect);
      await expect(right.plug(plugReq('pf0vf3'))).resolves.toMatchObject({ bridge: 'br-vni100' });
      wrong.close();
      right.close();
    });
  });

  it('several DPUs (a host with two cards): one connection each, and a transaction never mixes two DPUs', async () => {
    await withDaemon('multi', async (socket, records) => {
      const before = connections;
      // Two DPU identities (the fake sshd takes any user): each gets its own connection and its own queues.
      const dpus = [dpuConf(socket), dpuConf(socket, { user: 'dpu2' })];
      const clients = Array.from({ length: 8 }, (_, i) => new DaemonDpuClient(dpus[i % 2] as DpuConfig, silentLogger(), noDirect));
      const results = await Promise.all(clients.map((c, i) => c.plug(plugReq(`pf${i % 2}vf${i}`))));
      expect(new Set(results.map((r) => r.portUuid)).size).toBe(8);
      expect(connections - before).toBe(2);
      const txns = records.filter((r) => r.msg === 'ovs-vsctl transaction');
      const perDpu = (user: string) => txns.filter((r) => String(r.dpu).startsWith(`${user}@`)).reduce((n, r) => n + Number(r.requests), 0);
      expect([perDpu('root'), perDpu('dpu2')]).toEqual([4, 4]);
      expect(commands.slice(-txns.length).every((c) => !(c.includes('pf0vf') && c.includes('pf1vf')))).toBe(true);
      for (const c of clients) c.close();
    });
  });

  it('an invalid dpu object is code 7 from the daemon', async () => {
    await withDaemon('invalid', async (socket) => {
      const c = new DaemonDpuClient({ ...dpuConf(socket), localVtep: 'not-an-ip' }, silentLogger(), noDirect);
      await expect(c.status()).rejects.toMatchObject({ code: 7 });
      c.close();
    });
  });
});

describe('DpuConnection reconnects', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('keeps retrying with backoff while the DPU drops connections (code 11), and stops when closed', async () => {
    let accepted = 0;
    const flaky = createServer((sock) => {
      accepted++;
      sock.destroy();
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    const c = new DpuConnection(dpuConf('/unused', { port: (flaky.address() as AddressInfo).port }), silentLogger());
    c.keepWarm();
    await sleep(1000);
    expect(accepted).toBeGreaterThanOrEqual(2); // attempts at 0, 100, 300, 700 ms: backoff, not a busy loop
    expect(accepted).toBeLessThanOrEqual(7);
    c.close();
    const after = accepted;
    await sleep(1000);
    expect(accepted).toBe(after);
    await new Promise((r) => flaky.close(r));
  });

  it('does not retry in the background after a host key mismatch (an operator must act)', async () => {
    const before = connections;
    const c = new DpuConnection(dpuConf('/unused', { hostKeyFingerprint: `SHA256:${'B'.repeat(43)}` }), silentLogger());
    c.keepWarm();
    await sleep(800);
    expect(connections - before).toBe(1);
    c.close();
  });

  it('reopens the connection when the DPU side closes it', async () => {
    const m = memoryLogger();
    const c = new DpuConnection(dpuConf('/unused'), m.log);
    const before = connections;
    expect((await c.exec('true')).exitCode).toBe(0);
    for (const conn of liveConnections) conn.end();
    await sleep(500);
    expect(m.records.some((r) => r.msg === 'DPU connection dropped; reconnecting')).toBe(true);
    expect(connections - before).toBeGreaterThanOrEqual(2);
    expect((await c.exec('true')).exitCode).toBe(0);
    c.close();
  });
});

describe('DpuConnection shares one connection safely', () => {
  it('an oversized output fails only its own request (112); the others in flight finish on the same connection', async () => {
    const c = new DpuConnection(dpuConf('/unused'), silentLogger());
    expect((await c.exec('true')).exitCode).toBe(0);
    const before = connections;
    const [flood, ...others] = await Promise.allSettled([c.exec('flood'), c.exec('slow'), c.exec('slow'), c.exec('true')]);
    expect(flood).toMatchObject({ status: 'rejected', reason: { kind: 'output-too-large' } });
    expect(others.map((o) => o.status === 'fulfilled' && o.value.exitCode)).toEqual([0, 0, 0]);
    expect(connections).toBe(before);
    c.close();
  });

  it('the connection dying mid-command: every command in flight is repeated on a new connection', async () => {
    const m = memoryLogger();
    const c = new DpuConnection(dpuConf('/unused'), m.log);
    expect((await c.exec('true')).exitCode).toBe(0);
    dropped = 0;
    const before = connections;
    const results = await Promise.all([c.exec('slow'), c.exec('slow'), c.exec('drop-connection')]);
    expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    expect(connections).toBeGreaterThan(before);
    expect(m.records.some((r) => r.msg === 'DPU connection lost mid-command; repeating it on a new connection')).toBe(true);
    c.close();
  });
});

describe('DpuConnection: deadlines and channels per request', () => {
  it('each request keeps its own timeoutMs: a connection opened by a 100 ms config still runs a 5 s network\'s slow plug', async () => {
    const c = new DpuConnection(dpuConf('/unused', { timeoutMs: 100 }), silentLogger());
    const patient = dpuConf('/unused', { timeoutMs: 5000 });
    const hasty = dpuConf('/unused', { timeoutMs: 100 });
    await expect(c.plug(patient, plugReq('slowrep'))).resolves.toMatchObject({ bridge: 'br-vni100' });
    await expect(c.plug(hasty, plugReq('slowrep'))).rejects.toMatchObject({ kind: 'timeout' });
    c.close();
  });

  it('the first config\'s short deadline does not make the shared handshake fail for a patient request', async () => {
    const c = new DpuConnection(dpuConf('/unused', { timeoutMs: 100 }), silentLogger());
    await expect(c.clientFor(dpuConf('/unused', { timeoutMs: 5000 })).status()).resolves.toBeUndefined();
    c.close();
  });

  it('ADD steps stuck on the DPU leave channels for DEL, CHECK, STATUS and the recovery probe; an ADD step waits a bounded time', async () => {
    const c = new DpuConnection(dpuConf('/unused'), silentLogger());
    expect((await c.exec('true')).exitCode).toBe(0);
    const stuck = Array.from({ length: MAX_CHANNELS + 1 }, () => c.execWith('hang', 3000, 'bulk'));
    for (const s of stuck) s.catch(() => undefined);
    const t0 = Date.now();
    const [status, probe] = await Promise.all([c.execWith('true', 2000, 'priority'), c.exec('true')]);
    expect([status.exitCode, probe.exitCode]).toEqual([0, 0]);
    expect(Date.now() - t0).toBeLessThan(1500);
    await expect(c.execWith('true', 200, 'bulk')).rejects.toMatchObject({ kind: 'timeout', message: expect.stringMatching(new RegExp(`no SSH channel free within 200 ms \\(${MAX_CHANNELS - RESERVED_CHANNELS} of ${MAX_CHANNELS} busy`)) });
    const outcomes = await Promise.allSettled(stuck);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    c.close();
   }, 20000);
});

describe('takeBatch', () => {
  const KiB = 1024;
  it.each<[string, number[], number]>([
    ['small requests: up to MAX_BATCH', Array.from({ length: 100 }, () => 100), MAX_BATCH],
    ['stops before the batch would pass MAX_BATCH_BYTES', Array.from({ length: 10 }, () => 100 * KiB), Math.floor(MAX_BATCH_BYTES / (100 * KiB))],
    ['one request larger than MAX_BATCH_BYTES goes alone', [MAX_BATCH_BYTES * 2, 10, 10], 1],
    ['a large request after small ones waits for the next batch', [10, 10, MAX_BATCH_BYTES], 2],
    ['nothing queued', [], 0],
  ])('%s', (_name, sizes, n) => {
    const items = sizes.map((bytes, i) => ({ i, bytes }));
    expect(takeBatch(items, (x) => x.bytes).map((x) => x.i)).toEqual(sizes.slice(0, n).map((_, i) => i));
    expect(items).toHaveLength(sizes.length - n);
  });
});
