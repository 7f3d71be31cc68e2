import { nodeConfigPath, readNodeFile } from '../config/node-file-read';
import { DEFAULTS } from '../config/schema';
import { createLogger } from '../log';
import { VERSION } from '../version';
import type { Server } from 'node:http';
import { DaemonServer } from './server';
import { hostLinkOps } from '../plugin/host-links';
import { type MetricsAddress, parseMetricsAddress, serveMetrics } from './metrics';

/** The documented port of the DaemonSet's and systemd unit's metrics endpoint. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:9741';

const USAGE = `usage: dpu-overlay daemon [--socket PATH] [--log-file PATH] [--log-level LEVEL] [--node-config PATH] [--state-dir DIR]... [--poll-interval-ms N] [--empty-bridge-grace-ms N]
Runs the dpu-overlay plugin's CNI commands in-process for plugins in this network namespace, over one
authenticated SSH connection per DPU kept warm, and serves single DPU operations on a unix socket (root only). Plugins find it through the node file's dpu.daemonSocket (default ${DEFAULTS.dpu.daemonSocket}).
It also watches every DPU that the attachment records under --state-dir name, and re-plugs their
ports after a DPU reboot or an OVS database reset.
  --socket PATH           default ${DEFAULTS.dpu.daemonSocket} (its directory is created 0700)
  --log-file PATH         default ${DEFAULTS.daemonLogFile}
  --log-level LEVEL       trace|debug|info|warn|error (default ${DEFAULTS.logLevel})
  --node-config PATH      the node file for commands whose environment names none (DPU_OVERLAY_NODE_CONFIG wins)
                          and for the default --state-dir (default ${DEFAULTS.nodeConfig})
  --state-dir DIR         the plugin's stateDir; repeat for node files with their own (default: the node file's
                          stateDir, else ${DEFAULTS.stateDir})
  --poll-interval-ms N    probe each DPU every N ms, 200..60000, or 0: no recovery (default ${DEFAULTS.daemonPollMs})
  --empty-bridge-grace-ms N  remove a VNI bridge once it has had no container for N ms, 0..600000; 0: the DEL
                          of its last container removes it before answering (default ${DEFAULTS.daemonEmptyBridgeGraceMs})
  --metrics-address H:P   serve GET /metrics (Prometheus) and GET /healthz there, e.g. ${DEFAULT_METRICS_ADDRESS}
                          (default: off; the DaemonSet and the systemd unit turn it on at ${DEFAULT_METRICS_ADDRESS})
Signals: SIGTERM/SIGINT stop it after the commands running finish; SIGHUP opens its log files again (logrotate).
`;


export interface DaemonOptions {
  socket: string;
  logFile: string;
  logLevel: string;
  stateDirs: string[];
  pollMs: number;
  emptyBridgeGraceMs: number;
  metrics?: MetricsAddress;
  nodeConfig: string;
}

export function parseDaemonArgs(argv: readonly string[]): DaemonOptions | 'help' {
  const o: DaemonOptions = { socket: DEFAULTS.dpu.daemonSocket, logFile: DEFAULTS.daemonLogFile, logLevel: DEFAULTS.logLevel, stateDirs: [], pollMs: DEFAULTS.daemonPollMs, nodeConfig: DEFAULTS.nodeConfig, emptyBridgeGraceMs: DEFAULTS.daemonEmptyBridgeGraceMs };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = argv[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
    if (flag === '--socket') o.socket = value;
    else if (flag === '--log-file') o.logFile = value;
    else if (flag === '--log-level') o.logLevel = value;
    else if (flag === '--state-dir') o.stateDirs.push(value);
    else if (flag === '--node-config') o.nodeConfig = value;
    else if (flag === '--poll-interval-ms') o.pollMs = Number(value);
    else if (flag === '--empty-bridge-grace-ms') o.emptyBridgeGraceMs = Number(value);
    else if (flag === '--metrics-address') o.metrics = parseMetricsAddress(value);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  if (!o.socket.startsWith('/')) throw new Error(`--socket must be an absolute path`);
  if (!o.nodeConfig.startsWith('/')) throw new Error(`--node-config must be an absolute path`);
  for (const d of o.stateDirs) if (!d.startsWith('/')) throw new Error(`--state-dir must be an absolute path (got ${d})`);
  if (!Number.isInteger(o.pollMs) || (o.pollMs !== 0 && (o.pollMs < 200 || o.pollMs > 60000))) throw new Error(`--poll-interval-ms must be 0 or an integer from 200 to 60000`);
  if (!Number.isInteger(o.emptyBridgeGraceMs) || o.emptyBridgeGraceMs < 0 || o.emptyBridgeGraceMs > 600000) throw new Error(`--empty-bridge-grace-ms must be an integer from 0 to 600000`);
  return o;
}

/** The node file's stateDir, else the default: what recovery watches when no --state-dir is given. */
function nodeStateDir(nodeConfig: string): string {
  const dir = readNodeFile(nodeConfigPath({}, nodeConfig)).values?.stateDir;
  return typeof dir === 'string' && dir.startsWith('/') ? dir : DEFAULTS.stateDir;
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
  if (options.stateDirs.length === 0) {
    try {
      options.stateDirs.push(nodeStateDir(options.nodeConfig));
    } catch (err) {
      process.stderr.write(`dpu-overlay daemon: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const log = createLogger({ logFile: options.logFile, logLevel: options.logLevel }, { daemon: true });
  const server = new DaemonServer(options.socket, log, { stateDirs: options.stateDirs, pollMs: options.pollMs, metrics: options.metrics !== undefined, nodeConfig: options.nodeConfig, emptyBridgeGraceMs: options.emptyBridgeGraceMs, links: hostLinkOps(log) });
  let metricsServer: Server | undefined;
  try {
    await server.listen();
    if (options.metrics && server.metrics) metricsServer = await serveMetrics(options.metrics, server.metrics, () => server.healthProblem(options.nodeConfig));
  } catch (err) {
    log.error({ err: (err as Error).message }, 'dpu-overlay daemon cannot start');
    await server.close();
    return 1;
  }
  const reopen = () => log.info({ files: server.reopenLogs() }, 'SIGHUP: log files opened again');
  process.on('SIGHUP', reopen);
  log.info({ version: VERSION, pid: process.pid, nodeConfig: options.nodeConfig, stateDirs: options.stateDirs, pollMs: options.pollMs || undefined, metrics: options.metrics ? `${options.metrics.host}:${options.metrics.port}` : undefined, emptyBridgeGraceMs: options.emptyBridgeGraceMs }, 'dpu-overlay daemon started');
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
