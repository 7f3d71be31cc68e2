import { formatFindings, pluginConfigsIn } from '../../src/cli/doctor';
import { cniCodeOf } from '../../src/daemon/cni-exec';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from 'node:http';
import { ATTACHMENTS_TTL_MS, DaemonMetrics, parseMetricsAddress, serveMetrics } from '../../src/daemon/metrics';
import { countAttachments, formatNodeStatus } from '../../src/daemon/node-status';
import { parseDaemonArgs } from '../../src/daemon';
import { hostBootId, recordedNetnsAlive } from '../../src/kernel/netns';
import { usableNetns } from '../../src/kernel/vf';

describe('daemon metrics', () => {
  it('--metrics-address takes HOST:PORT and [IPv6]:PORT only', () => {
    expect(parseMetricsAddress('127.0.0.1:9741')).toEqual({ host: '127.0.0.1', port: 9741 });
    expect(parseMetricsAddress('[::1]:9741')).toEqual({ host: '::1', port: 9741 });
    for (const bad of ['9741', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', ':9741', 'a:b:9741']) expect(() => parseMetricsAddress(bad)).toThrow(/HOST:PORT/);
    expect((parseDaemonArgs(['--metrics-address', '127.0.0.1:1234']) as { metrics: unknown }).metrics).toEqual({ host: '127.0.0.1', port: 1234 });
    expect((parseDaemonArgs([]) as { metrics?: unknown }).metrics).toBeUndefined();
  });

  it('exposes the series with their labels; gauges are read at scrape time', async () => {
    let connected = true;
    const m = new DaemonMetrics({ dpus: () => [{ dpu: 'root@d:22', connected }], attachments: () => [{ network: 'n', vni: 7, count: 2 }] });
    m.cniRequest('ADD', 0, 0.2);
    m.cniRequest('ADD', 7, 0.001);
    m.cniSteps('ADD', { dpu: 12, ipam: 3 });
    m.dpuRoundTrip('root@d:22', 'plug', 0.01);
    m.replugged('root@d:22');
    let text = await m.registry.metrics();
    expect(text).toContain('dpu_overlay_cni_requests_total{command="ADD",code="0"} 1');
    expect(text).toContain('dpu_overlay_cni_requests_total{command="ADD",code="7"} 1');
    expect(text).toContain('dpu_overlay_cni_request_duration_seconds_count{command="ADD"} 2');
    expect(text).toContain('dpu_overlay_cni_step_duration_seconds_count{command="ADD",step="dpu"} 1');
    expect(text).toContain('dpu_overlay_dpu_round_trip_seconds_count{dpu="root@d:22",op="plug"} 1');
    expect(text).toContain('dpu_overlay_dpu_replugs_total{dpu="root@d:22"} 1');
    expect(text).toContain('dpu_overlay_attachments{network="n",vni="7"} 2');
    expect(text).toContain('dpu_overlay_dpu_connected{dpu="root@d:22"} 1');
    connected = false;
    text = await m.registry.metrics();
    expect(text).toContain('dpu_overlay_dpu_connected{dpu="root@d:22"} 0');
  });

  it('a command\'s code is 0 on success, else its error JSON\'s code', () => {
    expect(cniCodeOf(0, '{}')).toBe(0);
    expect(cniCodeOf(1, '{"code":11,"msg":"x"}')).toBe(11);
    expect(cniCodeOf(1, 'not json')).toBe(1);
  });
});

describe('status', () => {
  it('counts attachments holding a VF by network and VNI, and prints a table', () => {
    const base = { ifname: 'net1', vf: '0000:03:00.2', netns: '/run/netns/x', stateDir: '/s' };
    const atts = [
      { ...base, containerId: 'a', network: 'n', vni: 1, state: 'ready' as const },
      { ...base, containerId: 'b', network: 'n', vni: 1, state: 'adding' as const },
      { ...base, containerId: 'c', network: 'n', vni: 1, state: 'del-pending' as const },
      { ...base, containerId: 'd', network: 'm', vni: 2, state: 'ready' as const, representor: 'pf0vf1' },
    ];
    expect(countAttachments(atts)).toEqual([{ network: 'n', vni: 1, count: 2 }, { network: 'm', vni: 2, count: 1 }]);
    const text = formatNodeStatus({ source: 'records', version: '0', dpus: [], attachments: atts, invalidRecords: [{ file: '/s/x', problem: 'bad' }] });
    expect(text).toMatch(/^daemon: not running/);
    expect(text).toContain('pf0vf1');
    expect(text).toContain('INVALID RECORD /s/x: bad');
  });
});

describe('doctor', () => {
  it('finds the dpu-overlay plugins of a .conf and of a .conflist (with the list\'s name)', () => {
    expect(pluginConfigsIn('{"type":"dpu-overlay","name":"a"}')).toEqual([{ type: 'dpu-overlay', name: 'a' }]);
    expect(pluginConfigsIn('{"type":"bridge","name":"a"}')).toEqual([]);
    expect(pluginConfigsIn('{"name":"l","cniVersion":"1.1.0","plugins":[{"type":"dpu-overlay","vni":5},{"type":"tuning"}]}')).toEqual([{ type: 'dpu-overlay', vni: 5, name: 'l', cniVersion: '1.1.0' }]);
  });
});

describe('status and doctor print for a terminal', () => {
  it('what a DPU answered (its stderr in an error) reaches the terminal without control characters', () => {
    const evil = 'refused\x1b]0;owned\x07\x1b[2J\r\nPASS  all good\x9b';
    const text = formatNodeStatus({ source: 'daemon', pid: 1, version: 'v', socket: '/s', dpus: [{ dpu: 'root@d:22', controlPlane: 'static', connected: false, down: { since: 'now', error: evil } }], attachments: [], invalidRecords: [] } as unknown as Parameters<typeof formatNodeStatus>[0]);
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(text).toContain('refused\\x1b]0;owned\\x07');
    expect(text.split('\n').filter((l) => l.startsWith('PASS'))).toEqual([]);
    const found = formatFindings([{ level: 'FAIL', check: 'DPU', detail: evil, fix: `fix ${evil}` }] as unknown as Parameters<typeof formatFindings>[0]);
    expect(found).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(found.split('\n')).toHaveLength(3);
  });
});

describe('metrics server: reachable by any local user', () => {
  const get = (port: number, path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject).end();
    });
  const connected = (port: number) =>
    new Promise<Socket>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
      s.resume();
    });

  it('scrapes in a loop read the records once per TTL; oversize headers get 431; held-open connections are capped (the oldest goes, a probe gets in) and cut off', async () => {
    let reads = 0;
    let t = 0;
    const m = new DaemonMetrics({ dpus: () => [], attachments: () => (reads++, [{ network: 'n', vni: 1, count: 1 }]) }, () => t);
    const limits = { maxConnections: 8, headersTimeoutMs: 500, requestTimeoutMs: 1000, idleTimeoutMs: 1000, maxHeaderSize: 8192 };
    const server = await serveMetrics({ host: '127.0.0.1', port: 0 }, m, () => undefined, limits);
    const port = (server.address() as AddressInfo).port;
    try {
      for (let k = 0; k < 20; k++) expect(await get(port, '/metrics')).toBe(200);
      expect(reads).toBe(1);
      t += ATTACHMENTS_TTL_MS;
      expect(await get(port, '/metrics')).toBe(200);
      expect(reads).toBe(2);
      m.cniRequest('DEL', 0, 0.1);
      expect(await get(port, '/metrics')).toBe(200);
      expect(reads).toBe(3);
      expect(await get(port, '/healthz', { 'X-Big': 'a'.repeat(64 * 1024) })).toBe(431);
      // slowloris: connections that never finish their headers, and some that send nothing
      const held: Socket[] = [];
      for (let k = 0; k < 20; k++) {
        const s = await connected(port);
        if (k % 2) s.write('GET /metrics HTTP/1.1\r\nX-Slow: ');
        held.push(s);
      }
      const open = await new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
      expect(open).toBeLessThanOrEqual(limits.maxConnections);
      // a probe arriving while they are held is served: the oldest held connection makes room
      expect(await get(port, '/healthz')).toBe(200);
      // all of them cut off by the server within its timeouts (generous margin for a loaded machine)
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline && held.some((s) => !s.destroyed && !s.readableEnded)) await new Promise((r) => setTimeout(r, 100));
      expect(held.filter((s) => !s.destroyed && !s.readableEnded)).toEqual([]);
      held.forEach((s) => s.destroy());
      expect(await get(port, '/healthz')).toBe(200);
    } finally {
      server.close();
    }
  }, 40000);
});

describe('recovery: is a container still there', () => {
  it('the recorded namespace file naming the same namespace, or a process in it, keeps it alive', () => {
    const self = { netns: '/proc/self/ns/net' };
    expect(recordedNetnsAlive(self, () => new Set())).toBe(true);
    expect(recordedNetnsAlive({ netns: '/nonexistent/ns', netnsId: '1:2' }, () => new Set())).toBe(false);
    expect(recordedNetnsAlive({ netns: '/nonexistent/ns', netnsId: '1:2' }, () => new Set(['1:2']))).toBe(true);
    expect(recordedNetnsAlive({ netns: '/nonexistent/ns' }, () => new Set())).toBe(false);
  });

  it('an identity recorded in an earlier boot of the host is gone, whoever has that inode number now (numbers are reused)', () => {
    const boot = hostBootId();
    expect(boot).toMatch(/^[0-9a-f-]{36}$/);
    const earlier = '00000000-0000-4000-8000-000000000000';
    expect(recordedNetnsAlive({ netns: '/nonexistent/ns', netnsId: '1:2', netnsBoot: boot as string }, () => new Set(['1:2']))).toBe(true);
    expect(recordedNetnsAlive({ netns: '/nonexistent/ns', netnsId: '1:2', netnsBoot: earlier }, () => new Set(['1:2']))).toBe(false);
    // a /proc/PID path that names a namespace with the recorded numbers in a later boot is not entered by DEL either
    const sibling = { netns: '/proc/1/ns/net', netnsId: '0:0', netnsBoot: earlier };
    expect(usableNetns(sibling, '/proc/1/ns/net')).toBeUndefined();
  });
});
