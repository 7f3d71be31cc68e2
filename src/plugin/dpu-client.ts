import type { DpuConfig } from '../config/schema';
import type { Logger } from '../log';
import type { DpuClient } from '../dpu/api';
import { DaemonDpuClient } from '../daemon/client';
import { OvsDpuClient } from '../dpu/ovs/client';
import { SshTransport } from '../dpu/ssh';

/** The plugin picks how it reaches the DPU: dpu/ knows nothing of the daemon. */
export function sshDpuClient(conf: DpuConfig, log: Logger): DpuClient {
  return new OvsDpuClient(new SshTransport(conf), conf, log);
}

/** Through the daemon when dpu.daemonSocket is set (falling back to direct SSH), else direct. */
export function dpuClientFor(conf: DpuConfig, log: Logger): DpuClient {
  return conf.daemonSocket ? new DaemonDpuClient(conf, log, () => sshDpuClient(conf, log)) : sshDpuClient(conf, log);
}
