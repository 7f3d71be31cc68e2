import { connect } from 'node:net';
import { DEFAULT_DAEMON_SOCKET } from '../config/defaults';
import { nodeConfigPath, readNodeFile } from '../config/node-file-read';
import { untrustedSocketReason } from '../util/socket-trust';
import { fileIdOf, MAX_CNI_LINE_BYTES, netnsId, readLinesAfterHello } from '../protocol/framing';
import type { CniForwardRequest, CniForwardResponse } from '../protocol/operations';

/**
 * The plugin's side of whole-command forwarding. Loaded by src/entry.ts on every call, so it must stay free of
 * zod, pino, ssh2 and the plugin modules (test/unit/daemon-forward-deps.test.ts checks). The daemon's socket is the
 * node owner's (dpu.daemonSocket in the node file), never the network config's: the daemon receives the command's
 * whole environment. Whenever the daemon does not take the command (no hello,
 * refused, gone) the plugin runs it itself; once the daemon accepted it, the plugin never runs it alongside
 * (docs/daemon.md).
 */

export const FORWARDED: ReadonlySet<string> = new Set(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']);
/** Connecting (the kernel's part: a daemon that is not listening is refused at once). */
const CONNECT_TIMEOUT_MS = 300;
/**
 * The daemon's hello after connecting: it needs the daemon's event loop, which a burst of commands keeps busy,
 * so it gets much longer than the connect (a burst of 64 ADDs on two cores passed 3 s). A socket silent this long gets nothing, and the plugin runs the command.
 */
export const HELLO_TIMEOUT_MS = 10000;

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

/** A daemon that passed the hello but neither accepts nor refuses within this is wedged: the plugin answers 11. */
export const ACCEPT_DEADLINE_MS = 5 * 60 * 1000;
/** Past the daemon's announced bound, the time its answer may take to arrive. */
const ANSWER_SLACK_MS = 2000;

/** A CNI error the plugin prints itself (code 11: the daemon may still be acting; the runtime retries). */
function tryAgain(stdin: string, msg: string): Forwarded {
  let cniVersion = '1.1.0';
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)) cniVersion = v;
  } catch {
    // the version of the error is then ours
  }
  return { exitCode: 1, stdout: JSON.stringify({ cniVersion, code: 11, msg, details: '' }) + '\n', stderr: `dpu-overlay: ${msg}\n` };
}

export interface ExchangeTimes {
  connectTimeoutMs: number;
  helloTimeoutMs: number;
  /** From the request sent to accepted or refused. */
  acceptDeadlineMs: number;
}

/**
 * Sends the command to the daemon and waits for its complete answer, or for a reason to run standalone. Nothing is
 * sent before the daemon's hello (a socket that stays silent or says anything else gets nothing: standalone). Once
 * the request is sent the plugin never runs the command in parallel with the daemon: past a deadline it answers 11.
 */
export function exchange(socket: string, line: string, times: Partial<ExchangeTimes> = {}, stdin = ''): Promise<Forwarded | Standalone> {
  const connectTimeoutMs = times.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  const helloTimeoutMs = times.helloTimeoutMs ?? HELLO_TIMEOUT_MS;
  const acceptDeadlineMs = times.acceptDeadlineMs ?? ACCEPT_DEADLINE_MS;
  return new Promise((resolve) => {
    let settled = false;
    let phase: 'hello' | 'sent' | 'accepted' = 'hello';
    const sock = connect(socket);
    let timer: NodeJS.Timeout | undefined;
    const done = (outcome: Forwarded | Standalone) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(outcome);
    };
    const deadline = (ms: number, outcome: () => Forwarded | Standalone) => {
      clearTimeout(timer);
      timer = setTimeout(() => done(outcome()), ms);
    };
    deadline(connectTimeoutMs, () => ({ standalone: `no connection within ${connectTimeoutMs} ms` }));
    sock.once('connect', () => deadline(helloTimeoutMs, () => ({ standalone: `no hello from the daemon within ${helloTimeoutMs} ms` })));
    sock.on('error', (err: NodeJS.ErrnoException) => done({ standalone: `daemon socket: ${err.code ?? err.message}` }));
    // The daemon gone (it died): nothing acts on the command any more, so the plugin runs it, even after accepted.
    sock.on('close', () => done({ standalone: 'the daemon closed the connection before answering' }));
    readLinesAfterHello(
      sock,
      {
        onProblem: (problem) => done({ standalone: problem }),
        onHello: () => {
          phase = 'sent';
          deadline(acceptDeadlineMs, () => tryAgain(stdin, `the dpu-overlay daemon at ${socket} neither accepted nor refused the command within ${acceptDeadlineMs} ms; it may still start it: try again`));
          sock.write(line);
        },
        onLine: (text) => {
          let res: Partial<CniForwardResponse & Forwarded & { refused: string; ok: boolean; accepted: boolean; boundMs: number }>;
          try {
            res = JSON.parse(text) as typeof res;
          } catch {
            return done(phase === 'sent' ? { standalone: 'malformed answer from the daemon' } : tryAgain(stdin, `malformed answer from the dpu-overlay daemon at ${socket} after it accepted the command; try again`));
          }
          if (typeof res.refused === 'string' && phase === 'sent') done({ standalone: `refused: ${res.refused}` });
          else if (res.accepted === true && phase === 'sent') {
            phase = 'accepted';
            const boundMs = typeof res.boundMs === 'number' && res.boundMs > 0 ? res.boundMs : acceptDeadlineMs;
            deadline(boundMs + ANSWER_SLACK_MS, () => tryAgain(stdin, `the dpu-overlay daemon at ${socket} accepted the command but did not answer within its bound (${boundMs} ms); it may still be running it: try again`));
          } else if (res.ok === true && typeof res.exitCode === 'number' && typeof res.stdout === 'string' && typeof res.stderr === 'string') done({ exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr });
        },
      },
      () => done(phase === 'accepted' ? tryAgain(stdin, `over-long answer from the dpu-overlay daemon at ${socket}; try again`) : { standalone: 'over-long answer from the daemon' }),
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
  return exchange(socket, line, {}, text);
}

export function isForwarded(outcome: Forwarded | Standalone): outcome is Forwarded {
  return 'exitCode' in outcome;
}
