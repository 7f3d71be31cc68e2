// Per-DPU figures of the scale bench: tunnel ports, OpenFlow flows, ovn-controller CPU and its port-up times.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dpuExec, type Testbed } from '../../test/testkit/testbed';

export type Mode = 'ovn' | 'static';

const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean);

/** Tunnel interfaces on the DPU: OVN's geneve ports on br-int, or the static mesh's vxlan ports on the br-vni* bridges. */
export function tunnelPorts(dpu: string, mode: Mode): number {
  return lines(dpuExec(dpu, 'ovs-vsctl', '--bare', '--columns=name', 'find', 'Interface', `type=${mode === 'ovn' ? 'geneve' : 'vxlan'}`)).length;
}

export function staticBridges(dpu: string): string[] {
  return lines(dpuExec(dpu, 'ovs-vsctl', 'list-br')).filter((b) => b.startsWith('br-vni'));
}

/** OpenFlow flows: br-int in OVN mode, the sum over the br-vni* bridges in static mode (the reply header not counted). */
export function flows(dpu: string, mode: Mode): number {
  const bridges = mode === 'ovn' ? ['br-int'] : staticBridges(dpu);
  return bridges.reduce((n, br) => n + lines(dpuExec(dpu, 'ovs-ofctl', 'dump-flows', br)).filter((l) => !l.startsWith('NXST_FLOW') && !l.startsWith('OFPST_FLOW')).length, 0);
}

/** br-int's ports but ovn-controller's own tunnel ports (ovn-<chassis>-N). */
export function brIntPorts(dpu: string): number {
  return lines(dpuExec(dpu, 'ovs-vsctl', 'list-ports', 'br-int')).filter((p) => !p.startsWith('ovn-')).length;
}

const CLK_TCK = 100; // USER_HZ on Linux: /proc/<pid>/stat counts utime and stime in 1/100 s

/** utime + stime of the DPU's ovn-controller, in ms. */
export function ovnControllerCpuMs(tb: Testbed, dpu: string): number {
  const pid = readFileSync(join(tb.stateDir, `dpu-${dpu}`, 'ovn', 'ovn-controller.pid'), 'utf8').trim();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the ")" closing comm: state is field 3, utime 14, stime 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

export function ovnControllerLog(tb: Testbed, dpu: string): string {
  const file = join(tb.stateDir, `dpu-${dpu}`, 'log', 'ovn-controller.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/**
 * Port-up as ovn-controller saw it, per logical port: from "Claiming lport X" to "Setting lport X ovn-installed"
 * in its log (millisecond timestamps), for the ports whose names pass `want`, (pass the log text written since the phase began).
 */
export function claimToInstalledMs(log: string, want: (lsp: string) => boolean): number[] {
  const claimed = new Map<string, number>();
  const out: number[] = [];
  for (const line of log.split('\n')) {
    const m = line.match(/^(\S+?)\|\d+\|\w+\|INFO\|(?:Claiming lport (\S+) for this chassis|Setting lport (\S+) ovn-installed)/);
    if (!m) continue;
    const t = Date.parse(m[1] as string);
    if (m[2] && want(m[2]) && !claimed.has(m[2])) claimed.set(m[2], t);
    const lsp = m[3];
    if (lsp && claimed.has(lsp)) {
      out.push(t - (claimed.get(lsp) as number));
      claimed.delete(lsp);
    }
  }
  return out;
}
