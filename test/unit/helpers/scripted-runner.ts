import type { CommandRunner, RunOptions, RunResult } from '../../../src/util/command-runner';

export interface RecordedCall {
  file: string;
  args: string[];
  opts: RunOptions;
}

/** Records every call and answers from a queue of results (or functions of the call); an empty queue is a test failure. */
export class ScriptedRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  constructor(
    private readonly answers: Array<RunResult | ((c: RecordedCall) => RunResult)> = [],
    readonly netdevs = new Set<string>(),
  ) {}
  hostNetdevs(): Set<string> {
    return new Set(this.netdevs);
  }
  push(...a: Array<RunResult | ((c: RecordedCall) => RunResult)>): this {
    this.answers.push(...a);
    return this;
  }
  async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const call = { file, args: [...args], opts };
    this.calls.push(call);
    const a = this.answers.shift();
    if (a === undefined) throw new Error(`ScriptedRunner: unexpected ${file} ${args.join(' ')}`);
    return typeof a === 'function' ? a(call) : a;
  }
}

export const ok = (stdout = ''): RunResult => ({ exitCode: 0, stdout, stderr: '' });
export const fail = (stderr: string, exitCode = 1, stdout = ''): RunResult => ({ exitCode, stdout, stderr });
