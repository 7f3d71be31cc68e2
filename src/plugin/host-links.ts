import { DEFAULT_NATIVE_DIR, NATIVE_DIR_ENV } from '../config/defaults';
import { LinkOps } from '../kernel/iproute2';
import { NetlinkLinkOps } from '../kernel/rtnetlink';
import { loadRtnetlink } from '../kernel/rtnetlink-addon';
import type { Logger } from '../log';
import type { CommandRunner } from '../util/command-runner';

/**
 * The host link operations, chosen once per process (the daemon at start, the standalone plugin at its command's
 * first link step): in-process rtnetlink when the addon loads, else `ip` and `nsenter`, with one warning saying why.
 */
export function hostLinkOps(log: Logger, dir = process.env[NATIVE_DIR_ENV] || DEFAULT_NATIVE_DIR, loadedLevel: 'info' | 'debug' = 'info'): (runner: CommandRunner) => LinkOps {
  const loaded = loadRtnetlink(dir);
  if ('reason' in loaded) {
    log.warn({ reason: loaded.reason }, 'in-process netlink unavailable: host link steps run ip and nsenter');
    return (runner) => new LinkOps(runner);
  }
  if (loaded.replaced) log.warn({ addon: loaded.path, was: loaded.replaced }, 'in-process netlink: replaced an addon file that failed its checks');
  log[loadedLevel]({ addon: loaded.path }, 'in-process netlink loaded');
  return (runner) => new NetlinkLinkOps(runner, loaded.addon);
}

/** For a process that may never need links (the standalone plugin): chooses at the first call, through that call's logger. */
export function lazyHostLinkOps(dir?: string): (runner: CommandRunner, log: Logger) => LinkOps {
  let chosen: ((runner: CommandRunner) => LinkOps) | undefined;
  return (runner, log) => (chosen ??= hostLinkOps(log, dir, 'debug'))(runner);
}
