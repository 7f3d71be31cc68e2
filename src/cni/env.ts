import { statfsSync } from 'node:fs';
import { NSFS_MAGIC } from '../util/nsfs';
import { CniError, ErrorCode } from './errors';
import type { CniCommand } from './types';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  /** Empty when the runtime did not pass one (legal for DEL). */
  netns: string;
  ifname: string;
  args: Record<string, string>;
  /** CNI_ARGS as received, for delegation. */
  argsRaw: string;
  path: string[];
}

type EnvSource = Record<string, string | undefined>;

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

export function parseCommand(env: EnvSource): CniCommand {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(ErrorCode.InvalidEnvironment, 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND ${JSON.stringify(command)}; expected one of ${COMMANDS.join(', ')}`);
  }
  return command as CniCommand;
}

/** CNI_ARGS: "K1=V1;K2=V2". */
export function parseCniArgs(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: malformed pair ${JSON.stringify(pair)} (expected KEY=VALUE)`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** SPEC: alphanumeric start, then alphanumerics, underscore, dot, hyphen. */
export function validateContainerId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) || id.length > 256) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(id.slice(0, 80))} is invalid: it must start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 256)`);
  }
}

/** Go's unicode.IsSpace, which libcni applies to every rune of CNI_IFNAME. */
const UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/**
 * What both the kernel (dev_valid_name) and libcni accept: 1-15 bytes, not "." or "..", no "/", ":", NUL or
 * whitespace. The kernel's isspace() also takes byte 0xa0, which some UTF-8 characters contain; "%" makes
 * the kernel pick a name from a template instead.
 * Quotes, "#", "\\" and "@" are legal and must work.
 */
/** What is wrong with an interface name, by the kernel's and libcni's rules; undefined if nothing. */
export function ifnameProblem(name: string): string | undefined {
  const bytes = Buffer.from(name);
  return name.length === 0 ? 'is empty'
    : bytes.length > 15 ? 'is longer than 15 bytes'
    : name === '.' || name === '..' ? 'must not be "." or ".."'
    : /[/:\0]/.test(name) || UNICODE_SPACE.test(name) || bytes.includes(0xa0) ? 'must not contain "/", ":", NUL or whitespace'
    // The kernel takes a name with "%" as a template ("net%d" becomes net0): the interface would not be called this.
    : name.includes('%') ? 'must not contain "%" (the kernel reads it as a name template such as net%d)'
    : undefined;
}

export function validateIfname(name: string): void {
  const problem = ifnameProblem(name);
  if (problem) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(name.slice(0, 40))} ${problem}`);
}

export function validateNetnsPath(path: string): void {
  if (!path.startsWith('/') || /[\0-\x1f]/.test(path) || path.length > 4096) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS ${JSON.stringify(path.slice(0, 80))} must be an absolute path such as /run/netns/NAME or /proc/PID/ns/net`);
  }
  let fsType: number;
  try {
    fsType = statfsSync(path).type;
  } catch {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS ${path} does not exist: the container's network namespace is gone or was never created`);
  }
  if (fsType !== NSFS_MAGIC) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS ${path} is not a network namespace (expected an nsfs mount such as /run/netns/NAME or /proc/PID/ns/net)`);
  }
}

export function parseEnv(env: EnvSource): CniEnv {
  const command = parseCommand(env);
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `${command} requires ${missing.join(', ')} to be set`);
  }
  const parsed: CniEnv = {
    command,
    containerId: env.CNI_CONTAINERID ?? '',
    netns: env.CNI_NETNS ?? '',
    ifname: env.CNI_IFNAME ?? '',
    args: parseCniArgs(env.CNI_ARGS),
    argsRaw: env.CNI_ARGS ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
  if (parsed.containerId) validateContainerId(parsed.containerId);
  if (parsed.ifname) validateIfname(parsed.ifname);
  if (command === 'ADD' || command === 'CHECK') validateNetnsPath(parsed.netns);
  return parsed;
}
