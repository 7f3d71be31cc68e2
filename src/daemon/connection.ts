import { statSync } from 'node:fs';
import type { DpuConfig } from '../config/schema';
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

/** sshd's default MaxSessions is 10: stay below it on one connection. */
export const MAX_CHANNELS = 8;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10000;
/** Requests per transaction; for plugs, guard/dpu-guard.sh accepts this many "ip link set" plus two commands per line. */
export const MAX_BATCH = 64;
/**
 * Command-line bytes per transaction: well inside the guard's 1 MiB input limit and the DPU's execve limit
 * (ARG_MAX, 2 MiB by default). A single request larger than this (1024 remoteVteps) still goes, alone.
 */
export const MAX_BATCH_BYTES = 512 * 1024;
const LOST_CHANNEL_ATTEMPTS = 3;
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
  one(client: OvsDpuClient, req: Q): Promise<R>;
  many(client: OvsDpuClient, reqs: Q[]): Promise<R[]>;
  /** About what the request adds to a batched command line. */
  bytes(s: OvsSettings, req: Q): number;
}

export type UnplugByUuid = UnplugRequest & { portUuid: string };
/** What a request says about the DPU: OVS settings and, for OVN mode, its control plane. */
export type ConnSettings = OvsSettings & Partial<Pick<DpuConfig, 'controlPlane' | 'ovn'>>;

const PLUG: Batchable<PlugRequest, PlugResult> = {
  op: 'plug', one: (c, r) => c.plug(r), many: (c, rs) => c.plugBatch(rs), bytes: (s, r) => commandLine(plugCommands(s, r).commands).length,
};
const UNPLUG: Batchable<UnplugByUuid, void> = {
  op: 'unplug', one: (c, r) => c.unplug(r), many: (c, rs) => c.unplugBatch(rs),
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
  private readonly waiting: Array<() => void> = [];
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
    // OVN mode's ADD waits for the port to come up on the DPU: its commands need longer than dpu.timeoutMs.
    this.ssh = new SshTransport(conf.controlPlane === 'ovn' ? { ...conf, timeoutMs: ovnExecTimeoutMs(conf) } : conf, () => this.dropped());
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

  private async channel(): Promise<() => void> {
    if (this.channels >= MAX_CHANNELS) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.channels++;
    return () => {
      this.channels--;
      this.waiting.shift()?.();
    };
  }

  async exec(command: string): Promise<ExecResult> {
    this.lastUsed = Date.now();
    const release = await this.channel();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.ssh.exec(command);
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

  client(s: OvsSettings): OvsDpuClient {
    return new OvsDpuClient(this, s, this.log, this.emptyBridges);
  }

  /** The client for the DPU's control plane: OVN mode's is not batched (one line per ADD already). */
  clientFor(s: ConnSettings): DpuClient {
    return s.controlPlane === 'ovn' && s.ovn ? this.ovnClient({ ...s, ovn: s.ovn }) : this.client(s);
  }

  private ovnClient(s: OvsSettings & Pick<DpuConfig, 'ovn'>): OvnDpuClient {
    return new OvnDpuClient(this, s, this.log, this.chassis);
  }

  /** ADD's facts, the uplink from the cache while it is fresh (an uplink not found is never cached). */
  async facts(s: ConnSettings, req: DpuFactsRequest): Promise<DpuFacts> {
    if (s.controlPlane === 'ovn' || s.localVtep === undefined) return this.clientFor(s).facts(req);
    const cached = this.uplinks.get(s.localVtep);
    if (!req.vfFunction && cached?.uplink && Date.now() - cached.at < UPLINK_CACHE_MS) return { uplink: cached.uplink };
    const facts = await this.client(s).facts(req);
    this.uplinks.set(s.localVtep, { uplink: facts.uplink, at: Date.now() });
    return facts;
  }

  plug(s: ConnSettings, req: PlugRequest): Promise<PlugResult> {
    // A plug that reclaims a port goes alone: its removal is one more command on the line (the guard's limit).
    return s.controlPlane === 'ovn' || req.reclaim ? this.clientFor(s).plug(req) : this.enqueue(PLUG, s, req);
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
    const client = this.client(s);
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
