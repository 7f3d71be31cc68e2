import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import { Server, type ServerChannel, utils } from 'ssh2';
import { dpuRejectionOf } from './helpers/errors';
import { dpuErrorToCni } from '../../src/plugin/dpu-errors';
import { DpuChannelLost, fingerprint, MAX_OUTPUT_BYTES, REMOTE_COMMAND, type SshSettings, SshTransport } from '../../src/dpu/ssh';
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

/** A hostile DPU: output without end, as fast as the channel window allows. */
function flood(stream: ServerChannel): void {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const pump = () => {
    while (stream.writable && stream.write(chunk));
    if (stream.writable) stream.once('drain', pump);
  };
  stream.on('error', () => undefined);
  pump();
}

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
            const stream = acc();
            // like sh -s: the command line arrives on stdin
            const input: Buffer[] = [];
            stream.on('data', (d: Buffer) => input.push(d));
            stream.once('end', () => {
              const command = info.command === REMOTE_COMMAND ? Buffer.concat(input).toString().replace(/\n$/, '') : `unexpected exec request: ${info.command}`;
              commands.push(command);
              if (command === 'flood') return flood(stream);
              if (command === 'vanish') return stream.close();
              if (command === 'hang') return;
              stream.write(`ran: ${command.length > 100 ? `${command.length} bytes` : command}\n`);
              stream.stderr.write('warning\n');
              stream.exit(command.startsWith('fail') ? 3 : 0);
              stream.end();
            });
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

  const failure = dpuRejectionOf;

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

  it('turns Nagle off on the connection (TCP_NODELAY): small requests do not wait for the DPU\'s delayed ACK', async () => {
    const calls: Array<{ remotePort?: number; enable: unknown; connecting: boolean }> = [];
    const original = Socket.prototype.setNoDelay;
    const spy = jest.spyOn(Socket.prototype, 'setNoDelay').mockImplementation(function (this: Socket, enable?: boolean) {
      calls.push({ remotePort: this.remotePort, enable, connecting: this.connecting });
      return original.call(this, enable);
    });
    try {
      const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
      expect((await t.exec('echo nodelay')).exitCode).toBe(0);
    } finally {
      spy.mockRestore();
    }
    // Once TCP is connected, before the SSH handshake.
    expect(calls.filter((c) => c.enable === true && c.remotePort === port && !c.connecting)).toHaveLength(1);
    expect(calls.every((c) => c.enable === true)).toBe(true);
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
    expect(await dpuRejectionOf(t.exec('true'))).toMatchObject({ code: 7 });
  });

  it('reconnects after close', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    expect((await t.exec('one')).exitCode).toBe(0);
    t.close();
    expect((await t.exec('two')).stdout).toBe('ran: two\n');
  });

  it('sends the command line on stdin, so a line of megabytes is not limited by the exec request', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    const long = `ovs-vsctl ${'-- set Interface vx00000000 type=vxlan '.repeat(30000)}`;
    expect(long.length).toBeGreaterThan(1024 * 1024);
    expect(await t.exec(long)).toEqual({ exitCode: 0, stdout: `ran: ${long.length} bytes\n`, stderr: 'warning\n' });
    expect(commands.at(-1)).toBe(long);
  });

  it('output past MAX_OUTPUT_BYTES aborts the channel with code 112 naming the cap; the connection serves the next command', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) });
    const before = connectionsSeen;
    const err = await failure(t.exec('flood'));
    expect(err.code).toBe(112);
    expect(err.message).toContain(`more than ${MAX_OUTPUT_BYTES} bytes`);
    expect(t.connected).toBe(true);
    expect((await t.exec('after flood')).stdout).toBe('ran: after flood\n');
    expect(connectionsSeen).toBe(before + 1);
  });

  it('a channel closed without an exit status is DpuChannelLost (code 11), not a command failure', async () => {
    const err = await transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub) }).exec('vanish').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpuChannelLost);
    expect(dpuErrorToCni(err as DpuChannelLost).code).toBe(11);
  });

  it('a command that times out ends its own channel only: commands sharing the connection finish', async () => {
    const t = transport({ hostKeyFingerprint: sshKeygenFingerprint(hostKey.pub), timeoutMs: 1500 });
    await t.ready();
    const hung = t.exec('hang');
    const others = await Promise.all([t.exec('one'), t.exec('two')]);
    expect(others.map((r) => r.stdout)).toEqual(['ran: one\n', 'ran: two\n']);
    expect((await failure(hung)).code).toBe(11);
    expect(t.connected).toBe(true);
    expect((await t.exec('three')).stdout).toBe('ran: three\n');
  });
});
