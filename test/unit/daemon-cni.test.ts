import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../../src/cni/errors';
import type { PluginHandlers } from '../../src/cni/skel';
import type { CniResult } from '../../src/cni/types';
import { CniExecutor } from '../../src/daemon/cni-exec';
import { daemonSocketOf, exchange, forward } from '../../src/daemon/forward';
import { HELLO, netnsId, readLines } from '../../src/protocol/framing';
import type { CniForwardResponse } from '../../src/protocol/operations';
import type { Deps } from '../../src/plugin';
import type { NetConf } from '../../src/config/load';
import type { Attachment } from '../../src/store/attachments';
import { recordedConfig } from '../../src/store/records';
import { FAULT_ENV, faultPoint } from '../../src/util/fault';
import { requestScope } from '../../src/util/request-scope';
import { Bed } from './helpers/bed';
import { createNetns } from './helpers/netns';
import { silentLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const SOCKET = '/run/test-dpu-overlay/dpu.sock';
const NETNS = netnsId();

function env(command: string, containerId = 'c1', ifname = 'net1'): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_IFNAME: ifname, CNI_NETNS: '/proc/self/ns/net', CNI_PATH: '/opt/cni/bin' };
}

const CONFIG = JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 1, dpu: { host: 'h', daemonSocket: SOCKET } });

/** Handlers that admit with a config naming socket, then wait for release(containerId). */
function gatedHandlers(socket = SOCKET) {
  const log: string[] = [];
  const gates = new Map<string, () => void>();
  const release = (key: string) => gates.get(key)?.();
  const waitFor = async (key: string) => {
    for (let i = 0; i < 100 && !gates.has(key); i++) await new Promise((r) => setTimeout(r, 5));
  };
  const make = (deps: Deps): PluginHandlers => {
    const body = (name: string) => async (req: { env: { containerId: string } }) => {
      deps.admit?.({ dpu: { daemonSocket: socket } } as unknown as NetConf);
      const key = `${name}:${req.env.containerId}`;
      log.push(`start ${key}`);
      await new Promise<void>((r) => gates.set(key, r));
      log.push(`end ${key}`);
    };
    return {
      add: async (req) => {
        await body('ADD')(req);
        return { cniVersion: '1.1.0', interfaces: [], ips: [] } as unknown as CniResult;
      },
      del: body('DEL'), check: body('CHECK'), gc: body('GC'), status: body('STATUS'),
    };
  };
  return { log, release, waitFor, make };
}

function executor(handlers?: (deps: Deps) => PluginHandlers): CniExecutor {
  return new CniExecutor({ socketPath: SOCKET, netns: NETNS, deps: { runner: { run: async () => ({ exitCode: 0, stdout: '', stderr: '' }), hostNetdevs: () => new Set<string>() }, dpuClient: () => { throw new Error('no DPU'); }, logger: () => silentLogger() }, handlers });
}

function collect(): { answers: CniForwardResponse[]; send(r: CniForwardResponse): void; final(): Promise<CniForwardResponse> } {
  const answers: CniForwardResponse[] = [];
  let wake = () => undefined as void;
  return {
    answers,
    send(r) {
      answers.push(r);
      wake();
    },
    async final() {
      while (!answers.some((a) => 'ok' in a || 'refused' in a)) await new Promise<void>((r) => (wake = r));
      return answers.find((a) => 'ok' in a || 'refused' in a) as CniForwardResponse;
    },
  };
}

describe('daemon: whole CNI commands', () => {
  it('refuses a command whose node file is another file for the daemon than for the plugin (it runs standalone)', async () => {
    const dir = tmpDir('node-id-');
    const file = join(dir, 'node.json');
    writeFileSync(file, '{}', { mode: 0o644 });
    const ex = executor();
    const other = collect();
    ex.handle({ id: 3, op: 'cni', env: { ...env('STATUS'), DPU_OVERLAY_NODE_CONFIG: file }, stdin: CONFIG, netns: NETNS, nodeFile: '1:2' }, other.send, () => false);
    expect(await other.final()).toEqual({ id: 3, refused: expect.stringMatching(/the node file .*node\.json is not the same file for the daemon as for the plugin/) });
    const none = collect();
    ex.handle({ id: 4, op: 'cni', env: env('STATUS'), stdin: CONFIG, netns: NETNS, nodeFile: netnsId(file) }, none.send, () => false);
    expect(await none.final()).toEqual({ id: 4, refused: expect.stringMatching(/\/etc\/cni\/dpu-overlay\/node\.json is not the same file/) });
    const same = collect();
    ex.handle({ id: 5, op: 'cni', env: { ...env('STATUS'), DPU_OVERLAY_NODE_CONFIG: file }, stdin: CONFIG, netns: NETNS, nodeFile: netnsId(file) }, same.send, () => false);
    expect(await same.final()).not.toMatchObject({ refused: expect.stringMatching(/node file/) });
  });

  it('runs ADD through the plugin skeleton and handlers: accepted, then the same result as standalone', async () => {
    const ns = await createNetns();
    const bed = new Bed([ns.path]);
    const config = bed.config({ dpu: { ...(bed.config().dpu as object), daemonSocket: SOCKET } });
    const ex = new CniExecutor({ socketPath: SOCKET, netns: NETNS, deps: { runner: bed.host, dpuClient: () => bed.dpu, logger: () => silentLogger() } });
    const c = collect();
    const split = bed.split(config);
    ex.handle({ id: 7, op: 'cni', env: { ...env('ADD'), CNI_NETNS: ns.path, CNI_PATH: bed.cniPath, ...split.env }, stdin: JSON.stringify(split.network), netns: NETNS }, c.send, () => false);
    const res = await c.final();
    expect(c.answers[0]).toEqual({ id: 7, accepted: true, boundMs: expect.any(Number) });
    expect(res).toMatchObject({ id: 7, ok: true, stderr: "", exitCode: 0 });
    const result = JSON.parse((res as { stdout: string }).stdout) as { interfaces: Array<{ name: string }> };
    expect(result.interfaces.map((i) => i.name)).toContain('net1');
    expect(bed.dpu.ports.size).toBe(1);
    const standalone = await bed.run('ADD', { containerId: 'c2', ifname: 'net2', netns: ns.path, config });
    expect(Object.keys(standalone.json ?? {}).sort()).toEqual(Object.keys(result).sort());
    ns.close();
  });

  it('serialises ADD/DEL/CHECK of one attachment, in arrival order; other attachments run concurrently', async () => {
    const g = gatedHandlers();
    const ex = executor(g.make);
    const a1 = collect();
    const a2 = collect();
    const b = collect();
    ex.handle({ id: 1, op: 'cni', env: env('ADD', 'c1'), stdin: CONFIG, netns: NETNS }, a1.send, () => false);
    ex.handle({ id: 2, op: 'cni', env: env('DEL', 'c1'), stdin: CONFIG, netns: NETNS }, a2.send, () => false);
    ex.handle({ id: 3, op: 'cni', env: env('ADD', 'c2'), stdin: CONFIG, netns: NETNS }, b.send, () => false);
    await g.waitFor('ADD:c1');
    await g.waitFor('ADD:c2');
    expect(g.log).toEqual(['start ADD:c1', 'start ADD:c2']);
    expect(a2.answers).toEqual([]); // the DEL waits, not even accepted
    g.release('ADD:c2');
    expect(await b.final()).toMatchObject({ id: 3, ok: true, exitCode: 0 });
    g.release('ADD:c1');
    expect(await a1.final()).toMatchObject({ id: 1, ok: true, exitCode: 0 });
    await g.waitFor('DEL:c1');
    expect(a2.answers).toEqual([{ id: 2, accepted: true, boundMs: expect.any(Number) }]);
    g.release('DEL:c1');
    expect(await a2.final()).toMatchObject({ id: 2, ok: true, exitCode: 0, stdout: '' });
    expect(g.log).toEqual(['start ADD:c1', 'start ADD:c2', 'end ADD:c2', 'end ADD:c1', 'start DEL:c1', 'end DEL:c1']);
  });

  it('an ADD or CHECK arriving while an ADD of the attachment runs is run at once (standalone answers it 11); a DEL waits', async () => {
    const g = gatedHandlers();
    const ex = executor(g.make);
    const add = collect();
    const check = collect();
    const del = collect();
    ex.handle({ id: 1, op: 'cni', env: env('ADD', 'c1'), stdin: CONFIG, netns: NETNS }, add.send, () => false);
    await g.waitFor('ADD:c1');
    ex.handle({ id: 2, op: 'cni', env: env('DEL', 'c1'), stdin: CONFIG, netns: NETNS }, del.send, () => false);
    ex.handle({ id: 3, op: 'cni', env: env('CHECK', 'c1'), stdin: CONFIG, netns: NETNS }, check.send, () => false);
    await g.waitFor('CHECK:c1');
    expect(g.log).toEqual(['start ADD:c1', 'start CHECK:c1']);
    g.release('CHECK:c1');
    expect(await check.final()).toMatchObject({ id: 3, ok: true });
    expect(del.answers).toEqual([]);
    g.release('ADD:c1');
    await g.waitFor('DEL:c1');
    g.release('DEL:c1');
    await Promise.all([add.final(), del.final()]);
    expect(g.log).toEqual(['start ADD:c1', 'start CHECK:c1', 'end CHECK:c1', 'end ADD:c1', 'start DEL:c1', 'end DEL:c1']);
  });

  it('does not serialise GC and STATUS', async () => {
    const g = gatedHandlers();
    const ex = executor(g.make);
    const add = collect();
    const gc = collect();
    ex.handle({ id: 1, op: 'cni', env: env('ADD', 'c1'), stdin: CONFIG, netns: NETNS }, add.send, () => false);
    ex.handle({ id: 2, op: 'cni', env: env('GC', 'c1'), stdin: CONFIG, netns: NETNS }, gc.send, () => false);
    await g.waitFor('GC:c1');
    await g.waitFor('ADD:c1');
    expect(g.log.sort()).toEqual(['start ADD:c1', 'start GC:c1']);
    g.release('GC:c1');
    g.release('ADD:c1');
    await Promise.all([add.final(), gc.final()]);
  });

  it.each([
    ['another network namespace', { netns: '1:2' }, /another network namespace/],
    ['a CNI_NETNS that is another file for the daemon', { env: { ...env('ADD'), CNI_NETNS: '/proc/self/ns/net' }, cniNetns: '1:2' }, /not the same file for the daemon/],
    ['a CNI_NETNS the daemon cannot see', { env: { ...env('ADD'), CNI_NETNS: '/nonexistent/netns' }, cniNetns: '1:2' }, /not the same file for the daemon/],
    ['VERSION', { env: env('VERSION') }, /not run by the daemon/],
    ['a malformed request', { env: { CNI_COMMAND: 1 } as unknown as Record<string, string> }, /malformed/],
  ])('refuses %s', async (_name, over, why) => {
    const c = collect();
    executor(gatedHandlers().make).handle({ id: 4, op: 'cni', env: env('ADD'), stdin: CONFIG, netns: NETNS, ...over }, c.send, () => false);
    const res = await c.final();
    expect(res).toEqual({ id: 4, refused: expect.stringMatching(why) });
    expect(c.answers).toHaveLength(1);
  });

  it.each([
    ['another socket', '/run/other/dpu.sock', /names daemon socket \/run\/other\/dpu.sock/],
    ['""', '', /standalone/],
  ])('refuses a config whose daemonSocket is %s, before accepting', async (_name, socket, why) => {
    const c = collect();
    executor(gatedHandlers(socket).make).handle({ id: 5, op: 'cni', env: env('ADD'), stdin: CONFIG, netns: NETNS }, c.send, () => false);
    expect(await c.final()).toEqual({ id: 5, refused: expect.stringMatching(why) });
    expect(c.answers).toHaveLength(1);
  });

  it('answers a config error like the standalone plugin (no refusal)', async () => {
    const c = collect();
    executor().handle({ id: 6, op: 'cni', env: env('ADD'), stdin: '{"cniVersion":"1.1.0","name":"n"}', netns: NETNS }, c.send, () => false);
    const res = (await c.final()) as { ok: true; exitCode: number; stdout: string };
    expect(res.exitCode).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ code: 7 });
  });

  it('skips a command whose plugin hung up while it waited, and refuses new ones while draining', async () => {
    const g = gatedHandlers();
    const ex = executor(g.make);
    const first = collect();
    const second = collect();
    let gone = false;
    ex.handle({ id: 1, op: 'cni', env: env('ADD', 'c1'), stdin: CONFIG, netns: NETNS }, first.send, () => false);
    ex.handle({ id: 2, op: 'cni', env: env('DEL', 'c1'), stdin: CONFIG, netns: NETNS }, second.send, () => gone);
    await g.waitFor('ADD:c1');
    gone = true;
    const drained = ex.drain();
    const late = collect();
    ex.handle({ id: 3, op: 'cni', env: env('ADD', 'c9'), stdin: CONFIG, netns: NETNS }, late.send, () => false);
    expect(await late.final()).toEqual({ id: 3, refused: 'the daemon is shutting down' });
    g.release('ADD:c1');
    await drained;
    expect(second.answers).toEqual([]);
    expect(g.log).toEqual(['start ADD:c1', 'end ADD:c1']);
  });

  it('reads fault points from the request environment, not the daemon\'s', () => {
    delete process.env[FAULT_ENV];
    const hits: string[] = [];
    requestScope.run({ env: { [FAULT_ENV]: 'add:vf-moved' }, stderr: () => undefined }, () => {
      faultPoint('add:recorded', () => hits.push('add:recorded'));
      faultPoint('add:vf-moved', () => hits.push('add:vf-moved'));
    });
    faultPoint('add:vf-moved', () => hits.push('outside'));
    expect(hits).toEqual(['add:vf-moved']);
  });
});

describe('forwarder', () => {
  const dir = tmpDir('fwd-');
  const socket = join(dir, 'run', 'dpu.sock');
  mkdirSync(join(dir, 'run'), { mode: 0o700 });
  let server: Server | undefined;
  const uid = process.getuid?.() ?? 0;
  const conf = () => JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 1 });
  let nodeFiles = 0;
  /** The environment naming a node file (root's, as the runtime would) whose dpu.daemonSocket is s; undefined: a node file without dpu. */
  const nodeEnv = (node: unknown): Record<string, string> => {
    const path = join(dir, `node-${nodeFiles++}.json`);
    writeFileSync(path, typeof node === 'string' ? node : JSON.stringify(node), { mode: 0o644 });
    return { DPU_OVERLAY_NODE_CONFIG: path };
  };
  const sockEnv = (command: string, s: unknown = socket) => ({ ...env(command), ...nodeEnv({ dpu: { daemonSocket: s } }) });

  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** A fake daemon saying hello (unless told otherwise) and answering each request with script(request, socket). */
  async function fakeDaemon(script: (req: Record<string, unknown>, sock: Socket) => void, hello: string | null = JSON.stringify(HELLO)): Promise<void> {
    server = createServer((sock) => {
      if (hello !== null) sock.write(hello + '\n');
      readLines(sock, (l) => script(JSON.parse(l) as Record<string, unknown>, sock), () => sock.destroy(), 64 * 1024 * 1024);
    });
    await new Promise<void>((r) => server?.listen(socket, r));
    chmodSync(socket, 0o600);
  }

  it('finds the socket in the node file\'s dpu, dpus, or the default; "" and junk mean standalone', () => {
    expect(daemonSocketOf(nodeEnv({ dpu: { daemonSocket: '/a/b.sock' } }))).toBe('/a/b.sock');
    expect(daemonSocketOf(nodeEnv({ dpus: { p0: { daemonSocket: '/c/d.sock' } } }))).toBe('/c/d.sock');
    expect(daemonSocketOf(nodeEnv({ dpu: {} }))).toBe('/run/dpu-overlay/dpu.sock');
    expect(daemonSocketOf({ DPU_OVERLAY_NODE_CONFIG: join(dir, 'absent.json') })).toBe('/run/dpu-overlay/dpu.sock');
    expect(daemonSocketOf(nodeEnv({ dpu: { daemonSocket: '' } }))).toEqual({ standalone: expect.any(String) });
    expect(daemonSocketOf(nodeEnv({ dpu: { daemonSocket: 7 } }))).toEqual({ standalone: expect.any(String) });
    expect(daemonSocketOf(nodeEnv({ dpu: { daemonSocket: 'rel/x' } }))).toEqual({ standalone: expect.any(String) });
    expect(daemonSocketOf(nodeEnv('not json'))).toEqual({ standalone: expect.any(String) });
    expect(daemonSocketOf(nodeEnv('['.repeat(100)))).toEqual({ standalone: expect.any(String) });
    expect(daemonSocketOf({ DPU_OVERLAY_NODE_CONFIG: 'relative.json' })).toEqual({ standalone: expect.any(String) });
  });

  it('passes the daemon\'s answer through, with env, stdin and netns sent', async () => {
    let seen: Record<string, unknown> = {};
    await fakeDaemon((req, sock) => {
      seen = req;
      sock.write(JSON.stringify({ id: req.id, accepted: true, boundMs: 1000 }) + '\n');
      sock.write(JSON.stringify({ id: req.id, ok: true, exitCode: 0, stdout: '{"cniVersion":"1.1.0"}\n', stderr: 'warn\n' }) + '\n');
    });
    const out = await forward({ ...sockEnv('ADD'), X: 'y' }, Promise.resolve(conf()), uid);
    expect(out).toEqual({ exitCode: 0, stdout: '{"cniVersion":"1.1.0"}\n', stderr: 'warn\n' });
    expect(seen).toMatchObject({ op: 'cni', stdin: conf(), netns: NETNS, cniNetns: NETNS, env: { CNI_COMMAND: 'ADD', X: 'y' } });
  });

  it.each([
    ['refused', (req: Record<string, unknown>, sock: Socket) => sock.write(JSON.stringify({ id: req.id, refused: 'no' }) + '\n'), /refused: no/],
    ['closed before accepted', (_req: Record<string, unknown>, sock: Socket) => sock.destroy(), /closed/],
    // The daemon died (its connection closed): nothing acts on the command any more.
    ['closed after accepted', (req: Record<string, unknown>, sock: Socket) => sock.end(JSON.stringify({ id: req.id, accepted: true, boundMs: 1000 }) + '\n'), /closed/],
  ])('runs standalone when the daemon %s', async (_name, script, why) => {
    await fakeDaemon(script);
    expect(await forward(sockEnv('DEL'), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(why) });
  });

  it('a silent socket gets nothing and the command runs standalone within the connect timeout', async () => {
    const received: string[] = [];
    await fakeDaemon((req) => received.push(String(req.op)), null);
    const t0 = Date.now();
    expect(await forward(sockEnv('ADD'), Promise.resolve(conf()), uid)).toEqual({ standalone: 'no hello from the daemon within 10000 ms' });
    expect(Date.now() - t0).toBeLessThan(12000);
    expect(received).toEqual([]);
  }, 20000);

  it.each([
    ['another server', '{"jsonrpc":"2.0"}', /did not identify itself as a dpu-overlay daemon/],
    ['not JSON', 'SSH-2.0-OpenSSH_9.2', /did not identify itself/],
    ['another protocol version', JSON.stringify({ ...HELLO, protocol: 99 }), /speaks protocol 99, this plugin 1/],
  ])('a socket answering with %s gets nothing: standalone', async (_name, hello, why) => {
    const received: string[] = [];
    await fakeDaemon((req) => received.push(String(req.op)), hello);
    expect(await forward(sockEnv('ADD'), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(why) });
    expect(received).toEqual([]);
  });

  it('once the daemon accepted, the plugin never runs the command itself: past the daemon\'s bound it answers 11', async () => {
    await fakeDaemon((req, sock) => sock.write(JSON.stringify({ id: req.id, accepted: true, boundMs: 200 }) + '\n'));
    const t0 = Date.now();
    const out = await forward(sockEnv('ADD'), Promise.resolve(JSON.stringify({ cniVersion: '1.0.0' })), uid);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(out).toMatchObject({ exitCode: 1 });
    expect(JSON.parse((out as { stdout: string }).stdout)).toEqual({ cniVersion: '1.0.0', code: 11, msg: expect.stringMatching(/accepted the command but did not answer within its bound \(200 ms\); it may still be running it: try again/), details: '' });
  });

  it('a daemon that says hello but neither accepts nor refuses: 11 at the accept deadline, never standalone', async () => {
    await fakeDaemon(() => undefined);
    const line = JSON.stringify({ id: 1, op: 'cni', env: env('ADD'), stdin: conf(), netns: NETNS }) + '\n';
    const out = await exchange(socket, line, { acceptDeadlineMs: 300 }, conf());
    expect(JSON.parse((out as { stdout: string }).stdout)).toMatchObject({ code: 11, msg: expect.stringMatching(/neither accepted nor refused the command within 300 ms/) });
  });

  it('a socket group- or world-accessible, or in a directory others can enter, is not trusted', async () => {
    await fakeDaemon(() => undefined);
    chmodSync(socket, 0o666);
    expect(await forward(sockEnv('ADD'), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(/is accessible by group or others \(mode 666/) });
    chmodSync(socket, 0o600);
    chmodSync(join(dir, 'run'), 0o755);
    try {
      expect(await forward(sockEnv('ADD'), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(/is not private \(mode 755/) });
    } finally {
      chmodSync(join(dir, 'run'), 0o700);
    }
  });

  it('runs standalone with no socket, a refused connection, an untrusted directory, unreadable stdin, or VERSION', async () => {
    expect(await forward(sockEnv('ADD'), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(/does not exist/) });
    const stale = join(dir, 'run', 'stale.sock');
    const s = createServer();
    await new Promise<void>((r) => s.listen(stale, r));
    s.close(); // the file stays behind with nobody listening? Node unlinks it: recreate a stale one by hand
    expect(await forward(sockEnv('ADD', stale), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.any(String) });
    const open = join(dir, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    writeFileSync(join(open, 'x'), '');
    expect(await forward(sockEnv('ADD', join(open, 'x')), Promise.resolve(conf()), uid)).toEqual({ standalone: expect.stringMatching(/not a socket/) });
    expect(await forward(sockEnv('ADD'), Promise.reject(new Error('big')), uid)).toEqual({ standalone: 'stdin unreadable' });
    expect(await forward(sockEnv('VERSION'), Promise.resolve(conf()), uid)).toEqual({ standalone: 'command not forwarded' });
  });

  it('never takes the socket from the network config: one naming a socket there is forwarded to the node file\'s', async () => {
    let seen: Record<string, unknown> | undefined;
    await fakeDaemon((req, sock) => {
      seen = req;
      sock.write(JSON.stringify({ id: req.id, refused: 'test' }) + '\n');
    });
    const elsewhere = JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 1, dpu: { daemonSocket: '/elsewhere/x.sock' } });
    expect(await forward(sockEnv('ADD'), Promise.resolve(elsewhere), uid)).toEqual({ standalone: 'refused: test' });
    expect(seen).toMatchObject({ op: 'cni' });
  });
});

describe('DaemonServer with the forwarder over its socket', () => {
  it('runs a forwarded command (here: a config error, as standalone gives it) and still serves DPU ops on the same socket', async () => {
    const { DaemonServer } = await import('../../src/daemon/server');
    const dir = tmpDir('daemon-sock-');
    const socket = join(dir, 'run', 'dpu.sock');
    const server = new DaemonServer(socket, silentLogger(), { runner: { run: async () => ({ exitCode: 0, stdout: '', stderr: '' }), hostNetdevs: () => new Set<string>() } });
    await server.listen();
    try {
      const node = (s: string) => {
        const path = join(dir, `node-${s.length}.json`);
        writeFileSync(path, JSON.stringify({ dpu: { daemonSocket: s } }), { mode: 0o644 });
        return { DPU_OVERLAY_NODE_CONFIG: path };
      };
      const bad = JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 0 });
      const out = await forward({ ...env('ADD'), ...node(socket) }, Promise.resolve(bad), process.getuid?.() ?? 0);
      expect(out).toMatchObject({ exitCode: 1, stderr: '' });
      expect(JSON.parse((out as { stdout: string }).stdout)).toMatchObject({ code: 7, msg: expect.stringMatching(/vni/) });
      expect(await forward({ ...env('ADD'), ...node('/elsewhere/x.sock') }, Promise.resolve(JSON.stringify({ cniVersion: '1.1.0', name: 'n', vni: 1 })), process.getuid?.() ?? 0)).toEqual({ standalone: expect.stringMatching(/does not exist/) });
    } finally {
      await server.close();
    }
  });
});

describe('CniExecutor.releaseGone', () => {
  it('runs the plugin\'s DEL for the record (its config, no netns), queued with the attachment\'s other commands; a failure rejects and does not block the queue', async () => {
    const seen: Array<{ command: string; netns: string; config: string; path: string[] }> = [];
    let fail = true;
    const ex = executor(() => {
      const del = async (req: Parameters<PluginHandlers['del']>[0]) => {
        seen.push({ command: req.env.command, netns: req.env.netns, config: req.rawConfig, path: req.env.path });
        if (fail) throw new CniError(ErrorCode.TryAgainLater, 'busy');
      };
      return { add: async () => undefined, del, check: async () => undefined, gc: async () => undefined, status: async () => undefined } as unknown as PluginHandlers;
    });
    // the record keeps only the IPAM keys of ADD's config: DEL gets the network config back with the record's VNI
    // and its network-owned DPU setting, which loadNetConf requires (vni) or reads (hwOffload)
    const ipam = { type: 'host-local', subnet: '10.1.0.0/24' };
    const rawConfig = recordedConfig(JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'dpu-overlay', vni: 42, mtu: 1400, dpu: { hwOffload: 'require' }, ipam }));
    const dpu = { target: 'root@192.0.2.2:22', bridge: 'br-vni42', representor: 'pf0vf0', config: { host: '192.0.2.2', hwOffload: 'require' } } as unknown as Attachment['dpu'];
    const att = { containerId: 'gone', ifname: 'net1', rawConfig, vni: 42, dpu, cniPath: ['/opt/cni/bin'] };
    await expect(ex.releaseGone(att)).rejects.toThrow(/DEL failed: .*busy/);
    fail = false;
    await expect(ex.releaseGone(att)).resolves.toBeUndefined();
    const config = { cniVersion: '1.1.0', name: 'n', type: 'dpu-overlay', ipam, vni: 42, dpu: { hwOffload: 'require' } };
    expect(seen.map((s) => ({ ...s, config: JSON.parse(s.config) as unknown }))).toEqual([
      { command: 'DEL', netns: '', config, path: ['/opt/cni/bin'] },
      { command: 'DEL', netns: '', config, path: ['/opt/cni/bin'] },
    ]);
    await ex.drain();
  });

  it('asks stillGone when its turn comes and runs no DEL when the attachment is live again', async () => {
    const seen: string[] = [];
    const ex = executor(() => ({ add: async () => undefined, del: async (req: Parameters<PluginHandlers['del']>[0]) => void seen.push(req.env.containerId), check: async () => undefined, gc: async () => undefined, status: async () => undefined }) as unknown as PluginHandlers);
    const att = { containerId: 'c1', ifname: 'net1', rawConfig: JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'dpu-overlay' }), vni: 1, cniPath: ['/opt/cni/bin'] };
    let asked = 0;
    await expect(ex.releaseGone(att, () => (asked++, false))).resolves.toBeUndefined();
    expect(asked).toBe(1);
    expect(seen).toEqual([]);
    await expect(ex.releaseGone(att, () => true)).resolves.toBeUndefined();
    expect(seen).toEqual(['c1']);
    await ex.drain();
  });
});
