import { NODE_FILE_KEYS } from '../../src/config/node-file';

/**
 * Which file may set a field: the "Set in" column of the configuration reference.
 *
 * THE ONE PLACE TO POINT AT THE OWNERSHIP TABLE. Until the trust split's table (the fields a network config may
 * set versus those only the node owner's file may) lands, this reads the node file's key list
 * (src/config/node-file.ts NODE_FILE_KEYS): those keys may come from either file, the network config winning
 * field by field; every other field belongs to the network config.
 *
 * When src/config/ownership.ts (FIELD_OWNERSHIP, keyed by top-level name or dpu.<key>) is on this branch,
 * replace the body with:
 *
 *   const [top, second] = path.split('.');
 *   const key = top === 'dpu' && second !== undefined ? `dpu.${second}` : (top as string);
 *   const entry = FIELD_OWNERSHIP.find((f) => f.field === key);
 *   if (!entry) return key === 'dpu' ? 'per field' : 'network';
 *   return entry.owner === 'network' ? 'network' : entry.delegable ? 'node file (delegable)' : 'node file';
 *
 * then run npm run docs:config.
 */
export function whoSets(path: string): string {
  const top = path.split('.')[0] as string;
  return (NODE_FILE_KEYS as readonly string[]).includes(top) ? 'node file or network' : 'network';
}
