import { accessSync, constants } from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors';
import { type Context, withDpu } from './context';

/** STATUS (CNI 1.1): can this node serve ADD? Code 50 with the reason if not. */
export async function cmdStatus(ctx: Context): Promise<void> {
  const { conf, state } = ctx;
  const unavailable = (why: string) => new CniError(ErrorCode.PluginNotAvailable, why);
  try {
    state.ensure();
    accessSync(conf.stateDir, constants.W_OK);
  } catch (err) {
    throw unavailable(`stateDir ${conf.stateDir} is not writable: ${(err as Error).message}`);
  }
  if (conf.pf) {
    try {
      ctx.sysfs.listVfs(conf.pf, conf.pfIndex);
    } catch (err) {
      throw unavailable((err as Error).message);
    }
  }
  await withDpu(ctx, async (client) => {
    if (!client) return;
    try {
      await ctx.timer.step('dpu', () => client.status());
    } catch (err) {
      throw unavailable(`DPU ${client.target} is not usable: ${(err as Error).message}`);
    }
  });
}
