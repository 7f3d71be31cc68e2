import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A fake IPAM plugin: an executable shell script in dir (put dir in CNI_PATH). Each run appends
 * "COMMAND CONTAINERID IFNAME NETNS ARGS" to ipam.log and keeps its stdin in stdin-COMMAND.json.
 * ADD prints result.json; a file fail-COMMAND makes that command print its content and exit 1.
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
printf '%s\\n' "$stdin" > "$d/stdin-$CNI_COMMAND.json"
printf '%s %s %s %s %s\\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "\${CNI_NETNS:--}" "\${CNI_ARGS:--}" >> "$d/ipam.log"
if [ -f "$d/fail-$CNI_COMMAND" ]; then cat "$d/fail-$CNI_COMMAND"; echo "fake ipam: $CNI_COMMAND failed" >&2; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then cat "$d/result.json"; fi
exit 0
`,
    );
    chmodSync(this.path, 0o755);
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

  failNext(command: 'ADD' | 'DEL' | 'CHECK', stdout = ''): void {
    writeFileSync(join(this.dir, `fail-${command}`), stdout);
  }

  clearFailures(): void {
    for (const c of ['ADD', 'DEL', 'CHECK']) rmSync(join(this.dir, `fail-${c}`), { force: true });
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

  stdinOf(command: 'ADD' | 'DEL' | 'CHECK'): string {
    return readFileSync(join(this.dir, `stdin-${command}.json`), 'utf8').trimEnd();
  }

  resetLog(): void {
    rmSync(join(this.dir, 'ipam.log'), { force: true });
  }
}
