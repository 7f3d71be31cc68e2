import { DEFAULTS } from '../config/schema';
import { createLogger } from '../log';
import { VERSION } from '../version';
import type { Server } from 'node:http';
import { DaemonServer } from './server';
import { type MetricsAddress, parseMetricsAddress, serveMetrics } from './metrics';

/** The documented port of the DaemonSet's and systemd unit's metrics endpoint. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9741';

const USAGE = `usage: dpu-overlay daemon [--socket PATH] [--log-file PATH] [--log-level LEVEL] [--state-dir DIR]... [--poll-interval-ms N]
Runs the dpu-overlay plugin's CNI commands in-process for plugins in this network namespace, over one
authenticated SSH connection per DPU kept warm, and serves single DPU operations on a unix socket (root only). Network configs reach it through dpu.daemonSocket (default ${DEFAULTS.dpu.daemonSocket}).
It also watches every DPU that the attachment records under --state-dir name, and re-plugs their
ports after a DPU reboot or an OVS database reset.
  --socket PATH           default ${DEFAULTS.dpu.daemonSocket} (its directory is created 0700)
  --log-file PATH         default ${DEFAULTS.daemonLogFile}
  --log-level LEVEL       trace|debug|info|warn|error (default ${DEFAULTS.logLevel})
  --state-dir DIR         the plugin's stateDir; repeat for networks with their own (default ${DEFAULTS.stateDir})
  --poll-interval-ms N    probe each DPU every N ms, 200..60000, or 0: no recovery (default ${DEFAULTS.daemonPollMs})
  --metrics-address H:P   serve GET /metrics (Prometheus) and GET /healthz there, e.g. ${DEFAULT_METRICS_ADDRESS}
                          (default: off; the DaemonSet and the systemd unit turn it on at ${DEFAULT_METRICS_ADDRESS})
Signals: SIGTERM/SIGINT stop it after the commands running finish; SIGHUP opens its log files again (logrotate).
`;


/** The node file the daemon's health check looks for: where the runtime's plugin will read it. */
function nodeFilePath(): string {
  return process.env.DPU_OVERLAY_NODE_CONFIG || DEFAULTS.nodeConfig;
}

export interface DaemonOptions {
  socket: string;
  logFile: string;
  logLevel: string;
  stateDirs: string[];
  pollMs: number;
  metrics?: MetricsAddress;
}

export function parseDaemonArgs(argv: readonly string[]): DaemonOptions | 'help' {
  const o: DaemonOptions = { socket: DEFAULTS.dpu.daemonSocket, logFile: DEFAULTS.daemonLogFile, logLevel: DEFAULTS.logLevel, stateDirs: [], pollMs: DEFAULTS.daemonPollMs };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--socket') o.socket = value;
    else if (flag === '--log-file') o.logFile = value;
    else if (flag === '--log-level') o.logLevel = value;
    else if (flag === '--state-dir') o.stateDirs.push(value);
    else if (flag === '--poll-interval-ms') o.pollMs = Number(value);
    else if (flag === '--metrics-address') o.metrics = parseMetricsAddress(value);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (!o.socket.startsWith('/')) throw new Error(`--socket must be an absolute path`);
  for (const d of o.stateDirs) if (!d.startsWith('/')) throw new Error(`--state-dir must be an absolute path (got ${d})`);
  if (!Number.isInteger(o.pollMs) || (o.pollMs !== 0 && (o.pollMs < 200 || o.pollMs > 60000))) throw new Error(`--poll-interval-ms must be 0 or an integer from 200 to 60000`);
  if (o.stateDirs.length === 0) o.stateDirs.push(DEFAULTS.stateDir);
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
  if (options === 'help' || argv[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const log = createLogger({ logFile: options.logFile, logLevel: options.logLevel }, { daemon: true });
  const server = new DaemonServer(options.socket, log, { stateDirs: options.stateDirs, pollMs: options.pollMs, metrics: options.metrics !== undefined });
  let metricsServer: Server | undefined;
  try {
    await server.listen();
    if (options.metrics && server.metrics) metricsServer = await serveMetrics(options.metrics, server.metrics, () => server.healthProblem(nodeFilePath()));
  } catch (err) {
    log.error({ err: (err as Error).message }, 'dpu-overlay daemon cannot start');
    await server.close();
    return 1;
  }
  const reopen = () => log.info({ files: server.reopenLogs() }, 'SIGHUP: log files opened again');
  process.on('SIGHUP', reopen);
  log.info({ version: VERSION, pid: process.pid, stateDirs: options.stateDirs, pollMs: options.pollMs || undefined, metrics: options.metrics ? `${options.metrics.host}:${options.metrics.port}` : undefined }, 'dpu-overlay daemon started');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.off('SIGHUP', reopen);
  metricsServer?.close();
  await server.close();
  log.info('dpu-overlay daemon stopped');
  return 0;
}
