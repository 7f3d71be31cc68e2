// One warm DPU round trip of a fixed command, two ways, interleaved in one process inside the emulated host's netns:
// through the plugin's own transport (src/dpu/ssh.ts, the connection already open, as the daemon keeps it) and
// through OpenSSH multiplexed over a ControlMaster connection (what an operator's script would use). Both send the
// command on stdin to `sh -s`, as the plugin does. A gap of ~40 ms per exchange between them is Nagle's algorithm
// meeting the DPU's delayed ACK.
//   ip netns exec HOST node build/run-ts/dpu-rtt.cjs CONFIG_JSON   (bench/latency.ts runs it; prints JSON)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REMOTE_COMMAND, SshTransport } from '../../src/dpu/ssh';

interface RttConfig {
  host: string;
  port: number;
  user: string;
  privateKeyFile: string;
  knownHostsFile: string;
  command: string;
  n: number;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] as string) as RttConfig;
  const t = new SshTransport({ host: c.host, port: c.port, user: c.user, privateKeyFile: c.privateKeyFile, knownHostsFile: c.knownHostsFile, timeoutMs: 20000 });
  const dir = mkdtempSync(join(tmpdir(), 'dpu-rtt-'));
  const control = join(dir, 'cm');
  const ssh = ['-i', c.privateKeyFile, '-o', `UserKnownHostsFile=${c.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', `ControlPath=${control}`, '-p', String(c.port), `${c.user}@${c.host}`];
  const master = spawnSync('ssh', ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-f', '-N', ...ssh], { encoding: 'utf8' });
  if (master.status !== 0) throw new Error(`ssh ControlMaster: ${master.stderr}`);
  const openssh = () => {
    const r = spawnSync('ssh', [...ssh, REMOTE_COMMAND], { input: `${c.command}\n`, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh (ControlMaster) ${c.command}: exit ${r.status} ${r.stderr}`);
  };
  const transport = async () => {
    const r = await t.exec(c.command);
    if (r.exitCode !== 0) throw new Error(`plugin transport ${c.command}: exit ${r.exitCode} ${r.stderr}`);
  };
  const out: { transport: number[]; openssh: number[] } = { transport: [], openssh: [] };
  try {
    await transport();
    openssh();
    for (let i = 0; i < c.n; i++) {
      let t0 = process.hrtime.bigint();
      await transport();
      out.transport.push(Number(process.hrtime.bigint() - t0) / 1e6);
      t0 = process.hrtime.bigint();
      openssh();
      out.openssh.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    t.close();
    spawnSync('ssh', ['-O', 'exit', ...ssh], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`dpu-rtt: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
