import { CniError, ErrorCode } from '../cni/errors';
import { readNodeFile } from '../config/node-file';
import { DEFAULTS } from '../config/schema';
import type { LogSettings, Logger } from '../log';

/** Where the runtime's plugin reads its node file (set by the runtime or the daemon's environment). */
export function nodeFileFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.DPU_OVERLAY_NODE_CONFIG || DEFAULTS.nodeConfig;
}

/** The log file a command whose config did not load logs to: the node file's logFile, else the default. */
export function fallbackLogFile(nodeFile: string): string {
  try {
    const logFile = readNodeFile(nodeFile).values?.logFile;
    if (typeof logFile === 'string' && logFile.startsWith('/')) return logFile;
  } catch {
    // an unreadable node file is itself the config error being logged
  }
  return DEFAULTS.logFile;
}

/**
 * A config error (code 6 or 7) happens before the command has a logger; it still reaches a log file, where an
 * operator looks first, not only the runtime's event stream.
 */
export function logConfigError(err: unknown, command: string, env: Readonly<Record<string, string | undefined>>, loggerFor: (s: LogSettings) => Logger): void {
  if (!(err instanceof CniError) || (err.code !== ErrorCode.InvalidNetworkConfig && err.code !== ErrorCode.DecodingFailure)) return;
  const nodeFile = nodeFileFromEnv(env);
  try {
    loggerFor({ logFile: fallbackLogFile(nodeFile), logLevel: 'info' }).error(
      { command, containerId: env.CNI_CONTAINERID || undefined, ifname: env.CNI_IFNAME || undefined, code: err.code, err: err.message, details: err.details || undefined, nodeConfig: nodeFile },
      `${command} refused: invalid network or node config`,
    );
  } catch {
    // logging must never change the answer
  }
}
