import { statSync } from 'node:fs';
import { DEFAULTS, type DpuConfig } from '../config/schema';
import { DpuError } from '../dpu/errors';
import type { DpuFacts, DpuFactsRequest, PlugRequest, PlugResult, UnplugRequest } from '../dpu/api';
import type { Uplink } from '../dpu/vf-function';
import { OvsDpuClient } from '../dpu/ovs/client';
import { type ChassisCache, OvnDpuClient, ovnExecTimeoutMs } from '../dpu/ovn/client';
import type { DpuClient } from '../dpu/api';
import type { OvsSettings } from '../dpu/ovs/commands';
import { DpuChannelLost, type DpuTransport, type ExecResult, SshTransport } from '../dpu/ssh';
import { plugCommands, removePortsBatchCommands } from '../dpu/ovs/commands';
import { commandLine } from '../dpu/quote';
import type { Logger } from '../log';
import { EmptyBridgeRemover } from './empty-bridges';
import { isTransientDpuError } from '../plugin/dpu-errors';
import { LOST_CHANNEL_ATTEMPTS } from '../protocol/deadlines';

/** sshd's default MaxSessions is 10: stay below it on one connection. */
export const MAX_CHANNELS = 8;
/** Channels an ADD's steps never take: DEL, CHECK, STATUS, GC and the recovery probe always have these. */
export const RESERVED_CHANNELS = 2;

/** bulk: an ADD's steps (plug, facts, VF settings), which can wait long on a slow DPU; priority: everything else. */
export type ChannelKind = 'bulk' | 'priority';

interface Waiter {
  kind: ChannelKind;
  grant(): void;
  timer?: NodeJS.Timeout;
}
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10000;
/** Requests per transaction; for plugs, guard/dpu-guard.sh accepts this many "ip link set" plus two commands per line. */
export const MAX_BATCH = 64;
/**
 * Command-line bytes per transaction: well inside the guard's 1 MiB input limit and the DPU's execve limit
 * (ARG_MAX, 2 MiB by default). A single request larger than this (1024 remoteVteps) still goes, alone.
 */
export const MAX_BATCH_BYTES = 512 * 1024;
/** How long the uplink found for a localVtep is trusted: an ADD needing nothing else from the DPU then costs no round trip. */
export const UPLINK_CACHE_MS = 30000;

function fileStamp(path: string | undefined): string {
  if (!path) return '';
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/**
 * Everything that decides who the DPU is and who we are to it. Key and known_hosts files are stamped,
 * so an edited pin or key opens (and verifies) a new connection instead of reusing the old one.
 */
export function identityKey(d: DpuConfig): string {
  return JSON.stringify([d.host, d.port, d.user, d.privateKeyFile, fileStamp(d.privateKeyFile), d.knownHostsFile ?? '', fileStamp(d.knownHostsFile), d.hostKeyFingerprint ?? '']);
}

export function settingsKey(s: OvsSettings): string {
  return JSON.stringify([s.bridgePrefix, s.datapathType, s.localVtep, s.remoteVteps, s.hwOffload, s.timeoutMs]);
}

interface Queued<Q, R> {
  req: Q;
  resolve(r: R): void;
  reject(err: unknown): void;
}

interface Queue<Q, R> {
  busy: boolean;
  items: Array<Queued<Q, R>>;
}

/** A request kind the daemon can merge: alone, or many in one ovs-vsctl transaction that applies all or nothing. */
interface Batchable<Q, R> {
  op: string;
  channel: ChannelKind;
  one(client: OvsDpuClient, req: Q): Promise<R>;
  many(client: OvsDpuClient, reqs: Q[]): Promise<R[]>;
  /** About what the request adds to a batched command line. */
  bytes(s: OvsSettings, req: Q): number;
}

export type UnplugByUuid = UnplugRequest & { portUuid: string };
/** What a request says about the DPU: OVS settings and, for OVN mode, its control plane. */
export type ConnSettings = OvsSettings & Partial<Pick<DpuConfig, 'controlPlane' | 'ovn'>>;

const PLUG: Batchable<PlugRequest, PlugResult> = {
  op: 'plug', channel: 'bulk', one: (c, r) => c.plug(r), many: (c, rs) => c.plugBatch(rs), bytes: (s, r) => commandLine(plugCommands(s, r).commands).length,
};
const UNPLUG: Batchable<UnplugByUuid, void> = {
  op: 'unplug', channel: 'priority', one: (c, r) => c.unplug(r), many: (c, rs) => c.unplugBatch(rs),
  bytes: (s, r) => commandLine(removePortsBatchCommands(s, [{ bridge: s.bridgePrefix, vni: r.vni, port: { uuid: r.portUuid, name: r.representor, owner: r } }])).length,
};

/** The longest prefix of items within MAX_BATCH requests and MAX_BATCH_BYTES, and at least one. */
export function takeBatch<T>(items: T[], bytes: (item: T) => number): T[] {
  let total = 0;
  let n = 0;
  while (n < items.length && n < MAX_BATCH) {
    total += bytes(items[n] as T);
    if (n > 0 && total > MAX_BATCH_BYTES) break;
    n++;
  }
  return items.splice(0, n);
}

/**
 * One authenticated SSH connection to one DPU identity, kept open and re-opened with backoff when it drops.
 * Remote commands share it (at most MAX_CHANNELS at once). Plugs (and unplugs by port UUID) that queue up
 * while one is in flight go together in one ovs-vsctl transaction, retried one by one if it fails.
 */
export class DpuConnection implements DpuTransport {
  readonly target: string;
  readonly controlPlane: 'static' | 'ovn';
  lastUsed = Date.now();
  private readonly ssh: SshTransport;
  private channels = 0;
  private bulkChannels = 0;
  private readonly waiting: Waiter[] = [];
  private readonly defaultTimeoutMs: number;
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly queues = new Map<string, Queue<unknown, unknown>>();
  private readonly uplinks = new Map<string, { uplink: Uplink | undefined; at: number }>();
  private readonly chassis: ChassisCache = {};

  private readonly emptyBridges?: EmptyBridgeRemover;

  /** emptyBridgeGraceMs: how long an emptied VNI bridge stays before it is removed (0: by the DEL itself). */
  constructor(
    conf: DpuConfig,
    private readonly log: Logger,
    opts: { emptyBridgeGraceMs?: number } = {},
  ) {
    this.emptyBridges = EmptyBridgeRemover.sinkFor(opts.emptyBridgeGraceMs ?? 0, log);
    // Each request brings its own deadline (execWith); the handshake's is the longest a network may set by default,
    // so a network with a short timeoutMs cannot make the shared connection unable to open.
    this.defaultTimeoutMs = conf.timeoutMs;
    this.ssh = new SshTransport({ ...conf, timeoutMs: Math.max(conf.timeoutMs, DEFAULTS.dpu.timeoutMs) }, () => this.dropped());
    this.target = this.ssh.target;
    this.controlPlane = conf.controlPlane === 'ovn' ? 'ovn' : 'static';
  }

  get connected(): boolean {
    return this.ssh.connected;
  }

  /** Connects now and keeps retrying with backoff until it succeeds or the connection is closed. */
  keepWarm(): void {
    if (this.closed || this.reconnectTimer) return;
    this.ssh.ready().then(
      () => {
        this.backoffMs = MIN_BACKOFF_MS;
      },
      (err: Error) => {
        this.ssh.close();
        // Refused keys, pins and bad files need an operator; requests will report them. Only outages are retried.
        const transient = isTransientDpuError(err);
        this.log.warn({ dpu: this.target, err: err.message, retryInMs: transient ? this.backoffMs : undefined }, 'DPU connection failed');
        if (transient) this.retryLater();
      },
    );
  }

  private retryLater(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.keepWarm();
    }, this.backoffMs);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
  }

  private dropped(): void {
    this.log.warn({ dpu: this.target }, 'DPU connection dropped; reconnecting');
    this.retryLater();
  }

  /**
   * A channel for one request, waiting at most waitMs. Bulk requests (an ADD's plug, facts, VF settings) may hold
   * at most MAX_CHANNELS - RESERVED_CHANNELS: DEL, CHECK, STATUS, GC and the recovery probe always find one.
   */
  private channel(kind: ChannelKind, waitMs: number): Promise<() => void> {
    const release = () => {
      this.channels--;
      if (kind === 'bulk') this.bulkChannels--;
      this.grantWaiting();
    };
    if (this.canTake(kind)) {
      this.take(kind);
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        kind,
        grant: () => {
          clearTimeout(waiter.timer);
          this.take(kind);
          resolve(release);
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(new DpuError('timeout', `DPU ${this.target}: no SSH channel free within ${waitMs} ms (${this.channels} of ${MAX_CHANNELS} busy, ${this.bulkChannels} with ADD steps; is the DPU's OVS or ovn-controller slow?)`));
        }, waitMs),
      };
      this.waiting.push(waiter);
    });
  }

  private canTake(kind: ChannelKind): boolean {
    return this.channels < MAX_CHANNELS && (kind === 'priority' || this.bulkChannels < MAX_CHANNELS - RESERVED_CHANNELS);
  }

  private take(kind: ChannelKind): void {
    this.channels++;
    if (kind === 'bulk') this.bulkChannels++;
  }

  /** Hands freed channels to waiters in arrival order, skipping bulk waiters while only reserved channels are free. */
  private grantWaiting(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i] as Waiter;
      if (!this.canTake(w.kind)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      w.grant();
    }
  }

  /** The default exec: a priority request with the first config's deadline (tests and single-network callers). */
  exec(command: string): Promise<ExecResult> {
    return this.execWith(command, this.defaultTimeoutMs, 'priority');
  }

  /** One remote command with this request's own deadline: waits at most timeoutMs for a channel, then runs within timeoutMs. */
  async execWith(command: string, timeoutMs: number, kind: ChannelKind): Promise<ExecResult> {
    this.lastUsed = Date.now();
    const release = await this.channel(kind, timeoutMs);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.ssh.exec(command, timeoutMs);
        } catch (err) {
          // A failed command, an oversized output or one timeout ends only its own channel; the connection
          // stays for the others. Without a connection, keep trying in the background.
          if (!this.ssh.connected) this.retryLater();
          // Every DPU request is idempotent: one whose connection died under it is repeated on a fresh one.
          if (!(err instanceof DpuChannelLost) || attempt >= LOST_CHANNEL_ATTEMPTS || this.closed) throw err;
          this.log.warn({ dpu: this.target, attempt }, 'DPU connection lost mid-command; repeating it on a new connection');
        }
      }
    } finally {
      release();
    }
  }

  /** This connection seen with one request's deadline and channel class. */
  private transport(timeoutMs: number, kind: ChannelKind): DpuTransport {
    return { target: this.target, exec: (command) => this.execWith(command, timeoutMs, kind), close: () => undefined };
  }

  client(s: OvsSettings, kind: ChannelKind = 'priority'): OvsDpuClient {
    return new OvsDpuClient(this.transport(s.timeoutMs, kind), s, this.log, this.emptyBridges);
  }

  /** The client for the DPU's control plane: OVN mode's is not batched (one line per ADD already). */
  clientFor(s: ConnSettings, kind: ChannelKind = 'priority'): DpuClient {
    return s.controlPlane === 'ovn' && s.ovn ? this.ovnClient({ ...s, ovn: s.ovn }, kind) : this.client(s, kind);
  }

  private ovnClient(s: OvsSettings & Pick<DpuConfig, 'ovn'>, kind: ChannelKind): OvnDpuClient {
    // OVN mode's ADD waits for the port to come up on the DPU: its commands need longer than dpu.timeoutMs.
    return new OvnDpuClient(this.transport(ovnExecTimeoutMs({ timeoutMs: s.timeoutMs, ovn: s.ovn }), kind), s, this.log, this.chassis);
  }

  /** ADD's facts, the uplink from the cache while it is fresh (an uplink not found is never cached). */
  async facts(s: ConnSettings, req: DpuFactsRequest): Promise<DpuFacts> {
    if (s.controlPlane === 'ovn' || s.localVtep === undefined) return this.clientFor(s, 'bulk').facts(req);
    const cached = this.uplinks.get(s.localVtep);
    if (!req.vfFunction && cached?.uplink && Date.now() - cached.at < UPLINK_CACHE_MS) return { uplink: cached.uplink };
    const facts = await this.client(s, 'bulk').facts(req);
    this.uplinks.set(s.localVtep, { uplink: facts.uplink, at: Date.now() });
    return facts;
  }

  plug(s: ConnSettings, req: PlugRequest): Promise<PlugResult> {
    // A plug that reclaims a port goes alone: its removal is one more command on the line (the guard's limit).
    return s.controlPlane === 'ovn' || req.reclaim ? this.clientFor(s, 'bulk').plug(req) : this.enqueue(PLUG, s, req);
  }

  unplug(s: ConnSettings, req: UnplugByUuid): Promise<void> {
    return s.controlPlane === 'ovn' ? this.clientFor(s).unplug(req) : this.enqueue(UNPLUG, s, req);
  }

  /** Sends at once if nothing of this kind is in flight; otherwise waits for the next transaction. */
  private enqueue<Q, R>(kind: Batchable<Q, R>, s: OvsSettings, req: Q): Promise<R> {
    const key = `${kind.op} ${settingsKey(s)}`;
    let q = this.queues.get(key) as Queue<Q, R> | undefined;
    if (!q) this.queues.set(key, (q = { busy: false, items: [] }) as Queue<unknown, unknown>);
    const queue = q;
    return new Promise<R>((resolve, reject) => {
      queue.items.push({ req, resolve, reject });
      if (!queue.busy) {
        queue.busy = true;
        setImmediate(() => void this.flush(kind, s, queue));
      }
    });
  }

  private async flush<Q, R>(kind: Batchable<Q, R>, s: OvsSettings, q: Queue<Q, R>): Promise<void> {
    const batch = takeBatch(q.items, (item) => kind.bytes(s, item.req));
    const client = this.client(s, kind.channel);
    this.log.info({ dpu: this.target, op: kind.op, requests: batch.length }, 'ovs-vsctl transaction');
    if (batch.length === 1) {
      const [only] = batch as [Queued<Q, R>];
      await kind.one(client, only.req).then(only.resolve, only.reject);
    } else {
      try {
        const results = await kind.many(client, batch.map((b) => b.req));
        batch.forEach((b, k) => b.resolve(results[k] as R));
      } catch (err) {
        this.log.warn({ dpu: this.target, op: kind.op, requests: batch.length, err: (err as Error).message }, 'batched transaction failed; retrying each request alone');
        await Promise.all(batch.map((b) => kind.one(client, b.req).then(b.resolve, b.reject)));
      }
    }
    if (q.items.length > 0) await this.flush(kind, s, q);
    else q.busy = false;
  }

  /** Empty VNI bridges still in their grace period. */
  get emptyBridgesPending(): number {
    return this.emptyBridges?.size ?? 0;
  }

  /** Removes the empty VNI bridges still in their grace period now (at shutdown). */
  async flushEmptyBridges(): Promise<void> {
    await this.emptyBridges?.flush();
  }

  close(): void {
    this.emptyBridges?.cancel();
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.ssh.close();
  }
}
