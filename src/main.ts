/**
 * Everything of the executable beyond src/entry.ts: a CNI command the plugin runs itself and the subcommands.
 * The product build makes this a second bundle that the entry loads only for those (scripts/bundle.js).
 */
import { CniError, fromCniErrorData } from './cni/errors';
import { dispatch, type PluginHandlers } from './cni/skel';

/** The command modules (and zod, pino, ssh2 behind them) load on first use: VERSION and --version start without them. */
function lazyHandlers(): PluginHandlers {
  let loaded: Promise<PluginHandlers> | undefined;
  const load = () =>
    (loaded ??= Promise.all([import('./plugin'), import('./plugin/dpu-client'), import('./kernel/exec'), import('./plugin/host-links')]).then(
      ([{ pluginHandlers }, { dpuClientFor }, { ProcessRunner }, { lazyHostLinkOps }]) => pluginHandlers({ runner: new ProcessRunner(), dpuClient: dpuClientFor, links: lazyHostLinkOps() }),
    ));
  return {
    add: async (req) => (await load()).add(req),
    del: async (req) => (await load()).del(req),
    check: async (req) => (await load()).check(req),
    gc: async (req) => (await load()).gc(req),
    status: async (req) => (await load()).status(req),
  };
}

/** The subcommands (daemon, status, doctor, replug, keygen); src/entry.ts knows their names. */
export async function runSubcommand(name: string, argv: string[]): Promise<number> {
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

/** A config error from src/entry.ts's own skeleton (its CniError is another bundle's class) is logged the same way. */
export function logEntryConfigError(code: number, msg: string, details: string, command: string): void {
  logConfigErrorLazily(new CniError(code, msg, details), command);
}

/** A CNI command the plugin runs itself (no daemon took it); stdin was read by src/entry.ts already. */
export function runStandalone(stdin: Promise<string>): Promise<number> {
  return dispatch(lazyHandlers(), {
    env: process.env,
    readStdin: () => stdin.catch((err: unknown) => Promise.reject(fromCniErrorData(err))),
    writeStdout: (text) => process.stdout.write(text + '\n'),
    onError: (err, command) => {
      logConfigErrorLazily(err, command);
      if (!(err instanceof CniError)) process.stderr.write(`dpu-overlay ${command}: unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    },
  });
}
