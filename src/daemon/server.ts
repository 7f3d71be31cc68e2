import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { readNodeFile } from '../config/node-file';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors';
import { layerErrorToCni } from '../plugin/layer-errors';
import { formatIssues } from '../config/load';
import { DEFAULTS, type DpuConfig, DpuConfigSchema } from '../config/schema';
import { dpuTarget } from '../dpu/api';
import type { Logger } from '../log';
import { DpuConnection, identityKey } from './connection';
import { DpuRecovery, type RecoveryLink } from './recovery';
import { TunnelFollower } from './tunnel-follow';
import { ProcessRunner } from '../kernel/exec';
import type { CommandRunner } from '../util/command-runner';
import { CniExecutor } from './cni-exec';
import type { Deps } from '../plugin';
import { InProcessDpuClient, type ServeOp } from './in-process-dpu';
import { RequestLoggers } from './loggers';
import { HELLO, MAX_CNI_LINE_BYTES, netnsId, readLines } from '../protocol/framing';
import { type CniForwardRequest, type DaemonError, type DaemonOp, type DaemonRequest, type DaemonResponse, isDaemonOp, isNodeOp, type NodeOpResult, type OpArgs, type OpResult } from '../protocol/operations';
import { DaemonMetrics } from './metrics';
import { countAttachments, recordedAttachments } from './node-status';
import type { DpuStatusView, NodeStatus } from '../protocol/node-status';
import { VERSION } from '../version';

const IDLE_CLOSE_MS = 10 * 60 * 1000;

/** The socket's directory must be ours alone: created 0700, or refused if anyone else can enter it. */
function prepareSocketDir(socketPath: string): void {
  const dir = dirname(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new Error(`socket directory ${dir} must be a directory owned by uid ${uid} with mode 0700 (it is ${(st.mode & 0o777).toString(8)}, owner ${st.uid}); use a dedicated directory such as /run/dpu-overlay`);
  }
}

/** Removes a socket file left by a daemon that died; refuses if a daemon still answers there. */
function clearStaleSocket(socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      reject(new Error(`another dpu-overlay daemon is serving ${socketPath}`));
    });
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') unlinkSync(socketPath);
      resolve();
    });
  });
}

/** DPU and store errors go to the plugin as the CNI error plugin/ maps them to; anything else is the daemon's own failure. */
function errorOf(err: unknown): { error: DaemonError; internal: boolean } {
  const cni = layerErrorToCni(err);
  if (cni instanceof CniError) return { error: { code: cni.code, msg: cni.message, ...(cni.details ? { details: cni.details } : {}) }, internal: false };
  return { error: { code: ErrorCode.IoFailure, msg: `dpu-overlay daemon: ${err instanceof Error ? err.message : String(err)}` }, internal: true };
}


/**
 * How the daemon serves each operation: plugs and unplugs by UUID are batched per DPU connection, the rest go to
 * its client. STATUS is code 50 while recovery knows the DPU is down or is re-plugging its attachments.
 */
const SERVE: { [K in DaemonOp]: (conn: DpuConnection, dpu: DpuConfig, ...args: OpArgs<K>) => Promise<OpResult<K>> } = {
  plug: (conn, dpu, req) => conn.plug(dpu, req),
  unplug: (conn, dpu, req) => (req.portUuid ? conn.unplug(dpu, { ...req, portUuid: req.portUuid }) : conn.clientFor(dpu).unplug(req)),
  check: (conn, dpu, req) => conn.clientFor(dpu).check(req),
  gc: (conn, dpu, network, vni, keep) => conn.clientFor(dpu).gc(network, vni, keep ?? []),
  status: (conn, dpu) => conn.clientFor(dpu).status(),
  facts: (conn, dpu, req) => conn.facts(dpu, req),
  setVfFunction: (conn, dpu, target, values) => conn.clientFor(dpu).setVfFunction(target, values),
};

export interface DaemonServerOptions {
  /** stateDirs whose attachment records recovery watches; none: no recovery. */
  stateDirs?: readonly string[];
  pollMs?: number;
  /** The node file for forwarded commands whose environment names none (the daemon's --node-config). */
  nodeConfig?: string;
  /** How long an emptied VNI bridge stays before the daemon removes it; 0: the DEL removes it before answering. */
  emptyBridgeGraceMs?: number;
  /** For the CNI commands the daemon runs (tests substitute a fake host). */
  runner?: CommandRunner;
  /** The host link operations of the CNI commands the daemon runs (default: LinkOps, through `ip`). */
  links?: Deps['links'];
  /** Keep Prometheus series (served by metrics.ts's serveMetrics when --metrics-address is given). */
  metrics?: boolean;
  /** Recovery's hook for attachments whose container is gone: release them as GC would. */
  releaseGone?: boolean;
}

export class DaemonServer {
  private readonly connections = new Map<string, DpuConnection>();
  private server?: Server;
  private readonly clients = new Set<Socket>();
  private idleTimer?: NodeJS.Timeout;
  private readonly recovery?: DpuRecovery;
  private readonly cni: CniExecutor;
  private readonly loggers: RequestLoggers;

  private readonly netns: string;
  private readonly emptyBridgeGraceMs: number;
  private readonly stateDirs: readonly string[];
  readonly metrics?: DaemonMetrics;
  /** The last timed DPU operation of each DPU (by target), for status. */
  private readonly lastRoundTrip = new Map<string, { op: string; ms: number; at: string }>();
  private listening = false;

  constructor(
    readonly socketPath: string,
    private readonly log: Logger,
    opts: DaemonServerOptions = {},
  ) {
    this.emptyBridgeGraceMs = opts.emptyBridgeGraceMs ?? 0;
    this.stateDirs = opts.stateDirs ?? [];
    if (opts.metrics) {
      this.metrics = new DaemonMetrics({
        dpus: () => [...this.connections.values()].map((c) => ({ dpu: c.target, connected: c.connected })),
        attachments: () => countAttachments(recordedAttachments(this.stateDirs).attachments),
      });
    }
    if (opts.stateDirs?.length && opts.pollMs) {
      const follower = new TunnelFollower((dpu) => ({ reconcile: (s, targets) => this.connectionFor(dpu).client(s).reconcileTunnels(targets) }), log, opts.nodeConfig ?? DEFAULTS.nodeConfig);
      this.recovery = new DpuRecovery({
        stateDirs: opts.stateDirs, pollMs: opts.pollMs, linkFor: (dpu) => this.recoveryLink(dpu), follower,
        onReplugged: (target) => this.metrics?.replugged(target),
        ...(opts.releaseGone === false ? {} : { releaseGone: (att, stillGone) => this.cni.releaseGone(att, stillGone) }),
      }, log);
    }
    const serve = ((op, dpu, args) => this.dispatch(op, dpu, args)) as ServeOp;
    const loggers = new RequestLoggers();
    this.netns = netnsId();
    this.cni = new CniExecutor({
      socketPath,
      netns: this.netns,
      deps: {
        runner: opts.runner ?? new ProcessRunner(), dpuClient: (dpu) => new InProcessDpuClient(dpu, serve), logger: (conf, bindings) => loggers.forCommand(conf, bindings),
        observeSteps: (command, steps) => this.metrics?.cniSteps(command, steps),
        ...(opts.links ? { links: opts.links } : {}),
        ...(opts.nodeConfig ? { nodeConfig: opts.nodeConfig } : {}),
      },
      onCompleted: (command, code, seconds) => this.metrics?.cniRequest(command, code, seconds),
      configErrorLogger: (settings) => loggers.forConfigError(settings),
    });
    this.loggers = loggers;
  }

  private recoveryLink(dpu: DpuConfig): RecoveryLink {
    const conn = this.connectionFor(dpu);
    // The probe must fail fast on a DPU whose ovsdb is gone: ovs-vsctl waits its whole --timeout for the database.
    const probeSettings = { ...dpu, timeoutMs: Math.min(dpu.timeoutMs, 2000) };
    return {
      probe: () => this.timed(conn.target, 'probe', () => conn.client(probeSettings).probe()),
      plug: (s, req) => conn.plug(s, req),
      unplug: (s, req) => (req.portUuid ? conn.unplug(s, { ...req, portUuid: req.portUuid }) : conn.clientFor(s).unplug(req)),
      setVfFunction: (s, target, values) => conn.clientFor(s).setVfFunction(target, values),
    };
  }

  async listen(): Promise<void> {
    prepareSocketDir(this.socketPath);
    await clearStaleSocket(this.socketPath);
    const server = createServer((sock) => this.serve(sock));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, resolve);
      });
    } finally {
      process.umask(oldMask);
    }
    chmodSync(this.socketPath, 0o600);
    this.server = server;
    this.listening = true;
    this.idleTimer = setInterval(() => this.closeIdle(), 60000);
    this.idleTimer.unref();
    this.log.info({ socket: this.socketPath }, 'dpu-overlay daemon listening');
    this.recovery?.start();
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => undefined);
    const send = (res: unknown) => sock.writable && sock.write(JSON.stringify(res) + '\n');
    // Who we are, before reading anything: the plugin sends nothing to a socket that does not say this.
    send(HELLO);
    readLines(
      sock,
      (line) => {
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch {
          req = undefined;
        }
        const op = typeof req === 'object' && req !== null ? (req as { op?: unknown }).op : undefined;
        if (op === 'cni') this.cni.handle(req as Partial<CniForwardRequest>, send, () => sock.destroyed || !sock.writable);
        else if (isNodeOp(op)) send(this.answerNodeOp(req as { id?: unknown; op: keyof NodeOpResult }));
        else void this.answer(req).then(send);
      },
      () => sock.destroy(),
      MAX_CNI_LINE_BYTES,
    );
  }

  private connectionFor(dpu: DpuConfig): DpuConnection {
    const key = identityKey(dpu);
    let c = this.connections.get(key);
    if (!c) {
      c = new DpuConnection(dpu, this.log, { emptyBridgeGraceMs: this.emptyBridgeGraceMs });
      this.connections.set(key, c);
      this.log.info({ dpu: c.target, connections: this.connections.size }, 'new DPU identity');
      c.keepWarm();
    }
    return c;
  }

  private answerNodeOp(req: { id?: unknown; op: keyof NodeOpResult }): DaemonResponse {
    const id = typeof req.id === 'number' ? req.id : 0;
    const ops: { [K in keyof NodeOpResult]: () => NodeOpResult[K] } = { nodeStatus: () => this.nodeStatus() };
    try {
      return { id, ok: true, result: ops[req.op]() };
    } catch (err) {
      return { id, ok: false, error: { code: ErrorCode.IoFailure, msg: `dpu-overlay daemon: ${(err as Error).message}` }, internal: true };
    }
  }

  private async answer(message: unknown): Promise<DaemonResponse> {
    let id = 0;
    try {
      if (typeof message !== 'object' || message === null) throw new Error('malformed request');
      const req = message as Partial<DaemonRequest>;
      id = typeof req.id === 'number' ? req.id : 0;
      if (req.netns !== undefined && req.netns !== this.netns) throw new Error(`the plugin runs in another network namespace (${String(req.netns)}) than the daemon (${this.netns})`);
      const parsed = DpuConfigSchema.safeParse(req.dpu);
      if (!parsed.success) throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpu: ${formatIssues(parsed.error)}`);
      const result = await this.dispatch(req.op, parsed.data, Array.isArray(req.args) ? req.args : []);
      return { id, ok: true, result };
    } catch (err) {
      const { error, internal } = errorOf(err);
      if (internal) this.log.error({ err: error.msg }, 'daemon request failed');
      return internal ? { id, ok: false, error, internal } : { id, ok: false, error };
    }
  }

  private async dispatch(op: unknown, dpu: DpuConfig, args: unknown[]): Promise<unknown> {
    if (!isDaemonOp(op)) throw new Error(`unknown op ${String(op)}`);
    this.log.debug({ op, dpu: dpuTarget(dpu) }, 'request');
    if (op === 'status') {
      const problem = this.recovery?.problem(dpu);
      if (problem) throw new CniError(ErrorCode.PluginNotAvailable, problem);
    }
    const conn = this.connectionFor(dpu);
    const serve = SERVE[op] as (conn: DpuConnection, dpu: DpuConfig, ...args: unknown[]) => Promise<unknown>;
    return this.timed(conn.target, op, () => serve(conn, dpu, ...args));
  }

  /** Times one DPU operation for dpu_overlay_dpu_round_trip_seconds and status (failed ones too: they took that long). */
  private async timed<T>(target: string, op: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const ms = performance.now() - t0;
      this.metrics?.dpuRoundTrip(target, op, ms / 1000);
      this.lastRoundTrip.set(target, { op, ms, at: new Date().toISOString() });
    }
  }

  /** The daemon's view for `dpu-overlay status`: its DPU connections (with recovery's knowledge) and the records. */
  nodeStatus(): NodeStatus {
    const watched = new Map((this.recovery?.views() ?? []).map((v) => [v.target, v]));
    const dpus: DpuStatusView[] = [];
    for (const c of this.connections.values()) {
      const w = watched.get(c.target);
      const rt = this.lastRoundTrip.get(c.target);
      dpus.push({
        dpu: c.target, connected: c.connected, controlPlane: c.controlPlane,
        ...(rt ? { lastRoundTrip: rt } : {}), ...(w?.bootId ? { bootId: w.bootId } : {}),
        ...(w?.down ? { down: w.down } : {}), ...(w?.recovering ? { recovering: w.recovering } : {}),
      });
    }
    return { source: 'daemon', version: VERSION, pid: process.pid, socket: this.socketPath, dpus, ...recordedAttachments(this.stateDirs) };
  }

  /** Why the daemon cannot serve (for /healthz), or undefined. */
  healthProblem(nodeFile: string | undefined): string | undefined {
    if (!this.listening) return `not listening on ${this.socketPath}`;
    try {
      if (!lstatSync(this.socketPath).isSocket()) return `${this.socketPath} is not a socket`;
    } catch {
      return `socket ${this.socketPath} is gone (removed by someone else); restart the daemon`;
    }
    if (!nodeFile) return undefined;
    try {
      if (!readNodeFile(nodeFile).values) return `node file ${nodeFile} is missing: every ADD on this node would fail with code 7; write it (see docs/kubernetes.md)`;
    } catch (err) {
      return `${(err as Error).message} (every ADD on this node would fail)`;
    }
    return undefined;
  }

  /** After SIGHUP: log files are opened again (logrotate moved them). */
  reopenLogs(): void {
    this.loggers.reopen();
  }

  private closeIdle(): void {
    for (const [key, c] of this.connections) {
      if (Date.now() - c.lastUsed > IDLE_CLOSE_MS && c.emptyBridgesPending === 0) {
        c.close();
        this.connections.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    this.listening = false;
    // No new connections; the commands running finish and answer their plugins, which are still waiting.
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.cni.drain();
    // after the polls still running: one of them could open a DPU connection that would keep the process alive
    await this.recovery?.stop();
    // A stopped daemon leaves no empty bridge behind: what is still in its grace period goes now.
    await Promise.all([...this.connections.values()].map((c) => c.flushEmptyBridges()));
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
    for (const sock of this.clients) sock.destroy();
    await closed;
    try {
      unlinkSync(this.socketPath);
    } catch {
      // already gone
    }
  }
}
