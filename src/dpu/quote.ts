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

/** An OVSDB string atom as ovs-vsctl parses it (a JSON string literal). */
export function ovsString(value: string): string {
  return JSON.stringify(value);
}
