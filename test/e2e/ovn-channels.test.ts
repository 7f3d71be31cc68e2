/**
 * End-to-end (daemon path, OVN mode): with ovn-controller stopped, OVN ADDs wait for ports that never come up and
 * hold SSH channels to the DPU. They may hold at most 6 of the connection's 8: another network's STATUS (and DEL,
 * CHECK, the recovery probe) still gets a channel at once instead of queuing behind them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  BINARY, cni, cniAsync, type CniOutcome, container, dpuCtl, hostLocal, type NetConfig, netConf, NODE_FILE, removeContainers, requireBinary, type Site, site, stopDaemon, type Testbed, testbedDown, testbedUp,
} from '../testkit/testbed';

jest.setTimeout(400000);

let tb: Testbed;
let A: Site;
let daemon: ChildProcess | undefined;
let socket: string;

async function hello(path: string): Promise<void> {
  const until = Date.now() + 15000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(path);
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`no daemon on ${path}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ovnConf(vni: number): Record<string, unknown> {
  // node values (control plane, deadlines, socket) go into the config's own node file; OVN has no VTEP list
  return netConf(tb, A, { name: `vni${vni}`, vni, ipam: hostLocal(tb, A, `10.${vni}.0.0/24`, `10.${vni}.0.10`, `10.${vni}.0.99`, `vni${vni}`), dpu: { controlPlane: 'ovn', timeoutMs: 5000, daemonSocket: socket, ovn: { upTimeoutMs: 30000 } }, extra: { mtu: 1400 }, drop: ['dpu.localVtep', 'dpu.remoteVteps'] });
}

beforeAll(async () => {
  requireBinary();
  tb = testbedUp(12, 'a,b', 1, { ovn: true, path: 'standalone' });
  A = site(tb, 'a');
  const dir = join(tb.stateDir, 'ovn-channels-daemon');
  rmSync(dir, { recursive: true, force: true });
  socket = join(dir, 'dpu.sock');
  // the daemon reads the node file the configs name (it refuses a command whose node file is another)
  const nodeFile = (ovnConf(200) as NetConfig)[NODE_FILE] as string;
  daemon = spawn('ip', ['netns', 'exec', A.hostNetns, BINARY, 'daemon', '--socket', socket, '--log-file', join(tb.stateDir, 'ovn-channels-daemon.log'), '--log-level', 'debug', '--state-dir', join(tb.stateDir, 'plugin-a'), '--node-config', nodeFile], { stdio: 'ignore' });
  await hello(socket);
});

afterAll(async () => {
  dpuCtl('a', 'ovn-controller-start');
  await stopDaemon(daemon);
  removeContainers();
  testbedDown();
});

test('9 OVN ADDs stuck on a stopped ovn-controller do not starve another network\'s STATUS: it reaches the DPU while they wait', async () => {
  // Warm the daemon's connection and the chassis identity first.
  expect(cni(A, ovnConf(201), { command: 'STATUS' }).status).toBe(0);
  dpuCtl('a', 'ovn-controller-stop');
  const nets = Array.from({ length: 9 }, (_, i) => container(`ovnch-${i}`));
  let pending = nets.length;
  const adds: Array<Promise<CniOutcome>> = nets.map((ns, i) => cniAsync(A, ovnConf(200), { command: 'ADD', containerId: `ovnch${i}`, netns: ns }, 300000).then((r) => {
    pending--;
    return r;
  }));
  // Let the ADDs reach the DPU and take their channels.
  await new Promise((r) => setTimeout(r, 4000));
  const status = await cniAsync(A, ovnConf(201), { command: 'STATUS' }, 300000);
  const pendingAtStatus = pending;
  // The DPU's own answer (it ran there: ovn-controller is down), not a timeout waiting for a channel.
  expect(status.json).toMatchObject({ code: 50, msg: expect.stringMatching(/ovn-controller is not running/) });
  // STATUS answered while the ADDs were still waiting for their ports: it did not queue behind them.
  expect(pendingAtStatus).toBeGreaterThanOrEqual(6);
  dpuCtl('a', 'ovn-controller-start');
  const results = await Promise.all(adds);
  // Each ADD either got its port up once ovn-controller was back or failed cleanly; DEL cleans up either way.
  for (const r of results) expect([0, 1]).toContain(r.status);
  const dels = await Promise.all(nets.map((ns, i) => cniAsync(A, ovnConf(200), { command: 'DEL', containerId: `ovnch${i}`, netns: ns }, 300000)));
  expect(dels.map((r) => r.status)).toEqual(nets.map(() => 0));
});
