import { DEFAULTS } from '../config/schema';
import { createLogger } from '../log';
import { VERSION } from '../version';
import { DaemonServer } from './server';

const USAGE = `usage: dpu-overlay daemon [--socket PATH] [--log-file PATH] [--log-level LEVEL]
Keeps one authenticated SSH connection per DPU and serves the dpu-overlay plugin on a unix socket
(root only). Network configs reach it through dpu.daemonSocket (default ${DEFAULTS.dpu.daemonSocket}).
  --socket PATH      default ${DEFAULTS.dpu.daemonSocket} (its directory is created 0700)
  --log-file PATH    default ${DEFAULTS.daemonLogFile}
  --log-level LEVEL  trace|debug|info|warn|error (default ${DEFAULTS.logLevel})
`;

export interface DaemonOptions {
  socket: string;
  logFile: string;
  logLevel: string;
}

export function parseDaemonArgs(argv: readonly string[]): DaemonOptions | 'help' {
  const o: DaemonOptions = { socket: DEFAULTS.dpu.daemonSocket, logFile: DEFAULTS.daemonLogFile, logLevel: DEFAULTS.logLevel };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--socket') o.socket = value;
    else if (flag === '--log-file') o.logFile = value;
    else if (flag === '--log-level') o.logLevel = value;
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (!o.socket.startsWith('/')) throw new Error(`--socket must be an absolute path`);
  return o;
}

/** Runs until SIGTERM or SIGINT; the exit code. */
export async function runDaemon(argv: readonly string[]): Promise<number> {
  let options: DaemonOptions | 'help';
  try {
    options = parseDaemonArgs(argv);
  } catch (err) {
    process.stderr.write(`dpu-overlay daemon: ${(err as Error).message}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = createLogger({ logFile: options.logFile, logLevel: options.logLevel }, { daemon: true });
  const server = new DaemonServer(options.socket, log);
  try {
    await server.listen();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'dpu-overlay daemon cannot start');
    return 1;
  }
  log.info({ version: VERSION, pid: process.pid }, 'dpu-overlay daemon started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.close();
  log.info('dpu-overlay daemon stopped');
  return 0;
}
