import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Server, utils } from 'ssh2';
import { CniError } from '../../src/cni/errors';
import { fingerprint, knownKeysFor, type SshSettings, SshTransport } from '../../src/dpu/ssh';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

const dir = tmpDir('ssh-test-');
afterAll(removeTmpDirs);

/** An OpenSSH key pair made by ssh-keygen; returns paths and the public key line. */
function keygen(name: string, type: 'ed25519' | 'ecdsa' | 'rsa'): { priv: string; pub: string; line: string; blob: Buffer; keyType: string } {
  const priv = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', priv]);
  const line = readFileSync(`${priv}.pub`, 'utf8').trim();
  const [keyType, b64] = line.split(' ') as [string, string];
  return { priv, pub: `${priv}.pub`, line, blob: Buffer.from(b64, 'base64'), keyType };
}

/** What ssh-keygen -lf prints as the fingerprint of a public key file. */
function sshKeygenFingerprint(pub: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', pub], { encoding: 'utf8' }).split(' ')[1] as string;
}

describe('fingerprint', () => {
  it.each(['ed25519', 'ecdsa', 'rsa'] as const)('matches ssh-keygen -lf for a %s key', (type) => {
    const k = keygen(`fp-${type}`, type);
    expect(fingerprint(k.blob)).toBe(sshKeygenFingerprint(k.pub));
    expect(fingerprint(k.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('knownKeysFor', () => {
  const a = keygen('kh-a', 'ed25519');
  const b = keygen('kh-b', 'ecdsa');
  const c = keygen('kh-c', 'ed25519');
  const hashed = (name: string) => {
    const salt = randomBytes(20);
    return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
  };
  const b64 = (k: { line: string }) => k.line.split(' ')[1];
  const blobs = (content: string, host: string, port: number) => knownKeysFor(content, host, port).map((k) => k.blob.toString('base64'));

  it('plain host entries, also in comma lists, port 22', () => {
    const content = [`dpu1 ${a.keyType} ${b64(a)} comment`, `other,dpu1,10.0.0.1 ${b.keyType} ${b64(b)}`, `dpu2 ${c.keyType} ${b64(c)}`].join('\n');
    expect(blobs(content, 'dpu1', 22)).toEqual([b64(a), b64(b)]);
    expect(knownKeysFor(content, 'dpu1', 22).map((k) => k.type)).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256']);
    expect(blobs(content, '10.0.0.1', 22)).toEqual([b64(b)]);
    expect(blobs(content, 'dpu', 22)).toEqual([]);
  });

  it('non-standard ports need [host]:port; a plain entry does not match them', () => {
    const content = [`dpu1 ${a.keyType} ${b64(a)}`, `[dpu1]:2222 ${b.keyType} ${b64(b)}`, `[dpu1]:22 ${c.keyType} ${b64(c)}`].join('\n');
    expect(blobs(content, 'dpu1', 2222)).toEqual([b64(b)]);
    expect(blobs(content, 'dpu1', 22)).toEqual([b64(a), b64(c)]);
    expect(blobs(content, 'dpu1', 2200)).toEqual([]);
  });

  it('hashed entries (|1|salt|HMAC-SHA1(host)), including [host]:port', () => {
    const content = [`${hashed('dpu1')} ${a.keyType} ${b64(a)}`, `${hashed('[dpu1]:2222')} ${b.keyType} ${b64(b)}`, `${hashed('dpu2')} ${c.keyType} ${b64(c)}`].join('\n');
    expect(blobs(content, 'dpu1', 22)).toEqual([b64(a)]);
    expect(blobs(content, 'dpu1', 2222)).toEqual([b64(b)]);
    expect(blobs(content, 'dpu2', 22)).toEqual([b64(c)]);
    expect(blobs(content, 'dpu3', 22)).toEqual([]);
  });

  it('ssh-keygen -H hashed file is understood', () => {
    const f = join(dir, 'kh-hashed');
    writeFileSync(f, `dpu9 ${a.keyType} ${b64(a)}\n[dpu9]:2022 ${b.keyType} ${b64(b)}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
    const content = readFileSync(f, 'utf8');
    expect(content).not.toContain('dpu9');
    expect(blobs(content, 'dpu9', 22)).toEqual([b64(a)]);
    expect(blobs(content, 'dpu9', 2022)).toEqual([b64(b)]);
  });

  it('a key marked @revoked for this host is never returned, even when also listed plainly', () => {
    const content = [`dpu1 ${a.keyType} ${b64(a)}`, `dpu1 ${c.keyType} ${b64(c)}`, `@revoked dpu1,dpu2 ${a.keyType} ${b64(a)}`, `@revoked ${hashed('dpu1')} ${c.keyType} ${b64(c)}`, `dpu3 ${a.keyType} ${b64(a)}`].join('\n');
    expect(blobs(content, 'dpu1', 22)).toEqual([]);
    // a revocation for other hosts does not affect this one
    expect(blobs(content, 'dpu3', 22)).toEqual([b64(a)]);
  });

  it('skips @revoked and @cert-authority lines, comments, blank and malformed lines', () => {
    const content = ['# dpu1 ssh-ed25519 AAAA', '', `@revoked dpu1 ${a.keyType} ${b64(a)}`, `@cert-authority dpu1 ${b.keyType} ${b64(b)}`, 'dpu1 ssh-ed25519', `   dpu1 ${c.keyType} ${b64(c)}   `, '|1|onlysalt ssh-ed25519 AAAA'].join('\n');
    expect(blobs(content, 'dpu1', 22)).toEqual([b64(c)]);
  });
});

describe('SshTransport against a local SSH server', () => {
  const hostKey = keygen('dpu-host', 'ed25519');
  const userKey = keygen('client', 'ed25519');
  const strangerKey = keygen('stranger', 'ed25519');
  chmodSync(userKey.priv, 0o600);
  chmodSync(strangerKey.priv, 0o600);
  const allowed = utils.parseKey(readFileSync(userKey.pub));
  const commands: string[] = [];
  let connectionsSeen = 0;
  let server: Server;
  let port = 0;
  const transports: SshTransport[] = [];

  beforeAll(async () => {
    if (allowed instanceof Error) throw allowed;
    server = new Server({ hostKeys: [readFileSync(hostKey.priv)] }, (conn) => {
      connectionsSeen++;
      conn.on('authentication', (ctx) => {
        if (ctx.method === 'publickey' && ctx.username === 'root' && ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH())) return ctx.accept();
        return ctx.reject(['publickey']);
      });
      conn.on('ready', () => {
        conn.on('session', (accept) => {
          accept().once('exec', (acc, _rej, info) => {
            commands.push(info.command);
            const stream = acc();
            stream.write(`ran: ${info.command}\n`);
            stream.stderr.write('warning\n');
            stream.exit(info.command.startsWith('fail') ? 3 : 0);
            stream.end();
          });
        });
      });
      conn.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const t of transports) t.close();
    await new Promise((r) => server.close(r));
  });

  function transport(extra: Partial<SshSettings>): SshTransport {
    const t = new SshTransport({ host: '127.0.0.1', port, user: 'root', privateKeyFile: userKey.priv, timeoutMs: 5000, ...extra });
    transports.push(t);
    return t;
  }

  async function failure(p: Promise<unknown>): Promise<CniError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CniError);
    return err as CniError;
  }

  it('pinned by hostKeyFingerprint: runs the command and returns exit code, stdout and stderr', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    expect(t.target).toBe(`root@127.0.0.1:${port}`);
    expect(await t.exec("ovs-vsctl show && echo 'x y'")).toEqual({ exitCode: 0, stdout: "ran: ovs-vsctl show && echo 'x y'\n", stderr: 'warning\n' });
    expect(await t.exec('fail now')).toEqual({ exitCode: 3, stdout: 'ran: fail now\n', stderr: 'warning\n' });
    expect(commands.slice(-2)).toEqual(["ovs-vsctl show && echo 'x y'", 'fail now']);
  });

  it('pinned by a known_hosts entry [host]:port', async () => {
    const kh = join(dir, 'known_hosts_ok');
    writeFileSync(kh, `[127.0.0.1]:${port} ${hostKey.line}\n`);
    expect((await transport({ knownHostsFile: kh }).exec('true')).exitCode).toBe(0);
  });

  it('a different host key is code 111 naming what the server presented; nothing is run', async () => {
    const before = commands.length;
    const wrong = keygen('not-the-dpu', 'ed25519');
    const err = await failure(transport({ hostKeyFingerprint: fingerprint(wrong.blob) }).exec('rm -rf /'));
    expect(err.code).toBe(111);
    expect(err.message).toContain(sshKeygenFingerprint(hostKey.pub));
    expect(commands.length).toBe(before);
  });

  it('a known_hosts file with another key for this host is code 111', async () => {
    const kh = join(dir, 'known_hosts_wrong');
    writeFileSync(kh, `[127.0.0.1]:${port} ${strangerKey.line}\n`);
    expect((await failure(transport({ knownHostsFile: kh }).exec('true'))).code).toBe(111);
  });

  it('a known_hosts file without this host (e.g. only the port-22 entry) is code 111 with a hint', async () => {
    const kh = join(dir, 'known_hosts_none');
    writeFileSync(kh, `127.0.0.1 ${hostKey.line}\n`);
    const err = await failure(transport({ knownHostsFile: kh }).exec('true'));
    expect(err.code).toBe(111);
    expect(err.message).toMatch(/ssh-keyscan/);
  });

  it('an unreadable known_hosts file is code 7', async () => {
    expect((await failure(transport({ knownHostsFile: join(dir, 'missing_known_hosts') }).exec('true'))).code).toBe(7);
  });

  it('a private key readable by group or others is refused with code 7 before connecting', async () => {
    const loose = keygen('loose', 'ed25519');
    chmodSync(loose.priv, 0o644);
    const err = await failure(transport({ privateKeyFile: loose.priv, hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('true'));
    expect(err.code).toBe(7);
    expect(err.message).toContain('chmod 600');
  });

  it('a missing private key file is code 7', async () => {
    expect((await failure(transport({ privateKeyFile: join(dir, 'nokey'), hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('true'))).code).toBe(7);
  });

  it('a key the DPU does not accept is code 110', async () => {
    const err = await failure(transport({ privateKeyFile: strangerKey.priv, hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('true'));
    expect(err.code).toBe(110);
  });

  it('nothing listening is code 11 (try again later)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const err = await failure(transport({ port: closedPort, hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('true'));
    expect(err.code).toBe(11);
  });

  it('a server that never answers is code 11 within timeoutMs', async () => {
    const sockets: Socket[] = [];
    const silent: NetServer = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const started = Date.now();
    const err = await failure(transport({ port: (silent.address() as AddressInfo).port, timeoutMs: 300, hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('true'));
    expect(err.code).toBe(11);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('warm() connects ahead of exec: one handshake serves the command', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    const before = connectionsSeen;
    t.warm();
    expect(t.connectMs).toBeUndefined();
    await t.ready();
    expect(t.connectMs).toBeGreaterThan(0);
    expect(connectionsSeen).toBe(before + 1);
    expect((await t.exec('echo warm')).exitCode).toBe(0);
    expect(connectionsSeen).toBe(before + 1);
  });

  it('warm() then close() before ssh2 has loaded: no connection is left behind', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    const before = connectionsSeen;
    t.warm();
    t.close();
    await new Promise((r) => setTimeout(r, 300));
    expect(connectionsSeen).toBe(before);
  });

  it('warm() with a bad key file reports nothing itself; exec reports the same code 7', async () => {
    const t = transport({ privateKeyFile: join(dir, 'missing-key'), hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    expect(() => t.warm()).not.toThrow();
    await expect(t.exec('true')).rejects.toMatchObject({ code: 7 });
  });

  it('reconnects after close', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    expect((await t.exec('one')).exitCode).toBe(0);
    t.close();
    expect((await t.exec('two')).stdout).toBe('ran: two\n');
  });
});
