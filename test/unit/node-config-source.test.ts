import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CniRequest } from '../../src/cni/skel';
import { parseDaemonArgs } from '../../src/daemon';
import { prepare } from '../../src/plugin/lifecycle';
import { errorOf } from './helpers/errors';
import { silentLogger } from './helpers/logger';
import { removeTmpDirs, tmpDir } from './helpers/tmp';

afterAll(removeTmpDirs);

const dir = tmpDir('node-src-');
function nodeFile(name: string, stateDir: string): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ stateDir, logFile: join(dir, `${name}.log`) }), { mode: 0o644 });
  return path;
}
const daemonDefault = nodeFile('daemon.json', join(dir, 'state-daemon'));
const fromEnv = nodeFile('env.json', join(dir, 'state-env'));

function request(config: Record<string, unknown>, rawEnv: Record<string, string | undefined>): CniRequest {
  return { env: { command: 'STATUS', containerId: '', netns: '', ifname: '', args: {}, argsRaw: '', path: [] }, rawConfig: JSON.stringify(config), config, cniVersion: '1.1.0', rawEnv };
}
const deps = (nodeConfig?: string) => ({ runner: { run: async () => ({ exitCode: 0, stdout: '', stderr: '' }), hostNetdevs: () => new Set<string>() }, dpuClient: () => { throw new Error('no DPU'); }, logger: () => silentLogger(), ...(nodeConfig ? { nodeConfig } : {}) });
const NET = { cniVersion: '1.1.0', name: 'n', vni: 1 };

describe('where the node file comes from', () => {
  it('the request\'s DPU_OVERLAY_NODE_CONFIG wins over the daemon\'s --node-config', () => {
    const ctx = prepare(request(NET, { DPU_OVERLAY_NODE_CONFIG: fromEnv }), deps(daemonDefault));
    expect([ctx.conf.nodeConfig, ctx.conf.stateDir]).toEqual([fromEnv, join(dir, 'state-env')]);
  });

  it('without it, the daemon\'s --node-config; without both, the default path', () => {
    expect(prepare(request(NET, {}), deps(daemonDefault)).conf.stateDir).toBe(join(dir, 'state-daemon'));
    expect(prepare(request(NET, {}), deps()).conf.nodeConfig).toBe('/etc/cni/dpu-overlay/node.json');
  });

  it('never the network config: its nodeConfig naming another file is code 7', () => {
    const err = errorOf(() => prepare(request({ ...NET, nodeConfig: daemonDefault }, { DPU_OVERLAY_NODE_CONFIG: fromEnv }), deps()));
    expect(err.code).toBe(7);
    expect(err.message).toContain(`a network config cannot choose the node file (this node's is ${fromEnv}`);
  });

  it('the daemon takes --node-config (absolute)', () => {
    expect(parseDaemonArgs(['--node-config', '/etc/x.json'])).toMatchObject({ nodeConfig: '/etc/x.json' });
    expect(parseDaemonArgs([])).toMatchObject({ nodeConfig: '/etc/cni/dpu-overlay/node.json', stateDirs: [] });
    expect(() => parseDaemonArgs(['--node-config', 'x.json'])).toThrow(/--node-config must be an absolute path/);
  });
});
