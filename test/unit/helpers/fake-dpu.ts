import type { DpuClient, DpuFacts, DpuFactsRequest, PlugRequest, PlugResult, PortOwner, UnplugRequest, VfFunctionTarget, VfFunctionValues } from '../../../src/dpu/api';
import type { Uplink, VfFunctionState } from '../../../src/dpu/vf-function';

type Method = 'plug' | 'unplug' | 'check' | 'gc' | 'status' | 'facts' | 'setVfFunction';

/** A DpuClient that records every call and can be told to fail; it keeps the plugged ports like the DPU would. */
export class FakeDpu implements DpuClient {
  constructor(readonly target = 'root@192.0.2.10:22') {}

  readonly calls: Array<{ method: Method; arg: unknown }> = [];
  readonly failures: Partial<Record<Method, Error>> = {};
  readonly ports = new Map<string, PlugRequest>();
  closed = 0;
  uplink: Uplink | undefined = { dev: 'br-phy', mtu: 1500 };
  /** The VF function interface this DPU offers (undefined: NIC mode); setVfFunction writes its values. */
  vfFunction: VfFunctionState | undefined;
  gcRemoves = 0;
  /** OVN mode: the DPU's ovn-encap-ip/-type that facts reports. */
  encap: DpuFacts['encap'];
  private seq = 0;

  private enter(method: Method, arg: unknown): void {
    this.calls.push({ method, arg });
    const f = this.failures[method];
    if (f) throw f;
  }

  callsOf(method: Method): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.arg);
  }

  async plug(req: PlugRequest): Promise<PlugResult> {
    this.enter('plug', req);
    const portUuid = `00000000-0000-4000-8000-${String(++this.seq).padStart(12, '0')}`;
    this.ports.set(portUuid, req);
    // OVN mode (the request carries the addresses): br-int and a logical port
    if (req.mac !== undefined) return { bridge: 'br-int', portUuid, lsp: { uuid: `10000000-0000-4000-8000-${String(this.seq).padStart(12, '0')}`, name: `dpuo-dpuo-a-${String(this.seq).padStart(16, '0')}` } };
    return { bridge: `br-vni${req.vni}`, portUuid };
  }

  async unplug(req: UnplugRequest): Promise<void> {
    this.enter('unplug', req);
    if (req.portUuid) this.ports.delete(req.portUuid);
    else for (const [u, p] of this.ports) if (p.containerId === req.containerId && p.ifname === req.ifname && p.network === req.network) this.ports.delete(u);
  }

  async check(req: PlugRequest): Promise<void> {
    this.enter('check', req);
  }

  async gc(network: string, vni: number, keep: ReadonlyArray<Pick<PortOwner, 'containerId' | 'ifname'>>): Promise<number> {
    this.enter('gc', { network, vni, keep });
    return this.gcRemoves;
  }

  async status(): Promise<void> {
    this.enter('status', undefined);
  }

  async facts(req: DpuFactsRequest): Promise<DpuFacts> {
    this.enter('facts', req);
    return { uplink: this.uplink, ...(this.encap ? { encap: this.encap } : {}), ...(req.vfFunction && this.vfFunction ? { vfFunction: { target: this.vfFunction.target, values: { ...this.vfFunction.values } } } : {}) };
  }

  async setVfFunction(target: VfFunctionTarget, values: VfFunctionValues): Promise<void> {
    this.enter('setVfFunction', { target, values });
    if (this.vfFunction) this.vfFunction.values = { ...this.vfFunction.values, ...values };
  }

  close(): void {
    this.closed++;
  }
}
