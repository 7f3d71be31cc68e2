import { CniError } from './cni/errors';
import { dispatch, type PluginHandlers, readStream } from './cni/skel';
import { FORWARDED, forward, isForwarded } from './daemon/forward';
import { VERSION } from './version';

/** The command modules (and zod, pino, ssh2 behind them) load on first use: VERSION and --version start without them. */
function lazyHandlers(): PluginHandlers {
  let loaded: Promise<PluginHandlers> | undefined;
  const load = () =>
    (loaded ??= Promise.all([import('./plugin'), import('./plugin/dpu-client'), import('./kernel/exec')]).then(([{ pluginHandlers }, { dpuClientFor }, { ProcessRunner }]) =>
      pluginHandlers({ runner: new ProcessRunner(), dpuClient: dpuClientFor }),
    ));
  return {
    add: async (req) => (await load()).add(req),
    del: async (req) => (await load()).del(req),
    check: async (req) => (await load()).check(req),
    gc: async (req) => (await load()).gc(req),
    status: async (req) => (await load()).status(req),
  };
}

const USAGE = `dpu-overlay ${VERSION}: CNI plugin, SR-IOV VF + VXLAN overlay on a BlueField DPU.
As a CNI plugin it is run by a container runtime with CNI_COMMAND set (ADD, DEL, CHECK, GC, STATUS, VERSION)
and the network config on stdin; the result or error JSON goes to stdout.
usage: dpu-overlay COMMAND [OPTIONS]   (each command: --help)
  daemon    the node agent: runs the plugin's commands, keeps DPU connections warm, re-plugs after a DPU reset
  status    what runs on this node: DPUs and attachments (the daemon's view, or the records)
  doctor    checks this host, its node file, networks and DPUs; PASS/WARN/FAIL with the fix
  replug    asks recovery to re-plug attachments now
  keygen    generates this node's own DPU key (0600) and prints its public key for the DPU's guard entry
  version   prints the version
`;

const SUBCOMMANDS = ['daemon', 'status', 'doctor', 'replug', 'keygen'];

async function runSubcommand(name: string, argv: string[]): Promise<number> {
  if (name === 'daemon') return (await import('./daemon')).runDaemon(argv);
  if (name === 'replug') return (await import('./daemon/replug')).runReplug(argv);
  if (name === 'status') return (await import('./cli/status')).runStatus(argv);
  if (name === 'keygen') return (await import('./cli/keygen')).runKeygen(argv);
  return (await import('./cli/doctor')).runDoctor(argv);
}

/** Config errors are logged before the error JSON is printed (see config-error-log.ts); only then is pino loaded. */
function logConfigErrorLazily(err: unknown, command: string): void {
  if (!(err instanceof CniError) || (err.code !== 6 && err.code !== 7)) return;
  // require, not import(): onError is synchronous and must finish before the answer is written
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { logConfigError } = require('./plugin/config-error-log') as typeof import('./plugin/config-error-log');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createLogger } = require('./log') as typeof import('./log');
  logConfigError(err, command, process.env, (s) => createLogger(s, {}, { write: () => undefined }));
}

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (arg === '--version' || arg === 'version') {
    process.stdout.write(`dpu-overlay ${VERSION}\n`);
    return 0;
  }
  if (arg === '--help' || arg === '-h' || arg === 'help') {
    const sub = process.argv[3];
    if (arg === 'help' && sub && SUBCOMMANDS.includes(sub)) return runSubcommand(sub, ['--help']);
    process.stdout.write(USAGE);
    return 0;
  }
  if (arg !== undefined && SUBCOMMANDS.includes(arg)) return runSubcommand(arg, process.argv.slice(3));
  if (!process.env.CNI_COMMAND) process.stderr.write(`dpu-overlay ${VERSION}: CNI plugin, SR-IOV VF + VXLAN overlay on a BlueField DPU. Run by a container runtime with CNI_COMMAND set (or: dpu-overlay --help).\n`);
  let stdin: Promise<string> | undefined;
  if (FORWARDED.has(process.env.CNI_COMMAND ?? '')) {
    stdin = readStream(process.stdin);
    stdin.catch(() => undefined); // the standalone run below reports it
    const outcome = await forward(process.env, stdin);
    if (isForwarded(outcome)) {
      process.stdout.write(outcome.stdout);
      process.stderr.write(outcome.stderr);
      return outcome.exitCode;
    }
  }
  return dispatch(lazyHandlers(), {
    env: process.env,
    readStdin: () => stdin ?? readStream(process.stdin),
    writeStdout: (text) => process.stdout.write(text + '\n'),
    onError: (err, command) => {
      logConfigErrorLazily(err, command);
      if (!(err instanceof CniError)) process.stderr.write(`dpu-overlay ${command}: unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    },
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dpu-overlay: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
