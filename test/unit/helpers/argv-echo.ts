import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpDir } from './tmp';

/**
 * Runs a DPU command line with sh, the way the DPU's shell would, but with `ip`, `ovs-vsctl`, `ovs-appctl`
 * `ovsdb-client`, `devlink`, `cat` and `dpu-guard` replaced by a script that prints its argv (program name first), NUL-separated, one
 * record per invocation. Returns the argv of each invocation: what the DPU would really have executed.
 */
export function argvAsRunBySh(commandLine: string): string[][] {
  const bin = tmpDir('argv-echo-');
  const script = `#!/bin/sh\nprintf '%s\\0' "$(basename "$0")" "$@"\nprintf '\\036'\n`;
  for (const name of ['ip', 'ovs-vsctl', 'ovs-appctl', 'ovsdb-client', 'devlink', 'cat', 'dpu-guard']) {
    writeFileSync(join(bin, name), script);
    chmodSync(join(bin, name), 0o755);
  }
  const out = execFileSync('/bin/sh', ['-c', commandLine], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
  return out
    .split('\u001e')
    .filter((r) => r !== '')
    .map((r) => r.split('\0').slice(0, -1));
}
