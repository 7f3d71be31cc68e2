import { connect } from 'node:net';
import { DEFAULT_DAEMON_SOCKET } from '../config/defaults';
import { nodeConfigPath, readNodeFile } from '../config/node-file-read';
import { untrustedSocketReason } from '../util/socket-trust';
import { type CniForwardRequest, type CniForwardResponse, MAX_CNI_LINE_BYTES, fileIdOf, netnsId, readLines } from './protocol';

/**
 * The plugin's side of whole-command forwarding. Loaded by src/main.ts on every call, so it must stay free of
 * zod, pino, ssh2 and the plugin modules (test/unit/daemon-forward-deps.test.ts checks). The daemon's socket is the
 * node owner's (dpu.daemonSocket in the node file), never the network config's: the daemon receives the command's
 * whole environment. Whenever the daemon cannot give a complete answer the plugin runs the command itself.
 */

export const FORWARDED: ReadonlySet<string> = new Set(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']);
const CONNECT_TIMEOUT_MS = 300;

/** The daemon's answer: what the plugin prints, writes to stderr and exits with. */
export interface Forwarded {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Why the command runs standalone (for tests and debugging). */
export type Standalone = { standalone: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The socket the node file names: dpu.daemonSocket (else that of the first dpus entry), the default when unset;
 * a Standalone for "", a malformed value or a node file that cannot be read (the standalone run reports it).
 */
export function daemonSocketOf(env: Record<string, string | undefined>): string | Standalone {
  let node: Record<string, unknown> | undefined;
  try {
    node = readNodeFile(nodeConfigPath(env)).values;
  } catch (err) {
    return { standalone: `node file: ${(err as Error).message}` };
  }
  const dpu = isObject(node?.dpu) ? node.dpu : isObject(node?.dpus) ? Object.values(node.dpus).find(isObject) : undefined;
  const socket = dpu && 'daemonSocket' in dpu ? dpu.daemonSocket : DEFAULT_DAEMON_SOCKET;
  if (socket === '') return { standalone: 'dpu.daemonSocket is ""' };
  if (typeof socket !== 'string' || !socket.startsWith('/')) return { standalone: 'dpu.daemonSocket is not an absolute path' };
  return socket;
}

function stringEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Sends the command to the daemon and waits for its complete answer, or for a reason to run standalone. */
export function exchange(socket: string, line: string, connectTimeoutMs = CONNECT_TIMEOUT_MS): Promise<Forwarded | Standalone> {
  return new Promise((resolve) => {
    let settled = false;
    const sock = connect(socket);
    const done = (outcome: Forwarded | Standalone) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ standalone: `no connection within ${connectTimeoutMs} ms` }), connectTimeoutMs);
    sock.once('connect', () => {
      // From here on the runtime's own timeout bounds the command.
      clearTimeout(timer);
      sock.write(line);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => done({ standalone: `daemon socket: ${err.code ?? err.message}` }));
    sock.on('close', () => done({ standalone: 'the daemon closed the connection before answering' }));
    readLines(
      sock,
      (text) => {
        let res: Partial<CniForwardResponse & Forwarded & { refused: string; ok: boolean }>;
        try {
          res = JSON.parse(text) as typeof res;
        } catch {
          return done({ standalone: 'malformed answer from the daemon' });
        }
        if (typeof res.refused === 'string') done({ standalone: `refused: ${res.refused}` });
        else if (res.ok === true && typeof res.exitCode === 'number' && typeof res.stdout === 'string' && typeof res.stderr === 'string') done({ exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr });
      },
      () => done({ standalone: 'over-long answer from the daemon' }),
      MAX_CNI_LINE_BYTES,
    );
  });
}

/** The daemon's answer to this command, or why the plugin runs it standalone. */
export async function forward(env: Record<string, string | undefined>, stdin: Promise<string>, expectedUid = process.getuid?.() ?? 0): Promise<Forwarded | Standalone> {
  if (!FORWARDED.has(env.CNI_COMMAND ?? '')) return { standalone: 'command not forwarded' };
  let text: string;
  try {
    text = await stdin;
  } catch {
    return { standalone: 'stdin unreadable' };
  }
  const socket = daemonSocketOf(env);
  if (typeof socket !== 'string') return socket;
  const untrusted = untrustedSocketReason(socket, expectedUid);
  if (untrusted) return { standalone: `daemon socket ${socket} ${untrusted}` };
  let netns: string;
  try {
    netns = netnsId();
  } catch (err) {
    return { standalone: `no network namespace identity: ${(err as Error).message}` };
  }
  const cniNetns = env.CNI_NETNS ? fileIdOf(env.CNI_NETNS) : undefined;
  // daemonSocketOf resolved this path already (or sent the command standalone)
  const nodeFile = fileIdOf(nodeConfigPath(env)) ?? '';
  const req: CniForwardRequest = { id: 1, op: 'cni', env: stringEnv(env), stdin: text, netns, nodeFile, ...(cniNetns ? { cniNetns } : {}) };
  const line = JSON.stringify(req) + '\n';
  if (line.length > MAX_CNI_LINE_BYTES) return { standalone: 'request larger than the daemon accepts' };
  return exchange(socket, line);
}

export function isForwarded(outcome: Forwarded | Standalone): outcome is Forwarded {
  return 'exitCode' in outcome;
}
