import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { DpuError } from './errors';
import type { DpuConfig } from '../config/schema';
import { elapsedMs } from '../util/time';
import { dpuTarget } from './api';
import { knownKeysFor, KnownHostsLineError } from './known-hosts';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** One authenticated channel to the DPU; unit tests record instead. */
export interface DpuTransport {
  readonly target: string;
  exec(command: string): Promise<ExecResult>;
  /** Starts connecting now, so the handshake overlaps other work; exec reports any failure. */
  warm?(): void;
  /** How long the last connection took to open and authenticate, once it has. */
  readonly connectMs?: number;
  close(): void;
}

/** What the plugin asks sshd to run; the command line follows on stdin (guard/dpu-guard.sh reads it from there). */
export const REMOTE_COMMAND = 'sh -s';

/** stdout plus stderr of one remote command; more than this is a misbehaving DPU, not ovs-vsctl output. */
export const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/** The channel closed without an exit status: the connection (or sshd) went away mid-command. Safe to repeat. */
export class DpuChannelLost extends DpuError {
  constructor(target: string) {
    super('channel-lost', `DPU ${target}: the SSH channel closed before the command reported an exit status (connection lost?)`);
  }
}

/** Exit status and output of a remote command, aborting the channel once output passes MAX_OUTPUT_BYTES. */
export function collectOutput(stream: ClientChannel, target: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let bytes = 0;
    let exitCode: number | undefined;
    let overflow = false;
    const take = (into: Buffer[]) => (d: Buffer) => {
      if (overflow) return;
      bytes += d.length;
      if (bytes > MAX_OUTPUT_BYTES) {
        overflow = true;
        out.length = 0;
        errOut.length = 0;
        stream.close();
        reject(new DpuError('output-too-large', `DPU ${target}: the remote command wrote more than ${MAX_OUTPUT_BYTES} bytes (stdout and stderr); aborted. ovs-vsctl never prints this much: check what runs on the DPU for this key`));
        return;
      }
      into.push(d);
    };
    stream.on('data', take(out));
    stream.stderr.on('data', take(errOut));
    stream.on('exit', (code: number | null) => {
      exitCode = code ?? -1;
    });
    stream.on('close', () => {
      if (overflow) return;
      if (exitCode === undefined) reject(new DpuChannelLost(target));
      else resolve({ exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
    });
  });
}

export type SshSettings = Pick<DpuConfig, 'host' | 'port' | 'user' | 'privateKeyFile' | 'knownHostsFile' | 'hostKeyFingerprint' | 'timeoutMs'>;

export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

function readPrivateKey(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new DpuError('bad-config', `invalid network config: dpu.privateKeyFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new DpuError('bad-config', `invalid network config: dpu.privateKeyFile: ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  }
  return readFileSync(path);
}

const PREFERRED_HOST_KEYS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'];

/** The SSH transport: key authentication only, host key pinned before anything is sent. */
export class SshTransport implements DpuTransport {
  readonly target: string;
  private client?: Client;
  private pending?: Client;
  private connecting?: Promise<Client>;
  connectMs?: number;

  /** onDrop: the authenticated connection closed; the next exec reconnects. */
  constructor(
    private readonly s: SshSettings,
    private readonly onDrop?: () => void,
  ) {
    this.target = dpuTarget(s);
  }

  private expectedKeys(): { verify: (blob: Buffer) => boolean; types: string[]; describe: string } {
    if (this.s.hostKeyFingerprint) {
      const want = this.s.hostKeyFingerprint.replace(/=+$/, '');
      return { verify: (blob) => fingerprint(blob) === want, types: PREFERRED_HOST_KEYS, describe: `hostKeyFingerprint ${want}` };
    }
    const file = this.s.knownHostsFile as string;
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (err) {
      throw new DpuError('bad-config', `invalid network config: dpu.knownHostsFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
    let keys;
    try {
      keys = knownKeysFor(content, this.s.host, this.s.port);
    } catch (err) {
      if (!(err instanceof KnownHostsLineError)) throw err;
      throw new DpuError('host-key', `${file}: ${err.message}; nothing was sent to ${this.s.host}. Fix or remove that line (see sshd(8) SSH_KNOWN_HOSTS FILE FORMAT)`);
    }
    if (keys.length === 0) {
      throw new DpuError('host-key', `no host key for ${this.s.host} (port ${this.s.port}) in ${file}; add it, e.g. ssh-keyscan -t ed25519 ${this.s.host} >> ${file}`);
    }
    const known = keys.map((k) => k.type);
    const types = [...PREFERRED_HOST_KEYS.filter((t) => known.includes(t) || (t.startsWith('rsa-') && known.includes('ssh-rsa'))), ...PREFERRED_HOST_KEYS];
    return { verify: (blob) => keys.some((k) => k.blob.equals(blob)), types: [...new Set(types)], describe: file };
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const privateKey = readPrivateKey(this.s.privateKeyFile);
    const expected = this.expectedKeys();
    let offered: Buffer | undefined;
    const config: ConnectConfig = {
      host: this.s.host,
      port: this.s.port,
      username: this.s.user,
      privateKey,
      readyTimeout: this.s.timeoutMs,
      keepaliveInterval: 0,
      tryKeyboard: false,
      algorithms: {
        kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256'],
        serverHostKey: expected.types as ServerHostKeyAlgorithm[],
        cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr'],
      },
      hostVerifier: (key: Buffer) => {
        offered = key;
        return expected.verify(key);
      },
    };
    const t0 = performance.now();
    // ssh2 is loaded on first use: commands that never reach the DPU do not pay for it.
    const attempt: Promise<Client> = import('ssh2').then(({ Client }) => new Promise<Client>((resolve, reject) => {
      if (this.connecting !== attempt) {
        reject(new DpuError('unreachable', `DPU ${this.target}: the connection was closed before it was opened`));
        return;
      }
      const client = new Client();
      this.pending = client;
      client.once('ready', () => {
        this.client = client;
        this.connectMs = elapsedMs(t0);
        // 'end' comes first when the DPU closes: no new command may start on this client from then on.
        const drop = () => {
          if (this.client !== client) return;
          this.client = undefined;
          this.pending = undefined;
          this.connecting = undefined;
          this.onDrop?.();
        };
        client.once('end', drop);
        client.once('close', drop);
        resolve(client);
      });
      // on, not once: ssh2 can emit a second error (e.g. "Connection lost before handshake" after a timeout).
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        client.end();
        reject(this.connectError(err, offered, expected.describe, expected.verify));
      });
      // ssh2 leaves Nagle on: a small request would wait for the DPU's delayed ACK (40 ms) of the one before it.
      // Set as soon as TCP connects, before the SSH handshake's first packet.
      client.once('connect', () => client.setNoDelay(true));
      client.connect(config);
    }));
    this.connecting = attempt;
    return attempt;
  }

  /** Resolves once authenticated (host key verified); rejects with the DpuError exec would report. */
  async ready(): Promise<void> {
    await this.connect();
  }

  warm(): void {
    try {
      // The rejection is kept in this.connecting and reported by exec; only the unhandled-rejection warning is silenced.
      this.connect().catch(() => undefined);
    } catch {
      // Bad key or known_hosts file: exec throws the same error again.
    }
  }

  private connectError(err: Error & { level?: string; code?: string }, offered: Buffer | undefined, describe: string, verify: (b: Buffer) => boolean): DpuError {
    if (offered && !verify(offered)) {
      return new DpuError('host-key', `DPU ${this.target} presented host key ${fingerprint(offered)}, which does not match ${describe}; nothing was sent. If the DPU was reinstalled, update the pinned key.`);
    }
    if (err.level === 'client-authentication') {
      return new DpuError('auth', `DPU ${this.target} refused key ${this.s.privateKeyFile} for user ${this.s.user}; add its public key to the DPU's authorized_keys`);
    }
    if (err.level === 'client-timeout' || /timed out/i.test(err.message)) {
      return new DpuError('timeout', `DPU ${this.target} did not complete the SSH handshake within ${this.s.timeoutMs} ms`);
    }
    return new DpuError('unreachable', `cannot reach DPU ${this.target}: ${err.message} (is the DPU up and its sshd running?)`);
  }

  /** Whether an authenticated connection is open (a failed exec did not take it down). */
  get connected(): boolean {
    return this.client !== undefined;
  }

  /**
   * Runs the command line through REMOTE_COMMAND with the line on stdin: a line in the SSH exec request
   * itself is bounded by sshd's packet size and by the DPU's execve limit for one argument. timeoutMs: this
   * request's own deadline (the daemon's shared connection serves networks with different ones).
   */
  async exec(command: string, timeoutMs = this.s.timeoutMs): Promise<ExecResult> {
    const deadline = Date.now() + timeoutMs;
    const attempt = this.connect();
    // A request whose deadline is shorter than the handshake's own gives up waiting without abandoning the
    // handshake, which other requests on this connection still wait for.
    const ownsHandshake = timeoutMs >= this.s.timeoutMs;
    let client: Client;
    try {
      client = await this.withTimeout(attempt, timeoutMs, 'connecting', () => ownsHandshake && this.close());
    } catch (err) {
      // Reported now; the next exec tries a new connection instead of repeating this failure.
      if (this.connecting === attempt && (ownsHandshake || !(err instanceof DpuError && err.kind === 'timeout'))) this.close();
      throw err;
    }
    const remaining = Math.max(1, deadline - Date.now());
    let channel: ClientChannel | undefined;
    return this.withTimeout(
      new Promise<ExecResult>((resolve, reject) => {
        client.exec(REMOTE_COMMAND, (err, stream) => {
          if (err) return reject(new DpuError('unreachable', `DPU ${this.target}: cannot start remote command: ${err.message}`));
          channel = stream;
          collectOutput(stream, this.target).then(resolve, reject);
          stream.end(`${command}\n`);
        });
      }),
      remaining,
      'running a command',
      () => channel?.close(),
    );
  }

  /** On timeout, abort only what timed out: other commands may share the connection. */
  private withTimeout<T>(p: Promise<T>, ms: number, what: string, abort: () => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort();
        reject(new DpuError('timeout', `DPU ${this.target} timed out after ${ms} ms while ${what} (dpu.timeoutMs)`));
      }, ms);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.client?.end();
    // A handshake still in progress would otherwise keep the process alive until readyTimeout.
    if (this.pending && this.pending !== this.client) this.pending.destroy();
    this.client = undefined;
    this.pending = undefined;
    this.connecting = undefined;
  }
}
