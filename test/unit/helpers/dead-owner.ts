import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AllocationOwner, StateStore } from '../../../src/store/attachments';

/** A process identity no running process has: what the records of a killed ADD look like (pid 1 never has this start time). */
export const DEAD_OWNER = { pid: 1, startTime: Number.MAX_SAFE_INTEGER };

/** A claim left by an ADD that was killed (tryAllocate from the test process would be a live claim). */
export function deadClaim(state: StateStore, pci: string, owner: Omit<AllocationOwner, 'pid' | 'startTime'>): void {
  writeFileSync(join(state.allocationsDir, pci), JSON.stringify({ ...owner, ...DEAD_OWNER }), { mode: 0o600 });
}
