/**
 * Undo commands registered as things are built, run last-first at teardown (end of a sample, failure or
 * Ctrl-C). They run through a Processes of their own, so teardown still works after the harness's main
 * Processes has been aborted.
 */
import { Processes } from './exec';

interface Entry {
  what: string;
  argv: string[];
  input?: string;
  /** report a non-zero exit (most undo commands are idempotent deletes that may find nothing) */
  check: boolean;
}

export class Cleanup {
  private readonly stack: Entry[] = [];
  private readonly procs = new Processes();

  constructor(private readonly log: (line: string) => void) {}

  push(what: string, argv: string[], opts: { input?: string; check?: boolean } = {}): void {
    this.stack.push({ what, argv, input: opts.input, check: opts.check ?? false });
  }

  /** a position to tear down to with `runDownTo` */
  mark(): number {
    return this.stack.length;
  }

  async runDownTo(mark = 0): Promise<void> {
    while (this.stack.length > mark) {
      const e = this.stack.pop() as Entry;
      const r = await this.procs.run(e.argv, e.input);
      if (e.check && r.code !== 0) this.log(`teardown of ${e.what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    }
  }

  get pending(): string[] {
    return this.stack.map((e) => e.what);
  }
}
