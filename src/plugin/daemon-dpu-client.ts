import { connect, type Socket } from 'node:net';
import { NO_SOCKET, untrustedSocketReason } from '../util/socket-trust';
import { CniError } from '../cni/errors';
import type { DpuConfig } from '../config/schema';
import { netnsId, readLinesAfterHello } from '../protocol/framing';
import type { DaemonOp, DaemonRequest, DaemonResponse, OpArgs, OpResult } from '../protocol/operations';
import { dpuRequestBoundMs } from '../protocol/deadlines';
import { DpuError } from '../dpu/errors';
import type { Logger } from '../log';
import { type DpuClient, type DpuFacts, type DpuFactsRequest, dpuTarget, type VfFunctionTarget, type VfFunctionValues, type PlugRequest, type PlugResult, type PortOwner, type UnplugRequest } from '../dpu/api';
import { assertUuid } from '../dpu/ovs/parse';
import { elapsedMs } from '../util/time';

/** Connecting and the daemon's hello (as the forwarder's in src/daemon/forward.ts). */
const HELLO_TIMEOUT_MS = 10300;
/** Past the daemon's bound for a request, the time its answer may take to arrive. */
const ANSWER_SLACK_MS = 2000;

/** The daemon is absent, refused, or went away before answering: the request goes direct instead. */
class DaemonUnavailable extends Error {}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * DpuClient through the dpu-overlay daemon's warm SSH connection, falling back to a direct client (same requests,
 * same errors) when the daemon is absent, does not identify itself, answers internal, or goes away before
 * answering: then nothing acts on the request any more and repeating it is safe. A daemon that stays silent past
 * its own bound for the request may still be acting on it: that request fails with 11 instead of being repeated.
 */
export class DaemonDpuClient implements DpuClient {
  readonly target: string;
  private socket?: Promise<Socket | undefined>;
  private directClient?: DpuClient;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;
  private socketMs?: number;
  private readonly netns = netnsId();

  constructor(
    private readonly conf: DpuConfig,
    private readonly log: Logger,
    private readonly makeDirect: () => DpuClient,
    private readonly expectedUid = process.getuid?.() ?? 0,
  ) {
    this.target = dpuTarget(conf);
  }

  private direct(): DpuClient {
    this.directClient ??= this.makeDirect();
    return this.directClient;
  }

  private open(): Promise<Socket | undefined> {
    this.socket ??= new Promise((resolve) => {
      const untrusted = untrustedSocketReason(this.conf.daemonSocket, this.expectedUid);
      if (untrusted) {
        if (untrusted !== NO_SOCKET) this.log.warn({ socket: this.conf.daemonSocket, problem: untrusted }, 'not trusting the dpu-overlay daemon socket; connecting to the DPU directly (fix: chown root: and chmod 700 its directory)');
        else this.log.debug({ socket: this.conf.daemonSocket }, 'no dpu-overlay daemon; connecting to the DPU directly');
        resolve(undefined);
        return;
      }
      const t0 = performance.now();
      const sock = connect(this.conf.daemonSocket);
      const giveUp = (why: string) => {
        clearTimeout(timer);
        this.log.debug({ socket: this.conf.daemonSocket, err: why }, 'no dpu-overlay daemon; connecting to the DPU directly');
        sock.destroy();
        resolve(undefined);
      };
      // Nothing is sent before the daemon's hello: a silent socket, or one that says anything else, gets nothing.
      const timer = setTimeout(() => giveUp(`no hello within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
      sock.once('error', (err: NodeJS.ErrnoException) => giveUp(err.code ?? err.message));
      readLinesAfterHello(
        sock,
        {
          onProblem: giveUp,
          onHello: () => {
            clearTimeout(timer);
            this.socketMs = elapsedMs(t0);
            sock.removeAllListeners('error');
            this.attach(sock);
            resolve(sock);
          },
          onLine: (line) => this.settle(line),
        },
        () => sock.destroy(),
      );
    });
    return this.socket;
  }

  private attach(sock: Socket): void {
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.socket = Promise.resolve(undefined);
      for (const p of this.pending.values()) p.reject(new DaemonUnavailable('the daemon closed the connection'));
      this.pending.clear();
    });
  }

  private settle(line: string): void {
    let res: DaemonResponse;
    try {
      res = JSON.parse(line) as DaemonResponse;
    } catch {
      return;
    }
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    if (res.ok) p.resolve(res.result);
    else if (res.internal) p.reject(new DaemonUnavailable(res.error.msg));
    else p.reject(new CniError(res.error.code, res.error.msg, res.error.details ?? ''));
  }

  private request<K extends DaemonOp>(sock: Socket, op: K, args: OpArgs<K>): Promise<unknown> {
    const id = ++this.seq;
    // The daemon answers within its own bound for this request; until then it may still be acting on it, so the
    // plugin must not repeat it directly: past the bound the request fails with 11 (try again), not a direct repeat.
    const limitMs = dpuRequestBoundMs(this.conf) + ANSWER_SLACK_MS;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DpuError('timeout', `the dpu-overlay daemon (${this.conf.daemonSocket}) did not answer ${op} for DPU ${this.target} within ${limitMs} ms; it may still be acting on it`));
      }, limitMs);
      const done = <T>(f: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        f(v);
      };
      this.pending.set(id, { resolve: done(resolve), reject: done(reject) });
      const req = { id, op, dpu: this.conf, args, netns: this.netns } as DaemonRequest;
      sock.write(JSON.stringify(req) + '\n');
    });
  }

  /** One operation through the daemon; repeated over a direct SSH connection when the daemon does not answer. */
  private async call<K extends DaemonOp>(op: K, args: OpArgs<K>, check: (v: unknown) => OpResult<K>): Promise<OpResult<K>> {
    const sock = await this.open();
    if (sock) {
      try {
        return check(await this.request(sock, op, args));
      } catch (err) {
        if (!(err instanceof DaemonUnavailable)) throw err;
        this.log.warn({ socket: this.conf.daemonSocket, op, err: err.message }, 'dpu-overlay daemon did not answer; repeating the request over a direct SSH connection');
        sock.destroy();
      }
    }
    const direct = this.direct();
    return (direct[op] as (...a: OpArgs<K>) => Promise<OpResult<K>>).apply(direct, args);
  }

  plug(req: PlugRequest): Promise<PlugResult> {
    return this.call('plug', [req], (v) => {
      const r = v as Partial<PlugResult> | undefined;
      if (typeof r?.bridge !== 'string') throw new DaemonUnavailable('malformed plug answer');
      const lsp = r.lsp && typeof r.lsp.name === 'string' ? { uuid: assertUuid(r.lsp.uuid, 'logical port'), name: r.lsp.name } : undefined;
      return { bridge: r.bridge, portUuid: assertUuid(r.portUuid, 'port'), ...(lsp ? { lsp } : {}) };
    });
  }

  unplug(req: UnplugRequest): Promise<void> {
    return this.call('unplug', [req], () => undefined);
  }

  check(req: PlugRequest): Promise<void> {
    return this.call('check', [req], () => undefined);
  }

  gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number> {
    return this.call('gc', [network, vni, keep], (v) => (typeof v === 'number' ? v : 0));
  }

  status(): Promise<void> {
    return this.call('status', [], () => undefined);
  }

  facts(req: DpuFactsRequest): Promise<DpuFacts> {
    return this.call('facts', [req], (v) => {
      if (typeof v !== 'object' || v === null) throw new DaemonUnavailable('malformed facts answer');
      return v as DpuFacts;
    });
  }

  setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    return this.call('setVfFunction', [target, values], () => undefined);
  }

  get connectMs(): number | undefined {
    return this.directClient ? this.directClient.connectMs : this.socketMs;
  }

  /** Opens the socket now; with no daemon there, starts the direct SSH handshake instead. */
  warm(): void {
    void this.open().then((sock) => {
      if (!sock && !this.closed) this.direct().warm?.();
    });
  }

  close(): void {
    this.closed = true;
    void this.socket?.then((s) => s?.destroy());
    this.directClient?.close();
  }
}
