import type { PluginHandlers } from '../cni/skel';
import { cmdAdd } from './add';
import { cmdCheck } from './check';
import { type Deps, prepare } from './lifecycle';
import { cmdDel } from './del';
import { cmdGc } from './gc';
import { cmdStatus } from './status';
import { mappingErrors } from './errors';

export type { Deps };

export function pluginHandlers(deps: Deps): PluginHandlers {
  return {
    add: (req) => mappingErrors(() => cmdAdd(prepare(req, deps))),
    del: (req) => mappingErrors(() => cmdDel(prepare(req, deps))),
    check: (req) => mappingErrors(() => cmdCheck(prepare(req, deps))),
    gc: (req) => mappingErrors(() => cmdGc(prepare(req, deps))),
    status: (req) => mappingErrors(() => cmdStatus(prepare(req, deps))),
  };
}
