import { statSync } from 'node:fs';
import { ErrorCode } from '../cni/errors';
import type { DpuConfig } from '../config/schema';
import type { PlugRequest, PlugResult } from '../dpu/client';
import { OvsDpuClient } from '../dpu/ovs-client';
import type { OvsSettings } from '../dpu/ovs';
import { type DpuTransport, type ExecResult, SshTransport } from '../dpu/ssh';
import type { Logger } from '../log';

/** sshd's default MaxSessions is 10: stay below it on one connection. */
export const MAX_CHANNELS = 8;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10000;
/** Plugs per transaction; scripts/dpu-guard.sh accepts up to this many plus two commands per line. */
export const MAX_BATCH = 64;

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

interface QueuedPlug {
  req: PlugRequest;
  resolve(r: PlugResult): void;
  reject(err: unknown): void;
}

/**
 * One authenticated SSH connection to one DPU identity, kept open and re-opened with backoff when it drops.
 * Remote commands share it (at most MAX_CHANNELS at once); plugs that queue up while one is in flight go
 * together in one ovs-vsctl transaction, retried one by one if that transaction fails.
 */
export class DpuConnection implements DpuTransport {
  readonly target: string;
  lastUsed = Date.now();
  private readonly ssh: SshTransport;
  private channels = 0;
  private readonly waiting: Array<() => void> = [];
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly plugQueues = new Map<string, { busy: boolean; queue: QueuedPlug[] }>();

  constructor(
    conf: DpuConfig,
    private readonly log: Logger,
  ) {
    this.ssh = new SshTransport(conf, () => this.dropped());
    this.target = this.ssh.target;
  }

  /** Connects now and keeps retrying with backoff until it succeeds or the connection is closed. */
  keepWarm(): void {
    if (this.closed || this.reconnectTimer) return;
    this.ssh.ready().then(
      () => {
        this.backoffMs = MIN_BACKOFF_MS;
      },
      (err: Error & { code?: number }) => {
        this.ssh.close();
        // Refused keys, pins and bad files need an operator; requests will report them. Only outages are retried.
        const transient = err.code === ErrorCode.TryAgainLater;
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
      return await this.ssh.exec(command);
    } catch (err) {
      // Transport failure (not a failed command): start over on a fresh connection.
      this.ssh.close();
      this.retryLater();
      throw err;
    } finally {
      release();
    }
  }

  client(s: OvsSettings): OvsDpuClient {
    return new OvsDpuClient(this, s, this.log);
  }

  /** Queues a plug; those that queue while another plug is in flight are sent as one transaction. */
  plug(s: OvsSettings, req: PlugRequest): Promise<PlugResult> {
    const key = settingsKey(s);
    let q = this.plugQueues.get(key);
    if (!q) this.plugQueues.set(key, (q = { busy: false, queue: [] }));
    const entry = q;
    return new Promise<PlugResult>((resolve, reject) => {
      entry.queue.push({ req, resolve, reject });
      if (!entry.busy) {
        entry.busy = true;
        setImmediate(() => void this.flush(s, entry));
      }
    });
  }

  private async flush(s: OvsSettings, q: { busy: boolean; queue: QueuedPlug[] }): Promise<void> {
    const batch = q.queue.splice(0, MAX_BATCH);
    const client = this.client(s);
    this.log.info({ dpu: this.target, op: 'plug', requests: batch.length }, 'ovs-vsctl transaction');
    if (batch.length === 1) {
      const [only] = batch as [QueuedPlug];
      await client.plug(only.req).then(only.resolve, only.reject);
    } else {
      try {
        const results = await client.plugBatch(batch.map((b) => b.req));
        batch.forEach((b, k) => b.resolve(results[k] as PlugResult));
      } catch (err) {
        this.log.warn({ dpu: this.target, requests: batch.length, err: (err as Error).message }, 'batched plug failed; retrying each request alone');
        await Promise.all(batch.map((b) => client.plug(b.req).then(b.resolve, b.reject)));
      }
    }
    if (q.queue.length > 0) await this.flush(s, q);
    else q.busy = false;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.ssh.close();
  }
}
