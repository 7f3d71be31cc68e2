import type { DpuConfig } from '../config/schema';
import type { Logger } from '../log';
import type { DpuClient } from './client';
import { OvsDpuClient } from './ovs-client';
import { SshTransport } from './ssh';

export function sshDpuClient(conf: DpuConfig, log: Logger): DpuClient {
  return new OvsDpuClient(new SshTransport(conf), conf, log);
}
