import { requestScope } from './request-scope';

/**
 * Test-only crash injection: with DPU_OVERLAY_FAULT=<point> in the command's environment whoever runs it (the
 * plugin, or the daemon for a forwarded command) SIGKILLs itself when it reaches that point, so tests can prove
 * that DEL and GC clean up after a crash at any step.
 * Inert (one env lookup) when the variable is unset; never set it in production.
 */
export const FAULT_POINTS = [
  'add:allocated',
  'add:recorded',
  'add:vf-moved',
  'add:ipam-done',
  'add:configured',
  'add:dpu-plugged',
  'add:ready',
  'del:ipam-released',
  'del:vf-returned',
  'del:host-released',
  'del:dpu-unplugged',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

export const FAULT_ENV = 'DPU_OVERLAY_FAULT';

function killSelf(): void {
  process.kill(process.pid, 'SIGKILL');
}

export function faultPoint(point: FaultPoint, kill: () => void = killSelf): void {
  // In the daemon the request's environment decides, so a fault kills the daemon running the command.
  if ((requestScope.getStore()?.env ?? process.env)[FAULT_ENV] === point) kill();
}
