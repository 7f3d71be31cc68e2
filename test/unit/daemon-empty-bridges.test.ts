import { parseDaemonArgs } from '../../src/daemon/index';
import { EmptyBridgeRemover } from '../../src/daemon/empty-bridges';
import type { EmptyBridge, OvsDpuClient } from '../../src/dpu/ovs/client';
import { silentLogger } from './helpers/logger';

/** A client that records the removals it is asked for. */
function fakeClient(target = 'root@dpu:22'): { client: OvsDpuClient; removed: EmptyBridge[] } {
  const removed: EmptyBridge[] = [];
  const client = { target, removeEmptyBridge: async (b: EmptyBridge) => (removed.push(b), true) } as unknown as OvsDpuClient;
  return { client, removed };
}

const empty = (ports: string[]): EmptyBridge => ({ bridge: 'br-vni100', bridgeUuid: '11111111-1111-1111-1111-111111111111', ports });

describe('EmptyBridgeRemover', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('removes a bridge once the grace period is over, checked against the ports it had when last seen empty', async () => {
    const r = new EmptyBridgeRemover(1000, silentLogger());
    const { client, removed } = fakeClient();
    r.emptied(client, empty(['a']));
    await jest.advanceTimersByTimeAsync(600);
    r.emptied(client, empty(['a', 'b']));
    await jest.advanceTimersByTimeAsync(600);
    expect(removed).toEqual([]);
    await jest.advanceTimersByTimeAsync(500);
    expect(removed).toEqual([empty(['a', 'b'])]);
    expect(r.size).toBe(0);
  });

  it('flush removes what is waiting now; cancel forgets it', async () => {
    const r = new EmptyBridgeRemover(60000, silentLogger());
    const { client, removed } = fakeClient();
    r.emptied(client, empty(['a']));
    await r.flush();
    expect(removed).toHaveLength(1);
    r.emptied(client, empty(['c']));
    r.cancel();
    await jest.advanceTimersByTimeAsync(61000);
    expect(removed).toHaveLength(1);
  });

  it('a DPU that fails the removal is logged, not thrown (GC or the next DEL removes the bridge)', async () => {
    const r = new EmptyBridgeRemover(10, silentLogger());
    const client = { target: 't', removeEmptyBridge: () => Promise.reject(new Error('unreachable')) } as unknown as OvsDpuClient;
    r.emptied(client, empty([]));
    await jest.advanceTimersByTimeAsync(20);
    expect(r.size).toBe(0);
  });

  it('grace 0: no remover, the DEL removes the bridge itself', () => {
    expect(EmptyBridgeRemover.sinkFor(0, silentLogger())).toBeUndefined();
    expect(EmptyBridgeRemover.sinkFor(5, silentLogger())).toBeInstanceOf(EmptyBridgeRemover);
  });
});

describe('dpu-overlay daemon --empty-bridge-grace-ms', () => {
  it('defaults to 30 s and takes 0..600000', () => {
    expect(parseDaemonArgs([])).toMatchObject({ emptyBridgeGraceMs: 30000 });
    expect(parseDaemonArgs(['--empty-bridge-grace-ms', '0'])).toMatchObject({ emptyBridgeGraceMs: 0 });
    expect(() => parseDaemonArgs(['--empty-bridge-grace-ms', '-1'])).toThrow(/0 to 600000/);
    expect(() => parseDaemonArgs(['--empty-bridge-grace-ms', '1.5'])).toThrow(/0 to 600000/);
    expect(() => parseDaemonArgs(['--empty-bridge-grace-ms', '600001'])).toThrow(/0 to 600000/);
  });
});
