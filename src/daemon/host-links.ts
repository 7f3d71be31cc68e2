import { DEFAULT_NATIVE_DIR, NATIVE_DIR_ENV } from '../config/defaults';
import { LinkOps } from '../kernel/iproute2';
import { NetlinkLinkOps } from '../kernel/rtnetlink';
import { loadRtnetlink } from '../kernel/rtnetlink-addon';
import type { Logger } from '../log';
import type { CommandRunner } from '../util/command-runner';

/**
 * The daemon's host link operations: in-process rtnetlink when the addon loads (it is loaded once, here), else
 * `ip` and `nsenter` as the standalone plugin runs them, with one warning saying why.
 */
export function hostLinkOps(log: Logger, dir = process.env[NATIVE_DIR_ENV] || DEFAULT_NATIVE_DIR): (runner: CommandRunner) => LinkOps {
  const loaded = loadRtnetlink(dir);
  if ('reason' in loaded) {
    log.warn({ reason: loaded.reason }, 'in-process netlink unavailable: host link steps run ip and nsenter');
    return (runner) => new LinkOps(runner);
  }
  log.info({ addon: loaded.path }, 'in-process netlink loaded');
  return (runner) => new NetlinkLinkOps(runner, loaded.addon);
}
