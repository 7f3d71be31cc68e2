// Unit tests of the scale bench's arithmetic and log parsing (no testbed).
import { claimToInstalledMs } from './dpu';
import { projections, stats } from './report';

test('claim to ovn-installed, per port, from ovn-controller log lines', () => {
  const log = [
    '2026-12-01T22:51:59.680Z|00023|binding|INFO|Claiming lport dpuo-x-1 for this chassis.',
    '2026-12-01T22:51:59.690Z|00024|binding|INFO|Claiming lport dpuo-x-2 for this chassis.',
    '2026-12-01T22:51:59.708Z|00025|binding|INFO|Setting lport dpuo-x-1 ovn-installed in OVS',
    '2026-12-01T22:51:59.750Z|00026|binding|INFO|Setting lport dpuo-x-2 ovn-installed in OVS',
    '2026-12-01T22:51:59.760Z|00027|binding|INFO|Setting lport dpuo-never-claimed ovn-installed in OVS',
  ].join('\n');
  expect(claimToInstalledMs(log, () => true)).toEqual([28, 60]);
  expect(claimToInstalledMs(log, (lsp) => lsp.endsWith('-2'))).toEqual([60]);
});

test('the static mesh grows with hosts x VNIs, OVN with hosts only', () => {
  const [three, hundred, thousand] = projections(32);
  expect(three).toMatchObject({ hosts: 3, staticTunnelPortsPerDpu: 64, ovnTunnelPortsPerDpu: 2 });
  expect(hundred).toMatchObject({ staticTunnelPortsPerDpu: 99 * 32, ovnTunnelPortsPerDpu: 99, staticArpCopies: 99, ovnArpCopiesVniOn10Hosts: 9 });
  expect(thousand).toMatchObject({ staticTunnelPortsPerDpu: 999 * 32, ovnTunnelPortsPerDpu: 999, ovnArpCopiesVniOnAllHosts: 999 });
});

test('p50 and p99 are nearest-rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  expect(stats(xs)).toEqual({ n: 100, p50: 50, p99: 99, max: 100 });
  expect(stats([7])).toEqual({ n: 1, p50: 7, p99: 7, max: 7 });
});
