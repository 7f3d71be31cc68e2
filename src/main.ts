import { CniError } from './cni/errors';
import { dispatch, readStream } from './cni/skel';
import { pluginHandlers } from './commands';
import { sshDpuClient } from './dpu';
import { ProcessRunner } from './host/runner';
import { VERSION } from './version';

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (arg === '--version' || arg === 'version') {
    process.stdout.write(`dpu-overlay ${VERSION}\n`);
    return 0;
  }
  if (!process.env.CNI_COMMAND) process.stderr.write(`dpu-overlay ${VERSION}: CNI plugin, SR-IOV VF + VXLAN overlay on a BlueField DPU. Run by a container runtime with CNI_COMMAND set.\n`);
  const handlers = pluginHandlers({ runner: new ProcessRunner(), dpuClient: sshDpuClient });
  return dispatch(handlers, {
    env: process.env,
    readStdin: () => readStream(process.stdin),
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
