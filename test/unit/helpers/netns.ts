import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';

/** A real network namespace other than ours, held open by a sleeping child: CNI_NETNS for ADD/CHECK. */
export interface TestNetns {
  path: string;
  pid: number;
  close(): void;
}

function identity(path: string): string {
  const st = statSync(path);
  return `${st.dev}:${st.ino}`;
}

export async function createNetns(): Promise<TestNetns> {
  const args = process.getuid?.() === 0 ? ['-n', 'sleep', '3600'] : ['-r', '-n', 'sleep', '3600'];
  const child: ChildProcess = spawn('unshare', args, { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('cannot start unshare');
  const path = `/proc/${pid}/ns/net`;
  const ours = identity('/proc/self/ns/net');
  for (let i = 0; i < 200; i++) {
    try {
      if (identity(path) !== ours) {
        return {
          path,
          pid,
          close: () => {
            child.kill('SIGKILL');
          },
        };
      }
    } catch {
      // not yet
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  throw new Error('unshare -n did not give a new network namespace (these tests need root or user namespaces)');
}
