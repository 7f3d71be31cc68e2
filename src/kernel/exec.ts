import { readFileSync } from 'node:fs';
import { KernelError, kindOfStderr } from './errors';
import type { CommandRunner, RunOptions, RunResult } from '../util/command-runner';

/** More than any ip, nsenter or IPAM answer: a child printing without end is cut off, not buffered. */
export const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

type Execa = typeof import('execa').execa;
let execaLoaded: Promise<Execa> | undefined;
/** Loaded on first use: VERSION and --version never start a child and do not pay for execa. */
function loadExeca(): Promise<Execa> {
  return (execaLoaded ??= import('execa').then((m) => m.execa));
}

/**
 * /proc/self/net/dev lists the devices of the namespace this thread is in, whatever /sys shows (a /sys
 * mounted for another namespace, as under `nsenter --net`). The first two lines are headers.
 */
export function parseProcNetDev(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon > 0) names.add(line.slice(0, colon).trim());
  }
  return names;
}

/** Runs commands through execa: no shell, bounded output, a timeout that kills, stdin optional. */
export class ProcessRunner implements CommandRunner {
  constructor(private readonly maxOutputBytes = MAX_OUTPUT_BYTES) {
    // Evaluated now, before a command starts its SSH handshake: evaluating execa later, in one block of the
    // event loop in the middle of the handshake, made concurrent ADDs on a busy host miss its timeout.
    loadExeca().catch(() => undefined);
  }

  async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const execa = await loadExeca();
    const child = execa(file, [...args], {
      env: opts.env ?? (process.env as Record<string, string>),
      extendEnv: false,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
      reject: false,
      stripFinalNewline: false,
      maxBuffer: this.maxOutputBytes,
    });
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
          // A grandchild may still hold the pipes; without this the result would wait for it.
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, opts.timeoutMs)
      : undefined;
    const r = await child.finally(() => clearTimeout(timer));
    const stdout = typeof r.stdout === 'string' ? r.stdout : '';
    const stderr = typeof r.stderr === 'string' ? r.stderr : '';
    const failure = timedOut
      ? `timed out after ${opts.timeoutMs} ms`
      : r.isMaxBuffer
        ? `printed more than ${this.maxOutputBytes} bytes`
        : typeof r.exitCode !== 'number'
          ? r.signal ? `killed by ${r.signal}` : r.cause instanceof Error ? r.cause.message : r.shortMessage
          : undefined;
    // Otherwise the exit code stands, also when the child exited without reading its stdin (an IPAM VERSION: EPIPE).
    if (failure === undefined) return { exitCode: r.exitCode ?? 0, stdout, stderr };
    return { exitCode: 127, stdout, stderr: `${file}: ${failure}${stderr ? `: ${stderr}` : ''}` };
  }

  hostNetdevs(): Set<string> {
    return parseProcNetDev(readFileSync('/proc/self/net/dev', 'utf8'));
  }
}

/** A host command that exited non-zero; its kind is read from what it printed. */
export class CommandError extends KernelError {
  constructor(
    readonly file: string,
    readonly args: readonly string[],
    readonly result: RunResult,
  ) {
    super(kindOfStderr(result.stderr), `${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${(result.stderr.trim() || result.stdout.trim()).slice(0, 500)}`);
    this.name = 'CommandError';
  }
}

/** Runs and throws CommandError on a non-zero exit. */
export async function runChecked(runner: CommandRunner, file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const r = await runner.run(file, args, opts);
  if (r.exitCode !== 0) throw new CommandError(file, args, r);
  return r;
}
