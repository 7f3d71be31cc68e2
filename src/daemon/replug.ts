import { DEFAULTS } from '../config/schema';
import { createLogger } from '../log';
import { DpuConnection, identityKey } from './connection';
import { DpuRecovery, type RecoveryLink } from './recovery';

const USAGE = `usage: dpu-overlay replug [--all] [--state-dir DIR]... [--log-file PATH]
One recovery pass without the daemon: probes every DPU the attachment records under DIR name, plugs again
the ports the DPU lost (after a reboot or an OVS database reset), and finishes DELs a DPU outage interrupted.
Exit status 0 when every DPU answered and nothing failed, 1 otherwise (the reasons go to stderr).
  --all             plug every ready attachment again, not only those whose port is missing (after a DPU
                    reboot that kept its database: the representors come back down)
  --state-dir DIR   the plugin's stateDir; repeatable (default ${DEFAULTS.stateDir})
  --log-file PATH   default ${DEFAULTS.daemonLogFile}
`;

/** The exit code. */
export async function runReplug(argv: readonly string[]): Promise<number> {
  const stateDirs: string[] = [];
  let logFile: string = DEFAULTS.daemonLogFile;
  let all = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (flag === '--all') {
      all = true;
      continue;
    }
    const value = argv[++i];
    if ((flag !== '--state-dir' && flag !== '--log-file') || value === undefined || !value.startsWith('/')) {
      process.stderr.write(`dpu-overlay replug: ${flag} ${value ?? ''}: expected --state-dir or --log-file with an absolute path\n${USAGE}`);
      return 2;
    }
    if (flag === '--state-dir') stateDirs.push(value);
    else logFile = value;
  }
  if (stateDirs.length === 0) stateDirs.push(DEFAULTS.stateDir);
  const log = createLogger({ logFile, logLevel: 'info' }, { replug: true });
  const connections = new Map<string, DpuConnection>();
  const recovery = new DpuRecovery(
    {
      stateDirs,
      pollMs: DEFAULTS.daemonPollMs,
      replugAll: all,
      linkFor: (dpu): RecoveryLink => {
        const key = identityKey(dpu);
        let conn = connections.get(key);
        if (!conn) connections.set(key, (conn = new DpuConnection(dpu, log)));
        const c = conn;
        return { probe: () => c.client(dpu).probe(), plug: (s, req) => c.plug(s, req), unplug: (s, req) => c.clientFor(s).unplug(req), setVfFunction: (s, target, values) => c.clientFor(s).setVfFunction(target, values) };
      },
    },
    log,
  );
  try {
    await recovery.tick();
  } finally {
    for (const c of connections.values()) c.close();
  }
  const problems = recovery.problems();
  for (const p of problems) process.stderr.write(`dpu-overlay replug: ${p}\n`);
  process.stdout.write(`dpu-overlay replug: ${connections.size} DPU(s) checked, ${problems.length} with problems (details in ${logFile})\n`);
  return problems.length ? 1 : 0;
}
