import type { DpuConfig } from '../config/schema';
import { type DpuClient, type DpuFacts, type DpuFactsRequest, dpuTarget, type PlugRequest, type PlugResult, type PortOwner, type UnplugRequest, type VfFunctionTarget, type VfFunctionValues } from '../dpu/api';
import type { DaemonOp, OpArgs, OpResult } from '../protocol/operations';

/** How the daemon serves one DPU operation (DaemonServer: the SERVE table over its connection pool). */
export type ServeOp = <K extends DaemonOp>(op: K, dpu: DpuConfig, args: OpArgs<K>) => Promise<OpResult<K>>;

/**
 * DpuClient for commands the daemon runs itself: the same operations, batching and warm connections as
 * the DPU ops plugins send over the socket, without the socket.
 */
export class InProcessDpuClient implements DpuClient {
  readonly target: string;

  constructor(
    private readonly dpu: DpuConfig,
    private readonly serve: ServeOp,
  ) {
    this.target = dpuTarget(dpu);
  }

  plug(req: PlugRequest): Promise<PlugResult> {
    return this.serve('plug', this.dpu, [req]);
  }

  unplug(req: UnplugRequest): Promise<void> {
    return this.serve('unplug', this.dpu, [req]);
  }

  check(req: PlugRequest): Promise<void> {
    return this.serve('check', this.dpu, [req]);
  }

  gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number> {
    return this.serve('gc', this.dpu, [network, vni, keep]);
  }

  status(): Promise<void> {
    return this.serve('status', this.dpu, []);
  }

  facts(req: DpuFactsRequest): Promise<DpuFacts> {
    return this.serve('facts', this.dpu, [req]);
  }

  setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    return this.serve('setVfFunction', this.dpu, [target, values]);
  }

  /** The pool's connections outlive the command. */
  close(): void {}
}
