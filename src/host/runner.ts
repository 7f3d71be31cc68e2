import execa from 'execa';
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

export class ExecaRunner implements CommandRunner {
  async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const r = await execa(file, [...args], {
      reject: false,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
      env: opts.env,
      extendEnv: opts.env === undefined,
      timeout: opts.timeoutMs,
      stripFinalNewline: false,
    });
    if (r.failed && r.exitCode === undefined) {
      return { exitCode: 127, stdout: r.stdout ?? '', stderr: r.stderr || (r as { shortMessage?: string }).shortMessage || `cannot run ${file}` };
    }
    return { exitCode: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
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
