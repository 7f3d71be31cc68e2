import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type FakeIpamCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';

/**
 * A fake IPAM plugin: an executable shell script in dir (put dir in CNI_PATH). Each run appends
 * "COMMAND CONTAINERID IFNAME NETNS ARGS" ("-" for unset) to ipam.log and keeps its stdin and
 * environment in stdin-COMMAND.json and env-COMMAND. ADD prints result.json, VERSION versions.json
 * (unlogged); a file fail-COMMAND makes that command print its content, a line on stderr, and exit 1.
 */
export class FakeIpam {
  readonly path: string;

  constructor(
    readonly dir: string,
    readonly type = 'fake-ipam',
  ) {
    this.path = join(dir, type);
    writeFileSync(
      this.path,
      `#!/bin/sh
d=$(dirname "$0")
stdin=$(cat)
if [ "$CNI_COMMAND" = VERSION ]; then cat "$d/versions.json"; exit 0; fi
printf '%s\\n' "$stdin" > "$d/stdin-$CNI_COMMAND.json"
env > "$d/env-$CNI_COMMAND"
printf '%s %s %s %s %s\\n' "$CNI_COMMAND" "\${CNI_CONTAINERID:--}" "\${CNI_IFNAME:--}" "\${CNI_NETNS:--}" "\${CNI_ARGS:--}" >> "$d/ipam.log"
if [ -f "$d/fail-$CNI_COMMAND" ]; then cat "$d/fail-$CNI_COMMAND"; echo "fake ipam: $CNI_COMMAND failed" >&2; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$d/result.json"; fi
exit 0
`,
    );
    chmodSync(this.path, 0o755);
    this.setVersions(['0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    this.setResult({
      cniVersion: '1.1.0',
      ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['10.1.0.53'] },
    });
  }

  setResult(result: unknown): void {
    writeFileSync(join(this.dir, 'result.json'), typeof result === 'string' ? result : JSON.stringify(result));
  }

  /** What VERSION answers (Debian 12's plugins: up to 1.0.0, so no GC and no STATUS). */
  setVersions(supportedVersions: string[]): void {
    writeFileSync(join(this.dir, 'versions.json'), JSON.stringify({ cniVersion: '1.1.0', supportedVersions }));
  }

  failNext(command: FakeIpamCommand, stdout = ''): void {
    writeFileSync(join(this.dir, `fail-${command}`), stdout);
  }

  clearFailures(): void {
    for (const c of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']) rmSync(join(this.dir, `fail-${c}`), { force: true });
  }

  /** One entry per invocation: [command, containerId, ifname, netns, args]. */
  log(): string[][] {
    const f = join(this.dir, 'ipam.log');
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
  }

  commands(): string[] {
    return this.log().map((l) => l[0] as string);
  }

  stdinOf(command: FakeIpamCommand): string {
    return readFileSync(join(this.dir, `stdin-${command}.json`), 'utf8').trimEnd();
  }

  /** The environment the last run of command saw. */
  envOf(command: FakeIpamCommand): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of readFileSync(join(this.dir, `env-${command}`), 'utf8').split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return out;
  }

  resetLog(): void {
    rmSync(join(this.dir, 'ipam.log'), { force: true });
  }
}
