import type { PluginHandlers } from '../cni/skel';
import { cmdAdd } from './add';
import { cmdCheck } from './check';
import { type Deps, prepare } from './lifecycle';
import { cmdDel } from './del';
import { cmdGc } from './gc';
import { cmdStatus } from './status';

export type { Deps };

export function pluginHandlers(deps: Deps): PluginHandlers {
  return {
    add: (req) => cmdAdd(prepare(req, deps)),
    del: (req) => cmdDel(prepare(req, deps)),
    check: (req) => cmdCheck(prepare(req, deps)),
    gc: (req) => cmdGc(prepare(req, deps)),
    status: (req) => cmdStatus(prepare(req, deps)),
  };
}
