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

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (arg === '--version' || arg === 'version') {
    process.stdout.write(`dpu-overlay ${VERSION}\n`);
    return 0;
  }
  if (arg === 'daemon') return (await import('./daemon')).runDaemon(process.argv.slice(3));
  if (arg === 'replug') return (await import('./daemon/replug')).runReplug(process.argv.slice(3));
  if (!process.env.CNI_COMMAND) process.stderr.write(`dpu-overlay ${VERSION}: CNI plugin, SR-IOV VF + VXLAN overlay on a BlueField DPU. Run by a container runtime with CNI_COMMAND set (or: dpu-overlay daemon --help, dpu-overlay replug --help).\n`);
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
