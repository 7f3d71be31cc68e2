import type { EmptyBridge, EmptyBridgeSink, OvsDpuClient } from '../dpu/ovs/client';
import type { Logger } from '../log';

/**
 * The daemon's removal of emptied VNI bridges, one DPU connection's worth: a DEL answers as soon as its port is
 * gone, and the bridge goes once it has stayed empty for graceMs (a new container on the VNI in that time reuses
 * it, tunnels included). The removal is the same owner-checked transaction as the inline one: if the bridge's
 * ports changed since it was seen empty (an ADD plugged one), it is kept. graceMs 0: removed inline, before the
 * DEL answers, as the standalone plugin does.
 */
export class EmptyBridgeRemover implements EmptyBridgeSink {
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; run: () => Promise<void> }>();

  constructor(
    private readonly graceMs: number,
    private readonly log: Logger,
  ) {}

  /** undefined when bridges are removed inline (graceMs 0). */
  static sinkFor(graceMs: number, log: Logger): EmptyBridgeRemover | undefined {
    return graceMs > 0 ? new EmptyBridgeRemover(graceMs, log) : undefined;
  }

  emptied(client: OvsDpuClient, b: EmptyBridge): void {
    // Seen empty again (another DEL on the VNI): the newer port set is the one to check against.
    const key = `${client.target} ${b.bridge}`;
    clearTimeout(this.pending.get(key)?.timer);
    const run = async () => {
      if (this.pending.get(key)?.run !== run) return;
      this.pending.delete(key);
      try {
        await client.removeEmptyBridge(b, `removed VNI bridge empty for ${this.graceMs} ms`);
      } catch (err) {
        // The DPU is unreachable: the next DEL that empties the bridge, or GC, removes it.
        this.log.warn({ dpu: client.target, bridge: b.bridge, err: (err as Error).message }, 'could not remove an empty VNI bridge; the next DEL emptying it or GC will');
      }
    };
    this.pending.set(key, { timer: setTimeout(() => void run(), this.graceMs), run });
    this.log.debug({ dpu: client.target, bridge: b.bridge, graceMs: this.graceMs }, 'VNI bridge empty; removing it after the grace period unless a container joins');
  }

  get size(): number {
    return this.pending.size;
  }

  /** At shutdown: what is still waiting is removed now (owner-checked as ever), so a stopped daemon leaves no bridge. */
  async flush(): Promise<void> {
    const runs = [...this.pending.values()];
    for (const p of runs) clearTimeout(p.timer);
    await Promise.all(runs.map((p) => p.run()));
  }

  /** Forgets what is waiting (the connection is gone); GC removes what is left. */
  cancel(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
