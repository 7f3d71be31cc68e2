import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PluginHandlers } from '../../../src/cni/skel';
import { pluginHandlers } from '../../../src/plugin';
import type { DpuConfig } from '../../../src/config/schema';
import { NODE_CONFIG_ENV } from '../../../src/config/defaults';
import { splitByOwner } from '../../../src/config/ownership';
import { type CniOutcome, runCni } from './cni';
import { FakeDpu } from './fake-dpu';
import { FakeHost } from './fake-host';
import { FakeIpam } from './fake-ipam';
import { silentLogger } from './logger';
import { buildSysfs, vfsOf } from './sysfs-tree';
import { tmpDir } from './tmp';

export const PF0 = { name: 'ens1f0', pci: '0000:03:00.0', mac: '0c:42:a1:00:00:00' };
export const PF1 = { name: 'ens1f1', pci: '0000:03:00.1', mac: '0c:42:a1:00:00:01' };
export const PF0_VFS = vfsOf('ens1f0', '03', 4); // 0000:03:00.2 .. 0000:03:00.5, ens1f0v0 .. ens1f0v3
export const PF1_VFS = vfsOf('ens1f1', '04', 2); // 0000:04:00.2, 0000:04:00.3
export const vfMac = (pf: number, i: number) => `02:00:00:00:0${pf}:0${i}`;
export const FINGERPRINT = 'SHA256:' + 'A'.repeat(43);

/**
 * One fake node: a sysfs tree with two PFs, a fake kernel (FakeHost) holding the VF netdevs,
 * a fake IPAM plugin in CNI_PATH, a fake DPU, and the plugin's handlers wired to them.
 */
export class Bed {
  readonly root = tmpDir();
  readonly sysfsRoot = join(this.root, 'sys');
  readonly stateDir = join(this.root, 'state');
  readonly cniPath = join(this.root, 'cni-bin');
  /** A node file a test writes itself (absent unless it does): never the real /etc/cni/dpu-overlay/node.json. */
  readonly nodeConfig = join(this.root, 'node.json');
  /** The node file run() writes from the node fields of the config it is given. */
  readonly autoNodeConfig = join(this.root, 'node-auto.json');
  readonly host: FakeHost;
  readonly dpu = new FakeDpu();
  /** DPUs at other addresses than 192.0.2.10 (a host with several DPUs), made on first use. */
  readonly otherDpus = new Map<string, FakeDpu>();
  readonly ipam: FakeIpam;
  readonly handlers: PluginHandlers;
  dpuClientsMade = 0;
  /** The dpu config each DPU client was made for (what a daemon request would carry). */
  readonly dpuConfigs: DpuConfig[] = [];
  /** What delegated plugins wrote to stderr (passed through to the plugin's stderr in production). */
  readonly stderr: string[] = [];

  constructor(readonly netnsPaths: string[]) {
    buildSysfs(this.sysfsRoot, [
      { name: PF0.name, pci: PF0.pci, vfs: PF0_VFS },
      { name: PF1.name, pci: PF1.pci, vfs: PF1_VFS },
    ]);
    mkdirSync(this.cniPath);
    this.ipam = new FakeIpam(this.cniPath);
    this.host = new FakeHost([this.cniPath]);
    for (const p of netnsPaths) this.host.addNetns(p);
    this.host.addLink('host', { name: 'lo', mac: '00:00:00:00:00:00', mtu: 65536, up: true });
    this.host.addLink('host', { ...PF0, up: true, vfinfo: PF0_VFS.map((_, i) => ({ vf: i, address: '00:00:00:00:00:00', spoofchk: true, trust: false, link_state: 'auto', rate: { max_tx: 0, min_tx: 0 } })) });
    this.host.addLink('host', { ...PF1, up: true });
    // emulated VFs: veths whose peer (the representor) is in the DPU's namespace
    PF0_VFS.forEach((vf, i) => this.host.addLink('host', { name: vf.netdev as string, mac: vfMac(0, i), mtu: 1500, peer: { netnsId: 0, ifindex: 100 + i } }));
    PF1_VFS.forEach((vf, i) => this.host.addLink('host', { name: vf.netdev as string, mac: vfMac(1, i), mtu: 1500, peer: { netnsId: 0, ifindex: 200 + i } }));
    this.handlers = pluginHandlers({
      runner: this.host,
      dpuClient: (conf: DpuConfig) => {
        this.dpuClientsMade++;
        this.dpuConfigs.push(conf);
        return conf.host === '192.0.2.10' ? this.dpu : this.dpuAt(conf.host);
      },
      logger: () => silentLogger(),
      stderr: (text) => void this.stderr.push(text),
    });
  }

  dpuAt(host: string): FakeDpu {
    let d = this.otherDpus.get(host);
    if (!d) this.otherDpus.set(host, (d = new FakeDpu(`root@${host}:22`)));
    return d;
  }

  config(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: 'ovl',
      type: 'dpu-overlay',
      vni: 5001,
      pf: PF0.name,
      sysfsRoot: this.sysfsRoot,
      stateDir: this.stateDir,
      ipam: { type: this.ipam.type },
      dpu: { host: '192.0.2.10', privateKeyFile: '/etc/dpu-overlay/id_ed25519', hostKeyFingerprint: FINGERPRINT, localVtep: '192.0.2.1', remoteVteps: ['192.0.2.2'] },
      ...extra,
    };
  }

  /**
   * Runs a command with config written the old way (every value in one object): its node fields go into
   * autoNodeConfig, named by DPU_OVERLAY_NODE_CONFIG, as a node owner would split it. With that variable in
   * opts.env the config goes to the plugin as it is (tests of the split itself).
   */
  run(
    command: string,
    opts: { containerId?: string; ifname?: string; netns?: string; args?: string; config?: Record<string, unknown>; env?: Record<string, string | undefined> } = {},
  ): Promise<CniOutcome> {
    const env: Record<string, string | undefined> = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: opts.containerId ?? 'c1',
      CNI_IFNAME: opts.ifname ?? 'net1',
      CNI_NETNS: opts.netns ?? this.netnsPaths[0],
      CNI_PATH: this.cniPath,
      CNI_ARGS: opts.args,
      ...opts.env,
    };
    const config = opts.config ?? this.config();
    if (opts.env?.[NODE_CONFIG_ENV] !== undefined) return runCni(this.handlers, env, config);
    const split = this.split(config);
    return runCni(this.handlers, { ...env, ...split.env }, split.network);
  }

  /** config's node fields written to autoNodeConfig; its network fields, and the env naming that node file. */
  split(config: Record<string, unknown> | string): { network: Record<string, unknown> | string; env: Record<string, string> } {
    // a config given as text (malformed on purpose) goes as it is, with the node fields of the default config
    const { network, node } = typeof config === 'string' ? { network: config, node: splitByOwner(this.config()).node } : splitByOwner(config);
    writeFileSync(`${this.autoNodeConfig}.tmp`, JSON.stringify(node), { mode: 0o644 });
    renameSync(`${this.autoNodeConfig}.tmp`, this.autoNodeConfig);
    return { network, env: { [NODE_CONFIG_ENV]: this.autoNodeConfig } };
  }

  /** What run() sends the plugin for config (its network fields): what delegated IPAM plugins get. */
  sent(config: Record<string, unknown> = this.config()): Record<string, unknown> {
    return splitByOwner(config).network;
  }

  /** Every file below stateDir (dot files too), relative. */
  stateFiles(): string[] {
    const out: string[] = [];
    const walk = (dir: string, rel: string) => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const n of names) {
        const p = join(dir, n);
        if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
        else out.push(`${rel}${n}`);
      }
    };
    walk(this.stateDir, '');
    return out.sort();
  }
}
