import { accessSync, constants } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../cni/errors';
import type { CniResult } from '../cni/types';
import { parseResult } from '../cni/version';
import type { CommandRunner } from './runner';

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

const IPAM_TIMEOUT_MS = 60000;

export function findPlugin(type: string, cniPath: string[]): string {
  for (const dir of cniPath) {
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

/** Runs the IPAM plugin named in the config, the way libcni's invoke.Delegate* does. */
export class IpamDelegate {
  constructor(private readonly runner: CommandRunner) {}

  private async invoke(command: 'ADD' | 'DEL' | 'CHECK', call: IpamCall): Promise<string> {
    const plugin = findPlugin(call.type, call.cniPath);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifname,
      CNI_ARGS: call.cniArgs,
      CNI_PATH: call.cniPath.join(':'),
    };
    const r = await this.runner.run(plugin, [], { input: call.rawConfig, env, timeoutMs: IPAM_TIMEOUT_MS });
    if (r.exitCode !== 0) throw this.pluginError(call.type, command, r.stdout, r.stderr);
    return r.stdout;
  }

  private pluginError(type: string, command: string, stdout: string, stderr: string): CniError {
    try {
      const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
      if (typeof e.msg === 'string') {
        const code = typeof e.code === 'number' && e.code === ErrorCode.TryAgainLater ? e.code : ErrorCode.IpamFailure;
        return new CniError(code, `IPAM plugin "${type}" ${command} failed: ${e.msg}`, e.details ?? '');
      }
    } catch {
      // not a CNI error object
    }
    return new CniError(ErrorCode.IpamFailure, `IPAM plugin "${type}" ${command} failed: ${(stderr || stdout).trim().slice(0, 500)}`);
  }

  async add(call: IpamCall): Promise<CniResult> {
    const out = await this.invoke('ADD', call);
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
}
