/**
 * Randomised parallel ADD/DEL/CHECK on all VFs of the emulated hosts (a seeded sequence; operations on one
 * container are ordered, different containers run concurrently). Then the invariants: no VF held by two
 * containers, no allocation or cache file without a live attachment, no representor port without one,
 * OVS ports and bridges exactly as the cache says, attached containers of a VNI reach each other. Then
 * everything is DEL-ed and the hosts and DPUs must be back to empty.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { container, firstIp, hostLocal, linkJson, netConf, nsName, ping, type Site, type Testbed } from '../testkit/testbed';
import { expectCniError, expectSuccess, listTree, newTally, ovsState, type Outcome, pick, retryTryAgain, rng, runPlugin, type Tally, timed, violation } from './common';

interface Network { name: string; vni: number; subnet: string; third: number }
const NETWORKS: readonly Network[] = [
  { name: 'cc1100', vni: 1100, subnet: '10.130', third: 0 },
  { name: 'cc1200', vni: 1200, subnet: '10.131', third: 0 },
];

interface Slot { site: Site; id: string; netns: string; attached?: { net: Network; result: Record<string, unknown> } }
interface Op { slot: number; kind: 'ADD' | 'DEL' | 'CHECK'; net: number }

export interface ConcurrencyOptions {
  seed: number;
  operations: number;
  /** Operations in flight at once. */
  width?: number;
  /** Containers per site; more than the VFs, so NoFreeVf happens too. */
  slotsPerSite?: number;
  pings?: number;
  progress?: (line: string) => void;
}

function conf(tb: Testbed, s: Site, n: Network): Record<string, unknown> {
  const base = 70 * (s.name.charCodeAt(0) - 97);
  // 30 s for the DPU, and code 11 retried (runOp): on a loaded machine (load 100 seen) SSH handshakes outlast 5 s, and a
  // DEL answered "host side released ... retry DEL" left the model saying "attached" while the VF was free again
  return netConf(tb, s, { name: n.name, vni: n.vni, ipam: hostLocal(tb, s, `${n.subnet}.0.0/16`, `${n.subnet}.${base}.1`, `${n.subnet}.${base + 69}.250`, n.name), dpu: { timeoutMs: 30000 } });
}

export async function concurrency(tb: Testbed, o: ConcurrencyOptions): Promise<Tally> {
  const t = newTally('concurrency');
  const r = rng(o.seed);
  const perSite = o.slotsPerSite ?? Math.max(...tb.sites.map((s) => s.vfs.length)) + 6;
  const slots: Slot[] = tb.sites.flatMap((s) => Array.from({ length: perSite }, (_, k) => ({ site: s, id: `cc-${s.name}${k}`, netns: container(`c${s.name}${k}`) })));
  const ops: Op[] = Array.from({ length: o.operations }, () => {
    const x = r();
    return { slot: Math.floor(r() * slots.length), kind: x < 0.45 ? 'ADD' : x < 0.8 ? 'DEL' : 'CHECK', net: Math.floor(r() * NETWORKS.length) };
  });
  o.progress?.(`concurrency: ${ops.length} operations on ${slots.length} containers, ${tb.sites.length} sites x ${tb.sites[0]?.vfs.length} VFs, ${o.width ?? 6} at once`);

  // per-container order, global width
  const tails = new Map<number, Promise<void>>();
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  const acquire = () => (inFlight < (o.width ?? 6) ? (inFlight++, Promise.resolve()) : new Promise<void>((res) => waiters.push(() => (inFlight++, res()))));
  const release = () => {
    inFlight--;
    waiters.shift()?.();
  };
  const all = ops.map((op, i) => {
    const prev = tails.get(op.slot) ?? Promise.resolve();
    const next = prev.then(async () => {
      await acquire();
      try {
        await runOp(t, tb, slots[op.slot] as Slot, op, i);
      } finally {
        release();
      }
    });
    tails.set(op.slot, next);
    return next;
  });
  await Promise.all(all);
  o.progress?.(`concurrency: ${slots.filter((s) => s.attached).length} containers attached at the end; checking invariants`);

  checkInvariants(t, tb, slots);
  checkReachability(t, slots, r, o.pings ?? 12);

  await Promise.all(slots.filter((s) => s.attached).map((s) => runOp(t, tb, s, { slot: -1, kind: 'DEL', net: NETWORKS.indexOf(s.attached?.net as Network) }, -1)));
  checkInvariants(t, tb, slots);
  for (const s of tb.sites) {
    for (const vf of s.vfs) {
      const l = linkJson(s.hostNetns, vf.netdev);
      if (!l || l.address !== vf.mac || l.mtu !== 1500) violation(t, `after DEL of everything: VF ${vf.netdev} on ${s.name} is not back as it was (${JSON.stringify(l)})`);
    }
    const ovs = ovsState(s.name);
    if (ovs.bridges.join(',') !== 'br-phy') violation(t, `after DEL of everything: DPU ${s.name} still has bridges ${ovs.bridges.join(',')}`);
    for (const n of NETWORKS) {
      const leases = listTree(join(tb.stateDir, `ipam-${s.name}-${n.name}`, n.name));
      if (leases.length) violation(t, `after DEL of everything: IPAM leases left on ${s.name}/${n.name}: ${leases.join(',')}`);
    }
  }
  return t;
}

async function runOp(t: Tally, tb: Testbed, slot: Slot, op: Op, i: number): Promise<void> {
  const net = slot.attached?.net ?? (NETWORKS[op.net] as Network);
  const c = conf(tb, slot.site, net);
  const call = { command: op.kind, containerId: slot.id, netns: slot.netns };
  const what = `op ${i} ${op.kind} ${slot.id}`;
  let out: Outcome;
  const del = () => retryTryAgain(() => runPlugin(slot.site, c, { ...call, command: 'DEL' }));
  if (op.kind === 'ADD') {
    out = slot.attached ? await runPlugin(slot.site, c, call) : await retryTryAgain(() => runPlugin(slot.site, c, call), del);
    if (slot.attached) {
      expectCniError(t, `${what} (already attached)`, out, 102);
    } else if (out.status === 0) {
      slot.attached = { net, result: out.json as Record<string, unknown> };
    } else {
      expectCniError(t, `${what}`, out, 100); // all VFs of the host in use
    }
  } else if (op.kind === 'DEL') {
    out = await del();
    if (expectSuccess(t, what, out)) slot.attached = undefined;
  } else {
    const prevResult = slot.attached?.result ?? { cniVersion: '1.1.0', interfaces: [{ name: 'eth0', sandbox: slot.netns }] };
    out = await retryTryAgain(() => runPlugin(slot.site, { ...c, prevResult }, call));
    if (slot.attached) expectSuccess(t, what, out);
    else expectCniError(t, `${what} (not attached)`, out, 120);
  }
  timed(t, i < 0 ? 'DEL (teardown, all at once)' : `${op.kind} (concurrent)`, out.ms);
}

function stateEntries(tb: Testbed, s: Site, sub: string): string[] {
  const dir = join(tb.stateDir, `plugin-${s.name}`, sub);
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
}

interface CachedAttachment { containerId: string; vf: { pci: string }; vni: number; dpu?: { bridge: string; representor: string; portUuid?: string } }

function checkInvariants(t: Tally, tb: Testbed, slots: Slot[]): void {
  for (const s of tb.sites) {
    const live = slots.filter((x) => x.site === s && x.attached);
    const pciOf = (x: Slot) => ((x.attached?.result.interfaces as Array<{ pciID?: string }> | undefined)?.[0]?.pciID ?? '?');
    const pcis = live.map(pciOf);
    const dup = pcis.filter((p, k) => pcis.indexOf(p) !== k);
    if (dup.length) violation(t, `site ${s.name}: VF(s) ${dup.join(',')} handed to two containers`);

    const allocations = stateEntries(tb, s, 'allocations').sort();
    if (allocations.join(',') !== [...pcis].sort().join(',')) violation(t, `site ${s.name}: allocations ${allocations.join(',')} != live attachments ${[...pcis].sort().join(',')}`);
    for (const pci of allocations) {
      const owner = JSON.parse(readFileSync(join(tb.stateDir, `plugin-${s.name}`, 'allocations', pci), 'utf8')) as { containerId: string };
      const holder = live.find((x) => pciOf(x) === pci);
      if (holder && owner.containerId !== holder.id) violation(t, `site ${s.name}: allocation ${pci} owned by ${owner.containerId}, attached to ${holder.id}`);
    }
    const cached = stateEntries(tb, s, 'attachments').map((f) => JSON.parse(readFileSync(join(tb.stateDir, `plugin-${s.name}`, 'attachments', f), 'utf8')) as CachedAttachment);
    const cachedIds = cached.map((a) => a.containerId).sort();
    const liveIds = live.map((x) => x.id).sort();
    if (cachedIds.join(',') !== liveIds.join(',')) violation(t, `site ${s.name}: cache ${cachedIds.join(',')} != live ${liveIds.join(',')}`);

    const ovs = ovsState(s.name);
    const ports = ovs.ports.map((p) => `${p.ids['dpu-overlay.container']}:${p.name}:${p.bridge}:${p.uuid}`).sort();
    const expected = cached.map((a) => `${a.containerId}:${a.dpu?.representor}:${a.dpu?.bridge}:${a.dpu?.portUuid}`).sort();
    if (ports.join(' ') !== expected.join(' ')) violation(t, `site ${s.name}: OVS ports [${ports.join(' ')}] != cache [${expected.join(' ')}]`);
    const bridges = new Set(ovs.bridges.filter((b) => b !== 'br-phy'));
    const wanted = new Set(cached.map((a) => `br-vni${a.vni}`));
    if ([...bridges].sort().join(',') !== [...wanted].sort().join(',')) violation(t, `site ${s.name}: bridges ${[...bridges].join(',')} != VNIs in use ${[...wanted].join(',')}`);

    for (const x of live) {
      const vf = s.vfs.find((v) => v.pci === pciOf(x));
      const l = linkJson(nsName(x.netns), 'eth0');
      if (!vf || !l || l.address !== vf.mac) violation(t, `site ${s.name}: ${x.id} has no eth0 with its VF's MAC in its namespace`);
      if (vf && linkJson(s.hostNetns, vf.netdev)) violation(t, `site ${s.name}: VF ${vf.netdev} of ${x.id} is still in the host namespace`);
    }
  }
}

function checkReachability(t: Tally, slots: Slot[], r: () => number, samples: number): void {
  for (const n of NETWORKS) {
    const live = slots.filter((x) => x.attached?.net === n);
    if (live.length < 2) continue;
    for (let k = 0; k < samples / NETWORKS.length; k++) {
      const a = pick(r, live);
      const others = live.filter((x) => x !== a && x.site !== a.site);
      const b = others.length ? pick(r, others) : pick(r, live.filter((x) => x !== a));
      const ip = firstIp(b.attached?.result);
      t.operations += 1;
      if (!ping(a.netns, ip, 1) && !ping(a.netns, ip, 3)) violation(t, `VNI ${n.vni}: ${a.id} (${a.site.name}) cannot reach ${b.id} (${b.site.name}) at ${ip}`);
    }
  }
}
