import { connect } from 'node:net';
import { DEFAULT_DAEMON_SOCKET } from '../config/defaults';
import { DEFAULTS } from '../config/schema';
import { formatNodeStatus, recordedAttachments } from '../daemon/node-status';
import { readLinesAfterHello } from '../protocol/framing';
import type { NodeStatus } from '../protocol/node-status';
import type { DaemonResponse } from '../protocol/operations';
import { VERSION } from '../version';

export const STATUS_USAGE = `usage: dpu-overlay status [--socket PATH] [--state-dir DIR]... [--json]
Shows what runs on this node: each DPU the daemon is connected to (connected, last round trip, boot id,
control plane) and each attachment (container, ifname, network, VNI, VF, representor, state).
Asks the daemon at --socket (default ${DEFAULT_DAEMON_SOCKET}); when none answers there, reads the
attachment records under --state-dir (default ${DEFAULTS.stateDir}) instead.
  --json   one JSON object (source "daemon" or "records"), for scripts
`;

interface StatusOptions {
  socket: string;
  stateDirs: string[];
  json: boolean;
}

function parse(argv: readonly string[]): StatusOptions | 'help' {
  const o: StatusOptions = { socket: DEFAULT_DAEMON_SOCKET, stateDirs: [], json: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h' || flag === 'help') return 'help';
    if (flag === '--json') {
      o.json = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    if (flag === '--socket') o.socket = value;
    else if (flag === '--state-dir') o.stateDirs.push(value);
    else throw new Error(`unknown option ${flag}`);
  }
  if (o.stateDirs.length === 0) o.stateDirs.push(DEFAULTS.stateDir);
  return o;
}

/** The daemon's nodeStatus answer; undefined when no daemon answers at socket. */
export function askDaemon(socket: string, timeoutMs = 5000): Promise<NodeStatus | undefined> {
  return new Promise((resolve, reject) => {
    const sock = connect(socket);
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      f();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`the daemon at ${socket} did not answer within ${timeoutMs} ms`))), timeoutMs);
    // The daemon greets every connection first; the request goes only after its hello.
    readLinesAfterHello(
      sock,
      {
        onProblem: (problem) => finish(() => reject(new Error(`${socket}: ${problem}`))),
        onHello: () => sock.write(JSON.stringify({ id: 1, op: 'nodeStatus' }) + '\n'),
        onLine: (line) =>
          finish(() => {
            try {
              const res = JSON.parse(line) as DaemonResponse;
              if (res.ok) resolve(res.result as NodeStatus);
              else reject(new Error(`the daemon at ${socket} answered: ${res.error.msg}`));
            } catch (err) {
              reject(new Error(`the daemon at ${socket} sent a malformed answer: ${(err as Error).message}`));
            }
          }),
      },
      () => finish(() => reject(new Error(`the daemon at ${socket} sent an over-long answer`))),
    );
    sock.once('error', (err: NodeJS.ErrnoException) =>
      finish(() => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
        else reject(new Error(`cannot reach the daemon at ${socket}: ${err.message}`));
      }),
    );
    sock.once('close', () => finish(() => reject(new Error(`the daemon at ${socket} closed the connection without answering (a daemon older than this dpu-overlay?)`))));
  });
}

export async function runStatus(argv: readonly string[]): Promise<number> {
  let o: StatusOptions | 'help';
  try {
    o = parse(argv);
  } catch (err) {
    process.stderr.write(`dpu-overlay status: ${(err as Error).message}\n${STATUS_USAGE}`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(STATUS_USAGE);
    return 0;
  }
  let status: NodeStatus;
  try {
    status = (await askDaemon(o.socket)) ?? { source: 'records', version: VERSION, dpus: [], ...recordedAttachments(o.stateDirs) };
  } catch (err) {
    process.stderr.write(`dpu-overlay status: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(o.json ? JSON.stringify(status, null, 2) + '\n' : formatNodeStatus(status));
  return 0;
}
