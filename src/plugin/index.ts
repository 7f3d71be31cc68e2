import type { PluginHandlers } from '../cni/skel';
import { cmdAdd } from './add';
import { cmdCheck } from './check';
import { type Deps, prepare } from './lifecycle';
import { cmdDel } from './del';
import { cmdGc } from './gc';
import { cmdStatus } from './status';
import { withCniErrorsFrom } from './layer-errors';

export type { Deps };

export function pluginHandlers(deps: Deps): PluginHandlers {
  return {
    add: (req) => withCniErrorsFrom(() => cmdAdd(prepare(req, deps))),
    del: (req) => withCniErrorsFrom(() => cmdDel(prepare(req, deps))),
    check: (req) => withCniErrorsFrom(() => cmdCheck(prepare(req, deps))),
    gc: (req) => withCniErrorsFrom(() => cmdGc(prepare(req, deps))),
    status: (req) => withCniErrorsFrom(() => cmdStatus(prepare(req, deps))),
  };
}
