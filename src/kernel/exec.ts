import { spawn } from 'node:child_process';
import { CniError, ErrorCode } from '../cni/errors';

export interface RunOptions {
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The boundary to the outside world on the host: unit tests record instead of executing. */
export interface CommandRunner {
  run(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/**
 * Runs commands with child_process.spawn. (execa 5, the last CommonJS release, reports EPIPE as a failure
 * and loses the exit code when a plugin exits without reading stdin, as CNI VERSION does.)
 */
export class ProcessRunner implements CommandRunner {
  run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn(file, [...args], { env: opts.env ?? process.env, stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let failure: string | undefined;
      const timer = opts.timeoutMs
        ? setTimeout(() => {
            failure = `timed out after ${opts.timeoutMs} ms`;
            child.kill('SIGKILL');
            // A grandchild may still hold the pipes; without this 'close' would wait for it.
            child.stdout?.destroy();
            child.stderr?.destroy();
          }, opts.timeoutMs)
        : undefined;
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => {
        failure = e.message;
      });
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8');
        resolve({ exitCode: failure || code === null ? 127 : code, stdout: Buffer.concat(out).toString('utf8'), stderr: failure ? `${file}: ${failure}${stderr ? `: ${stderr}` : ''}` : stderr });
      });
      if (child.stdin) {
        child.stdin.on('error', () => undefined); // EPIPE: the command did not want its stdin
        child.stdin.end(opts.input);
      }
    });
  }
}

/** A host command that exited non-zero: an I/O failure (code 5) unless a caller knows better. */
export class CommandError extends CniError {
  constructor(
    readonly file: string,
    readonly args: readonly string[],
    readonly result: RunResult,
  ) {
    super(ErrorCode.IoFailure, `${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${(result.stderr.trim() || result.stdout.trim()).slice(0, 500)}`);
  }
}

/** Runs and throws CommandError on a non-zero exit. */
export async function runChecked(runner: CommandRunner, file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  const r = await runner.run(file, args, opts);
  if (r.exitCode !== 0) throw new CommandError(file, args, r);
  return r;
}
