import { CniError, ErrorCode } from './errors';
import type { CniInterface, CniIpConfig, CniResult, CniRoute } from './types';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_VERSION = '1.1.0';

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function requireSupportedVersion(v: unknown): string {
  if (v === undefined || v === '') {
    throw new CniError(ErrorCode.IncompatibleVersion, 'network config has no cniVersion; supported: ' + SUPPORTED_VERSIONS.join(', '));
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `unsupported cniVersion ${JSON.stringify(v)}; supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  return v;
}

/** CHECK appeared in 0.4.0, GC and STATUS in 1.1.0. */
export function requireVersionForCommand(command: string, version: string): void {
  const minimum: Record<string, string> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };
  const min = minimum[command];
  if (min && compareVersions(version, min) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `${command} requires cniVersion ${min} or later, config has ${version}`,
    );
  }
}

export function versionInfo(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}

function ipFamily(address: string): '4' | '6' {
  return address.includes(':') ? '6' : '4';
}

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

const IFACE_1_0 = ['name', 'mac', 'sandbox'] as const;
const ROUTE_1_0 = ['dst', 'gw'] as const;

/**
 * Converts a 1.1.0-shaped result to the version the runtime asked for.
 * Fields a version does not define are dropped; 0.3.x/0.4.0 IPs carry "version".
 */
export function convertResult(result: CniResult, to: string): Record<string, unknown> {
  if (to === '1.1.0') return { ...result, cniVersion: to };
  const interfaces = result.interfaces?.map((i: CniInterface) => pick(i, IFACE_1_0));
  const routes = result.routes?.map((r: CniRoute) => pick(r, ROUTE_1_0));
  const out: Record<string, unknown> = { cniVersion: to };
  if (interfaces) out.interfaces = interfaces;
  if (compareVersions(to, '1.0.0') >= 0) {
    if (result.ips) out.ips = result.ips;
  } else if (result.ips) {
    out.ips = result.ips.map((ip: CniIpConfig) => ({ version: ipFamily(ip.address), ...ip }));
  }
  if (routes) out.routes = routes;
  if (result.dns) out.dns = result.dns;
  return out;
}

/** Reads a result of any supported version (prevResult, IPAM output) into the 1.1.0 shape. */
export function parseResult(raw: unknown, fallbackVersion: string): CniResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(ErrorCode.DecodingFailure, 'result is not a JSON object');
  }
  const r = raw as Record<string, unknown>;
  const version = typeof r.cniVersion === 'string' ? r.cniVersion : fallbackVersion;
  if (!isSupportedVersion(version)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `cannot read a result of cniVersion ${JSON.stringify(version)}`);
  }
  const out: CniResult = { cniVersion: CURRENT_VERSION };
  if (Array.isArray(r.interfaces)) out.interfaces = r.interfaces as CniInterface[];
  if (Array.isArray(r.ips)) {
    out.ips = (r.ips as Array<CniIpConfig & { version?: string }>).map(({ version: _v, ...ip }) => ip);
  }
  if (Array.isArray(r.routes)) out.routes = r.routes as CniRoute[];
  if (r.dns && typeof r.dns === 'object') out.dns = r.dns as CniResult['dns'];
  return out;
}
