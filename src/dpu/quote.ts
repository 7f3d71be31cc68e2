/** POSIX shell single-quoting: the only way values reach the DPU's command line. */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export type Argv = readonly string[];

/** Joins commands with && so the chain stops at the first failure. */
export function commandLine(commands: readonly Argv[]): string {
  return commands.map((argv) => argv.map(shellQuote).join(' ')).join(' && ');
}

/**
 * An OVSDB string atom as ovs-vsctl parses it (a JSON string literal). DEL and the C1 controls are escaped too
 * (JSON leaves them raw): legal in an interface name, they would otherwise reach the DPU as control characters,
 * which the guard refuses.
 */
export function ovsString(value: string): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** JSON as ovsString writes strings (DEL and the C1 controls escaped; they only occur inside strings): OVSDB transactions. */
export function ovsJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
