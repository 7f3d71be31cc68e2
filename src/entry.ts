import { CniError, toCniErrorData } from './cni/errors';
import { dispatch, type PluginHandlers, readStdin } from './cni/skel';
import { FORWARDED, forward, isForwarded } from './daemon/forward';
import { VERSION } from './version';

/**
 * The executable's entry: what every call needs, and nothing more. --version, --help, VERSION and a command the
 * daemon takes (the forwarder) are answered here; everything else (a standalone CNI command, the subcommands) is
 * src/main.ts, which the product build turns into a second bundle loaded only then (scripts/bundle.js). This file
 * must stay free of zod, pino, ssh2 and the plugin modules (test/unit/daemon-forward-deps.test.ts checks).
 */

// require, not import(): the product's entry bundle puts the SEA asset's loader in its place (scripts/bundle.js)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rest = (): typeof import('./main') => require('./main') as typeof import('./main');

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

/** VERSION, a missing or an unknown CNI_COMMAND: the skeleton answers them without a handler. */
const notHere = (): never => {
  throw new Error('a command with a handler runs in src/main.ts');
};
const NO_HANDLERS: PluginHandlers = { add: notHere, del: notHere, check: notHere, gc: notHere, status: notHere };

async function entry(): Promise<number> {
  const arg = process.argv[2];
  if (arg === '--version' || arg === 'version') {
    process.stdout.write(`dpu-overlay ${VERSION}\n`);
    return 0;
  }
  if (arg === '--help' || arg === '-h' || arg === 'help') {
    const sub = process.argv[3];
    if (arg === 'help' && sub && SUBCOMMANDS.includes(sub)) return rest().runSubcommand(sub, ['--help']);
    process.stdout.write(USAGE);
    return 0;
  }
  if (arg !== undefined && SUBCOMMANDS.includes(arg)) return rest().runSubcommand(arg, process.argv.slice(3));
  if (!process.env.CNI_COMMAND) process.stderr.write(`dpu-overlay ${VERSION}: CNI plugin, SR-IOV VF + VXLAN overlay on a BlueField DPU. Run by a container runtime with CNI_COMMAND set (or: dpu-overlay --help).\n`);
  // Every command with a handler is one the daemon may take; whatever it does not, runs in main.ts.
  if (!FORWARDED.has(process.env.CNI_COMMAND ?? '')) {
    return dispatch(NO_HANDLERS, {
      env: process.env,
      readStdin: () => readStdin(),
      writeStdout: (text) => process.stdout.write(text + '\n'),
      onError: (err, command) => {
        if (err instanceof CniError && (err.code === 6 || err.code === 7)) rest().logEntryConfigError(err.code, err.message, err.details, command);
      },
    });
  }
  const stdin = readStdin();
  stdin.catch(() => undefined); // the standalone run reports it
  const outcome = await forward(process.env, stdin);
  if (isForwarded(outcome)) {
    process.stdout.write(outcome.stdout);
    process.stderr.write(outcome.stderr);
    return outcome.exitCode;
  }
  const handedOver = stdin.catch((err: unknown) => Promise.reject(toCniErrorData(err)));
  handedOver.catch(() => undefined); // main.ts reports it
  return rest().runStandalone(handedOver);
}

entry().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dpu-overlay: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
