import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { CniError, ErrorCode } from './errors';
import { jsonDepth, MAX_JSON_DEPTH } from '../util/json-depth';
import type { CniResult } from './types';
import { compareVersions, convertResult, isSupportedVersion, parseResult } from './version';
import type { CommandRunner } from '../util/command-runner';

export interface IpamCall {
  type: string;
  cniPath: string[];
  /** The network config exactly as the runtime sent it (IPAM plugins read their own section). */
  rawConfig: string;
  containerId: string;
  netns: string;
  ifname: string;
  cniArgs: string;
  cniVersion: string;
}

/** What a delegated call needs besides the call itself: the runtime's environment and where the plugin's stderr goes. */
export interface DelegationIo {
  /** The plugin's own environment; the delegate gets it with CNI_* overridden (pkg/invoke passes os.Environ() the same way). */
  env: Record<string, string | undefined>;
  stderr(text: string): void;
}

type Command = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

const IPAM_TIMEOUT_MS = 60000;
/** GC and STATUS exist from CNI 1.1.0 on: a plugin that speaks no such version does not know them. */
const GC_STATUS_MINIMUM = '1.1.0';
const DEFAULT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The supportedVersions each plugin binary answered, keyed by its path and file identity (a replaced binary is
 * asked again). A long-lived process (the daemon) then calls a plugin that refuses the config's cniVersion in
 * that plugin's version straight away, instead of being refused and asking VERSION on every call.
 */
const answeredVersions = new Map<string, { id: string; versions: string[] }>();

function fileId(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

function knownVersions(plugin: string): string[] | undefined {
  const known = answeredVersions.get(plugin);
  return known && known.id === fileId(plugin) ? known.versions : undefined;
}

function newestCommon(versions: readonly unknown[], wanted: string, minimum: string): string | undefined {
  return versions
    .filter((v): v is string => isSupportedVersion(v) && compareVersions(v, wanted) <= 0 && compareVersions(v, minimum) >= 0)
    .sort(compareVersions)
    .pop();
}

/** A plain file name: never a path, so a delegated plugin is always looked up in CNI_PATH. */
export const IPAM_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function findPlugin(type: string, cniPath: string[]): string {
  // A type is a file name, never a path: however it got here (config, a record), it only selects within CNI_PATH.
  if (!IPAM_TYPE.test(type)) throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ipam.type ${JSON.stringify(type.slice(0, 80))} must be the file name of an IPAM plugin in CNI_PATH`);
  for (const dir of cniPath) {
    if (!dir.startsWith('/')) continue;
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next directory
    }
  }
  throw new CniError(ErrorCode.IpamFailure, `IPAM plugin "${type}" not found in CNI_PATH (${cniPath.join(':') || 'empty'}); install it (Debian: containernetworking-plugins puts them in /usr/lib/cni)`);
}

function isCidr(s: unknown): boolean {
  if (typeof s !== 'string') return false;
  const [addr, prefix, ...rest] = s.split('/');
  const family = isIP(addr ?? '');
  const bits = Number(prefix);
  return rest.length === 0 && family !== 0 && Number.isInteger(bits) && bits >= 0 && bits <= (family === 4 ? 32 : 128);
}

/** Rejects an IPAM answer whose values we would otherwise hand to iproute2. */
export function validateIpamResult(r: CniResult, type: string): CniResult {
  const bad = (what: string) => new CniError(ErrorCode.IpamFailure, `IPAM plugin "${type}" returned an invalid ${what}`);
  for (const ip of r.ips ?? []) {
    if (!isCidr(ip.address)) throw bad(`address ${JSON.stringify(ip.address)}`);
    if (ip.gateway !== undefined && isIP(ip.gateway) === 0) throw bad(`gateway ${JSON.stringify(ip.gateway)}`);
  }
  for (const route of r.routes ?? []) {
    if (!isCidr(route.dst)) throw bad(`route destination ${JSON.stringify(route.dst)}`);
    if (route.gw !== undefined && isIP(route.gw) === 0) throw bad(`route gateway ${JSON.stringify(route.gw)}`);
  }
  return r;
}

function errorCode(stdout: string): number | undefined {
  try {
    return (JSON.parse(stdout) as { code?: number }).code;
  } catch {
    return undefined;
  }
}

/** The same network config in another cniVersion (prevResult converted along). */
function withVersion(rawConfig: string, version: string): string {
  const conf = JSON.parse(rawConfig) as Record<string, unknown>;
  conf.cniVersion = version;
  if (conf.prevResult) conf.prevResult = convertResult(parseResult(conf.prevResult, version), version);
  return JSON.stringify(conf);
}

/** Runs the IPAM plugin named in the config, the way libcni's invoke.Delegate* does. */
export class IpamDelegate {
  constructor(
    private readonly runner: CommandRunner,
    private readonly io: DelegationIo = { env: process.env, stderr: (text) => void process.stderr.write(text) },
  ) {}

  /**
   * Runs the plugin; if it refuses the config's cniVersion (code 1, e.g. Debian's 1.0.0 plugins under a
   * 1.1.0 config), asks it for VERSION and runs it again with the newest version both speak.
   */
  private async invoke(command: 'ADD' | 'DEL' | 'CHECK', call: IpamCall): Promise<string> {
    const plugin = findPlugin(call.type, call.cniPath);
    const minimum = command === 'CHECK' ? '0.4.0' : '0.3.0';
    const known = knownVersions(plugin);
    if (known && !known.includes(call.cniVersion)) {
      const version = newestCommon(known, call.cniVersion, minimum);
      if (version) {
        const r = await this.exec(plugin, command, call, withVersion(call.rawConfig, version));
        if (r.exitCode === 0) return r.stdout;
        if (errorCode(r.stdout) !== ErrorCode.IncompatibleVersion) throw this.pluginError(call.type, command, r.stdout, r.stderr);
      }
      answeredVersions.delete(plugin); // the answer no longer holds: negotiate again
    }
    const first = await this.exec(plugin, command, call, call.rawConfig);
    if (first.exitCode === 0) return first.stdout;
    if (errorCode(first.stdout) === ErrorCode.IncompatibleVersion) {
      const { version, answer } = await this.commonVersion(plugin, call, minimum);
      if (version && version !== call.cniVersion) {
        const retry = await this.exec(plugin, command, call, withVersion(call.rawConfig, version));
        if (retry.exitCode === 0) return retry.stdout;
        throw this.pluginError(call.type, command, retry.stdout, retry.stderr);
      }
      const err = this.pluginError(call.type, command, first.stdout, first.stderr);
      throw new CniError(ErrorCode.IncompatibleVersion, `${err.message}; no common cniVersion between ${minimum} and ${call.cniVersion}`, `VERSION answered: ${answer.slice(0, 300)}`);
    }
    throw this.pluginError(call.type, command, first.stdout, first.stderr);
  }

  private async commonVersion(plugin: string, call: IpamCall, minimum: string): Promise<{ version?: string; answer: string; answered: boolean }> {
    const r = await this.exec(plugin, 'VERSION', call, JSON.stringify({ cniVersion: '0.3.0' }));
    const answer = `exit ${r.exitCode}: ${r.stdout.trim()} ${r.stderr.trim()}`;
    let theirs: unknown;
    try {
      theirs = (JSON.parse(r.stdout) as { supportedVersions?: unknown }).supportedVersions;
    } catch {
      // fall through
    }
    if (r.exitCode !== 0 || !Array.isArray(theirs)) return { answer, answered: false };
    const id = fileId(plugin);
    const versions = (theirs as unknown[]).filter((v): v is string => typeof v === 'string');
    if (id && (answeredVersions.size < 64 || answeredVersions.has(plugin))) answeredVersions.set(plugin, { id, versions });
    return { version: newestCommon(versions, call.cniVersion, minimum), answer, answered: true };
  }

  private async exec(plugin: string, command: string, call: IpamCall, input: string) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.io.env)) if (v !== undefined) env[k] = v;
    env.PATH ??= DEFAULT_PATH;
    env.CNI_COMMAND = command;
    env.CNI_PATH = call.cniPath.join(':');
    // GC and STATUS concern the network, not one attachment: the runtime's own (unset) values stay.
    if (command !== 'GC' && command !== 'STATUS') {
      Object.assign(env, { CNI_CONTAINERID: call.containerId, CNI_NETNS: call.netns, CNI_IFNAME: call.ifname, CNI_ARGS: call.cniArgs });
    }
    const r = await this.runner.run(plugin, [], { input, env, timeoutMs: IPAM_TIMEOUT_MS });
    // The runtime collects plugin stderr for its logs; the delegate's diagnostics belong there too.
    if (r.stderr) this.io.stderr(r.stderr.endsWith('\n') ? r.stderr : `${r.stderr}\n`);
    return r;
  }

  private pluginError(type: string, command: Command, stdout: string, stderr: string): CniError {
    // STATUS answers keep 50/51 (not available, limited connectivity); elsewhere only 11 (try again) keeps its code.
    const kept: readonly number[] = command === 'STATUS' ? [ErrorCode.PluginNotAvailable, ErrorCode.PluginNotAvailableLimitedConnectivity] : [ErrorCode.TryAgainLater];
    const fallback = command === 'STATUS' ? ErrorCode.PluginNotAvailable : ErrorCode.IpamFailure;
    try {
      const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
      if (typeof e.msg === 'string') {
        const code = typeof e.code === 'number' && kept.includes(e.code) ? e.code : fallback;
        return new CniError(code, `IPAM plugin "${type}" ${command} failed: ${e.msg}`, e.details ?? '');
      }
    } catch {
      // not a CNI error object
    }
    return new CniError(fallback, `IPAM plugin "${type}" ${command} failed: ${(stderr || stdout).trim().slice(0, 500)}`);
  }

  /**
   * GC and STATUS go only to a plugin that speaks a CNI version that has them (>= 1.1.0), in the newest
   * version both speak; older plugins (Debian 12's host-local and static speak up to 1.0.0) answer
   * "unknown CNI_COMMAND" and are not asked. Returns whether the plugin was asked.
   */
  private async invokeNetworkWide(command: 'GC' | 'STATUS', call: IpamCall): Promise<boolean> {
    const plugin = findPlugin(call.type, call.cniPath);
    const known = knownVersions(plugin);
    const { version, answer, answered } = known ? { version: newestCommon(known, call.cniVersion, GC_STATUS_MINIMUM), answer: '', answered: true } : await this.commonVersion(plugin, call, GC_STATUS_MINIMUM);
    if (!answered) throw new CniError(ErrorCode.IpamFailure, `IPAM plugin "${call.type}" does not answer VERSION with its supportedVersions (${answer.slice(0, 300)}); is it a CNI plugin?`);
    if (!version) return false;
    const r = await this.exec(plugin, command, call, version === call.cniVersion ? call.rawConfig : withVersion(call.rawConfig, version));
    if (r.exitCode !== 0) throw this.pluginError(call.type, command, r.stdout, r.stderr);
    return true;
  }

  async add(call: IpamCall): Promise<CniResult> {
    const out = await this.invoke('ADD', call);
    if (jsonDepth(out) > MAX_JSON_DEPTH) throw new CniError(ErrorCode.IpamFailure, `IPAM plugin "${call.type}" printed a result nested deeper than ${MAX_JSON_DEPTH} levels`);
    let raw: unknown;
    try {
      raw = JSON.parse(out);
    } catch {
      throw new CniError(ErrorCode.IpamFailure, `IPAM plugin "${call.type}" printed no JSON result`);
    }
    return validateIpamResult(parseResult(raw, call.cniVersion), call.type);
  }

  async del(call: IpamCall): Promise<void> {
    await this.invoke('DEL', call);
  }

  async check(call: IpamCall): Promise<void> {
    await this.invoke('CHECK', call);
  }

  /** GC with the runtime's config (its cni.dev/valid-attachments included). False if the plugin has no GC. */
  gc(call: IpamCall): Promise<boolean> {
    return this.invokeNetworkWide('GC', call);
  }

  /** STATUS: throws the plugin's error (50/51 kept, anything else 50). False if the plugin has no STATUS. */
  status(call: IpamCall): Promise<boolean> {
    return this.invokeNetworkWide('STATUS', call);
  }
}
