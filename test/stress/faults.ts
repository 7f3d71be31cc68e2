import type { Testbed } from '../e2e/helpers';
import { newTally, type Tally } from './common';

export async function faults(_tb: Testbed, _o: Record<string, unknown>): Promise<Tally> {
  return newTally('faults');
}
