// The target arithmetic and the scrubbed environment of npm run bench (bench/latency.ts), without a testbed.
import { scrubbedEnv } from './env';
import { markdown, OVN_ROWS, type Report, stats, targets } from './report';

const s = (p50: number) => ({ n: 1, p50, p95: p50, max: p50 });
const row = (p50: number) => ({ add: s(p50), del: s(p50) });

function report(o: { warm: number; cold: number; hd: number; hdSsh: number; burst16?: [number, number]; rtt?: [number, number]; version: number; hello: number }): Omit<Report, 'targets'> {
  return {
    date: '', command: '', machine: { cores: 2, cpu: '', node: '' }, cycles: 1, childEnv: ['PATH', 'CNI_*'],
    sequential: { 'host-device': row(o.hd), 'host-device + ssh': row(o.hdSsh), 'dpu-overlay cold': row(o.cold), 'dpu-overlay warm': row(o.warm) },
    breakdown: { cold: { 'DPU connect (SSH handshake or daemon socket; overlaps the host steps)': 40 }, warm: {} },
    bursts: { cold: [], warm: o.burst16 === undefined ? [] : [{ n: 16, addWallMs: o.burst16[0], addPerCall: s(1), delWallMs: 1, delPerCall: s(1), hostDevice: { addWallMs: o.burst16[1], delWallMs: 1 } }] },
    ...(o.rtt ? { dpuRoundTrip: { command: 'x', transport: s(o.rtt[0]), openssh: s(o.rtt[1]) } } : {}),
    version: { dpuOverlay: s(o.version), helloSea: s(o.hello), hostDevice: s(3), helloSeaKey: '' },
    envEffects: [], peakRssKb: 1, daemon: { attachments: 1, rssKbBefore: 1, rssKb: 1, idleSeconds: 1, idleCpuPercent: 0 },
  };
}

test('each target is a ratio with its goal; a missed one names the measured floor, a met one none', () => {
  const t = targets(report({ warm: 60, cold: 100, hd: 20, hdSsh: 80, burst16: [150, 100], rtt: [55, 25], version: 40, hello: 35 }));
  expect(t.map((x) => [x.ratio, x.op, x.goal, x.met])).toEqual([
    [3, '<=', 2, false],
    [3, '<=', 2, false],
    [1.25, '<', 1, false],
    [1.5, '<=', 2, true],
    [2.2, '<=', 1, false],
    [1.14, '<=', 1.3, true],
  ]);
  expect(t[0]?.floor).toBe('a Node process (hello-world SEA) starts in 35 ms = 1.75 x host-device ADD');
  expect(t[2]?.floor).toBe('Node start 35 ms + ssh2 connect 40 ms = 0.94 x the baseline');
  expect(t[3]?.floor).toBeUndefined();
  expect(t[4]?.floor).toMatch(/30 ms slower than OpenSSH: look for 40 ms quanta/);
});

test('the burst target needs a burst of 16 with host-device beside it; the cold target is strict', () => {
  const t = targets(report({ warm: 40, cold: 80, hd: 20, hdSsh: 80, version: 50, hello: 35 }));
  expect(t.map((x) => x.name.split(' ')[0])).toEqual(['warm', 'warm', 'cold', 'VERSION']);
  expect(t[2]?.met).toBe(false);
  expect(t[3]?.floor).toBe("the plugin's VERSION path costs 15 ms more than an empty SEA");
});

test('OVN mode: its warm ADD over the static warm ADD measured beside it, goal 1.5, before VERSION; its rows in the table', () => {
  const base = report({ warm: 40, cold: 80, hd: 20, hdSsh: 80, version: 40, hello: 35 });
  const ovn = (o: number, st: number): Report['ovn'] => ({ static: row(st), ovn: row(o), breakdown: { 'DPU step (rest of the connect + OVS transaction)': 90 } });
  const met = targets({ ...base, ovn: ovn(60, 45) });
  expect(met.map((x) => x.name.split(' ').slice(0, 2).join(' '))).toEqual(['warm ADD', 'warm DEL', 'cold ADD', 'OVN warm', 'VERSION p50']);
  expect(met[3]).toMatchObject({ measured: '60 / 45 ms', ratio: 1.33, op: '<=', goal: 1.5, met: true });
  const missed = targets({ ...base, ovn: ovn(100, 50) })[3];
  expect(missed).toMatchObject({ ratio: 2, met: false });
  expect(missed?.floor).toBe("OVN mode's ADD plugs after IPAM and waits for ovn-controller to install the port: its DPU step alone takes 90 ms = 1.8 x the static ADD");
  const md = markdown({ ...base, ovn: ovn(60, 45), targets: met });
  expect(md).toContain(`| ${OVN_ROWS.ovn} ADD | 60 | 60 | 60 |`);
  expect(md).toContain(`| ${OVN_ROWS.static} DEL | 45 | 45 | 45 |`);
  expect(md).toContain('| OVN warm ADD p50 / static warm ADD p50 (same OVN testbed, interleaved) | 60 / 45 ms | 1.33 | <= 1.5 | met |');
});

test('children get PATH and CNI_* only', () => {
  const env = scrubbedEnv({ CNI_COMMAND: 'ADD', CNI_NETNS: '/run/netns/x', NODE_OPTIONS: '--require /tmp/x.js', NODE_EXTRA_CA_CERTS: '/etc/ca', HOME: '/root', PATH: '/tmp' });
  expect(Object.keys(env).sort()).toEqual(['CNI_COMMAND', 'CNI_NETNS', 'PATH']);
  expect(env.PATH).not.toContain('/tmp');
});

test('p50 and p95 are nearest-rank', () => {
  expect(stats([5, 1, 3, 2, 4])).toEqual({ n: 5, p50: 3, p95: 5, max: 5 });
});
