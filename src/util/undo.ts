import type { Logger } from 'pino';

/** Compensating actions of a multi-step operation, run newest first when it fails. */
export class UndoStack {
  private readonly actions: Array<{ what: string; fn: () => Promise<void> | void }> = [];

  constructor(private readonly log: Logger) {}

  push(what: string, fn: () => Promise<void> | void): void {
    this.actions.push({ what, fn });
  }

  /** Runs every action even when some fail: a failed ADD must leave nothing behind. */
  async run(): Promise<void> {
    for (const { what, fn } of this.actions.reverse()) {
      try {
        await fn();
        this.log.debug({ step: what }, 'rolled back');
      } catch (err) {
        this.log.error({ step: what, err: (err as Error).message }, 'rollback step failed');
      }
    }
    this.actions.length = 0;
  }
}
