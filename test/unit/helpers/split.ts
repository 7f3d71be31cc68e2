import { loadNetConf, type NetConf } from '../../../src/config/load';
import { splitByOwner } from '../../../src/config/ownership';

/** Loads a config written the old way (every value in one object) as its node owner would split it: node fields in the node file. */
export function loadSplit(conf: Record<string, unknown>, args: Record<string, string> = {}, path = '/etc/cni/dpu-overlay/node.json'): NetConf {
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) return loadNetConf(conf, args);
  const { network, node } = splitByOwner(conf);
  return loadNetConf(network, args, { path, values: node });
}
