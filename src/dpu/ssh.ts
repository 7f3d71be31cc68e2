import { createHash, createHmac } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Client, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { CniError, ErrorCode } from '../cni/errors';
import type { DpuConfig } from '../config/schema';
import { elapsedMs } from '../util/time';
import { dpuTarget } from './client';

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

export type SshSettings = Pick<DpuConfig, 'host' | 'port' | 'user' | 'privateKeyFile' | 'knownHostsFile' | 'hostKeyFingerprint' | 'timeoutMs'>;

export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

interface KnownKey {
  type: string;
  blob: Buffer;
}

function hostPatterns(host: string, port: number): string[] {
  return port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
}

function matchesHost(field: string, candidates: string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return candidates.some((c) => createHmac('sha1', Buffer.from(salt, 'base64')).update(c).digest('base64') === hash);
  }
  return field.split(',').some((p) => candidates.includes(p));
}

/** Keys listed for host:port in an OpenSSH known_hosts file (plain or hashed names; keys @revoked for it excluded). */
export function knownKeysFor(content: string, host: string, port: number): KnownKey[] {
  const candidates = hostPatterns(host, port);
  const keys: KnownKey[] = [];
  const revoked: Buffer[] = [];
  for (const raw of content.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('@')) {
      // Like OpenSSH, a key marked @revoked for this host is refused even if listed elsewhere.
      const [marker, hosts, , b64] = line.split(/\s+/);
      if (marker === '@revoked' && hosts && b64 && matchesHost(hosts, candidates)) revoked.push(Buffer.from(b64, 'base64'));
      continue;
    }
    const [hosts, type, b64] = line.split(/\s+/);
    if (hosts && type && b64 && matchesHost(hosts, candidates)) keys.push({ type, blob: Buffer.from(b64, 'base64') });
  }
  return keys.filter((k) => !revoked.some((r) => r.equals(k.blob)));
}

function readPrivateKey(path: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpu.privateKeyFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpu.privateKeyFile: ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
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
      throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: dpu.knownHostsFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
    const keys = knownKeysFor(content, this.s.host, this.s.port);
    if (keys.length === 0) {
      throw new CniError(ErrorCode.DpuHostKeyMismatch, `no host key for ${this.s.host} (port ${this.s.port}) in ${file}; add it, e.g. ssh-keyscan -t ed25519 ${this.s.host} >> ${file}`);
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
        reject(new CniError(ErrorCode.TryAgainLater, `DPU ${this.target}: the connection was closed before it was opened`));
        return;
      }
      const client = new Client();
      this.pending = client;
      client.once('ready', () => {
        this.client = client;
        this.connectMs = elapsedMs(t0);
        client.once('close', () => {
          if (this.client !== client) return;
          this.client = undefined;
          this.pending = undefined;
          this.connecting = undefined;
          this.onDrop?.();
        });
        resolve(client);
      });
      // on, not once: ssh2 can emit a second error (e.g. "Connection lost before handshake" after a timeout).
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        client.end();
        reject(this.connectError(err, offered, expected.describe, expected.verify));
      });
      client.connect(config);
    }));
    this.connecting = attempt;
    return attempt;
  }

  /** Resolves once authenticated (host key verified); rejects with the CniError exec would report. */
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

  private connectError(err: Error & { level?: string; code?: string }, offered: Buffer | undefined, describe: string, verify: (b: Buffer) => boolean): CniError {
    if (offered && !verify(offered)) {
      return new CniError(ErrorCode.DpuHostKeyMismatch, `DPU ${this.target} presented host key ${fingerprint(offered)}, which does not match ${describe}; nothing was sent. If the DPU was reinstalled, update the pinned key.`);
    }
    if (err.level === 'client-authentication') {
      return new CniError(ErrorCode.DpuAuthFailure, `DPU ${this.target} refused key ${this.s.privateKeyFile} for user ${this.s.user}; add its public key to the DPU's authorized_keys`);
    }
    if (err.level === 'client-timeout' || /timed out/i.test(err.message)) {
      return new CniError(ErrorCode.TryAgainLater, `DPU ${this.target} did not complete the SSH handshake within ${this.s.timeoutMs} ms`);
    }
    return new CniError(ErrorCode.TryAgainLater, `cannot reach DPU ${this.target}: ${err.message} (is the DPU up and its sshd running?)`);
  }

  async exec(command: string): Promise<ExecResult> {
    const deadline = Date.now() + this.s.timeoutMs;
    const client = await this.withTimeout(this.connect(), this.s.timeoutMs, 'connecting');
    const remaining = Math.max(1, deadline - Date.now());
    return this.withTimeout(
      new Promise<ExecResult>((resolve, reject) => {
        client.exec(command, (err, stream) => {
          if (err) return reject(new CniError(ErrorCode.TryAgainLater, `DPU ${this.target}: cannot start remote command: ${err.message}`));
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let exitCode = -1;
          stream.on('data', (d: Buffer) => out.push(d));
          stream.stderr.on('data', (d: Buffer) => errOut.push(d));
          stream.on('exit', (code: number | null) => {
            exitCode = code ?? -1;
          });
          stream.on('close', () => resolve({ exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') }));
        });
      }),
      remaining,
      'running a command',
    );
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close();
        reject(new CniError(ErrorCode.TryAgainLater, `DPU ${this.target} timed out after ${ms} ms while ${what} (dpu.timeoutMs)`));
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
