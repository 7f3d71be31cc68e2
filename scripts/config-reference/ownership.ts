import { FIELD_OWNERSHIP } from '../../src/config/ownership';

/** Which file may set a field: the "Set in" column of the configuration reference, read from the one ownership table. */
export function whoSets(path: string): string {
  const [top, second] = path.split('.');
  const key = top === 'dpu' && second !== undefined ? `dpu.${second}` : (top as string);
  const entry = FIELD_OWNERSHIP.find((f) => f.field === key);
  if (!entry) return key === 'dpu' ? 'per field' : 'node file';
  return entry.owner === 'network' ? 'network' : entry.delegable ? 'node file (delegable)' : 'node file';
}
