// A stand-in for the daemon that answers every forwarded command at once (success, a minimal CNI result for ADD):
// what a warm command costs the forwarding process itself, beyond what the daemon does for it. Speaks the daemon's
// protocol (src/protocol): the hello, then one request line, then the answer.
//   node build/run-ts/echo-daemon.cjs SOCKET   (bench/latency.ts runs it, and ends it with SIGTERM)
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { HELLO } from '../../src/protocol/framing';

const socket = process.argv[2] as string;
rmSync(dirname(socket), { recursive: true, force: true });
// private, as the daemon makes them: the forwarder trusts nothing else (src/util/socket-trust.ts)
mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
const server = createServer((c) => {
  let buf = '';
  c.write(JSON.stringify(HELLO) + '\n');
  c.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    const req = JSON.parse(buf.slice(0, nl)) as { env?: Record<string, string> };
    const stdout = req.env?.CNI_COMMAND === 'ADD' ? JSON.stringify({ cniVersion: '1.0.0', interfaces: [], ips: [] }) + '\n' : '';
    c.end(JSON.stringify({ ok: true, exitCode: 0, stdout, stderr: '' }) + '\n');
  });
  c.on('error', () => undefined);
});
server.listen(socket, () => {
  chmodSync(socket, 0o600);
  process.stderr.write('echo-daemon: listening\n');
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
