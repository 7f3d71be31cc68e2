import { spawn } from 'node:child_process';
import { HOST_NETNS } from '../../../src/kernel/iproute2';
import type { CommandRunner, RunOptions, RunResult } from '../../../src/util/command-runner';
import { iproute2BatchCommands } from './iproute2-batch';

/** A netdev as the fake kernel keeps it. */
export interface FakeLink {
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  addrs: string[];
  routes: Array<{ dst: string; gateway?: string }>;
  /** For PFs: per-VF admin settings as `ip -j link show dev PF` reports them in vfinfo_list. */
  vfinfo?: Array<Record<string, unknown>>;
  /** Kept across moves and renames, like the kernel's (unless the test says otherwise). */
  ifindex: number;
  /** A real VF's parent device as `ip -d` shows it; emulated VFs (veths) have none. */
  parentbus?: string;
  parentdev?: string;
  /** An emulated VF's veth peer (the representor) in another namespace: `ip -d` shows link_netnsid and link_index. */
  peer?: { netnsId: number; ifindex: number };
}

export interface Call {
  file: string;
  args: string[];
  input?: string;
  env?: Record<string, string>;
}

/** An `ip` invocation with the namespace it ran in ("host" or the nsenter path). */
export interface IpCall {
  ns: string;
  args: string[];
  input?: string;
}

interface Rule {
  match: (c: Call) => boolean;
  result: RunResult;
  remaining: number;
}

/** Really runs a file (the fake IPAM plugin) with exactly the given env and stdin. */
function execReal(file: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? {}, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

const ok = (stdout = ''): RunResult => ({ exitCode: 0, stdout, stderr: '' });
const err = (stderr: string, exitCode = 1): RunResult => ({ exitCode, stdout: '', stderr });

/**
 * A recording CommandRunner: every (file, args, input) is kept in `calls`. `ip` and `nsenter --net=NS ip`
 * are answered by a small model of the kernel's links per network namespace, so that what ADD does can be
 * undone and checked by DEL and CHECK. Files below `execDirs` (the fake IPAM plugin) really run.
 * Anything else is a test failure.
 */
export class FakeHost implements CommandRunner {
  readonly calls: Call[] = [];
  readonly namespaces = new Map<string, Map<string, FakeLink>>([['host', new Map()]]);
  private readonly rules: Rule[] = [];
  private nextIfindex = 10;
  /** Sysctl files written in each namespace (through nsenter tee). */
  readonly sysctls = new Map<string, string[]>();

  constructor(private readonly execDirs: string[] = []) {}

  addNetns(path: string): void {
    if (!this.namespaces.has(path)) this.namespaces.set(path, new Map());
  }

  addLink(ns: string, link: Partial<FakeLink> & { name: string; mac: string }): FakeLink {
    const full: FakeLink = { mtu: 1500, up: false, addrs: [], routes: [], ifindex: this.nextIfindex++, ...link };
    this.ns(ns).set(link.name, full);
    return full;
  }

  link(ns: string, name: string): FakeLink | undefined {
    return this.namespaces.get(ns)?.get(name);
  }

  linkNames(ns: string): string[] {
    return [...this.ns(ns).keys()].sort();
  }

  /** Makes matching calls return `result` instead (times: how many calls; default all). */
  failWhen(match: (c: Call) => boolean, result: RunResult = err('injected failure'), times = Infinity): void {
    this.rules.push({ match, result, remaining: times });
  }

  /** The ip commands run so far, with their namespace. */
  ipCalls(): IpCall[] {
    return this.calls.flatMap((c): IpCall[] => {
      if (c.file === 'ip') return [{ ns: 'host', args: c.args, input: c.input }];
      if (c.file === 'nsenter' && c.args[1] === 'ip') return [{ ns: this.nsKey((c.args[0] ?? '').replace(/^--net=/, '')), args: c.args.slice(2), input: c.input }];
      return [];
    });
  }

  /** Commands (as words joined by spaces) of every `ip -batch -` run in ns, as iproute2 reads them. */
  batches(ns: string): string[][] {
    return this.ipCalls()
      .filter((c) => c.ns === ns && c.args.slice(-2).join(' ') === '-batch -')
      .map((c) => iproute2BatchCommands(c.input ?? '').map((argv) => argv.join(' ')));
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  private ns(key: string): Map<string, FakeLink> {
    const m = this.namespaces.get(key);
    if (!m) throw new Error(`FakeHost: no namespace ${key}`);
    return m;
  }

  private nsKey(path: string): string {
    return path === HOST_NETNS || path === 'host' ? 'host' : path;
  }

  /** Like /proc/self/net/dev: the host namespace's devices, no command run. */
  hostNetdevs(): Set<string> {
    return new Set(this.ns('host').keys());
  }

  async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const call: Call = { file, args: [...args], input: opts.input, env: opts.env };
    this.calls.push(call);
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(call));
    if (rule) {
      rule.remaining--;
      return rule.result;
    }
    if (this.execDirs.some((d) => file.startsWith(d + '/'))) return execReal(file, call.args, opts);
    if (file === 'ip') return this.ip('host', call.args, opts.input);
    if (file === 'nsenter') {
      const m = /^--net=(.+)$/.exec(call.args[0] ?? '');
      if (m && call.args[1] === 'tee' && this.namespaces.has(this.nsKey(m[1] as string))) {
        const key = this.nsKey(m[1] as string);
        this.sysctls.set(key, [...(this.sysctls.get(key) ?? []), ...call.args.slice(2).map((f) => `${f}=${(opts.input ?? '').trim()}`)]);
        return ok(opts.input);
      }
      if (!m || call.args[1] !== 'ip') throw new Error(`FakeHost: unexpected nsenter ${call.args.join(' ')}`);
      const key = this.nsKey(m[1] as string);
      if (!this.namespaces.has(key)) return err(`nsenter: cannot open ${m[1]}: No such file or directory`);
      return this.ip(key, call.args.slice(2), opts.input);
    }
    throw new Error(`FakeHost: unexpected command ${file} ${call.args.join(' ')}`);
  }

  private linkJson(l: FakeLink): Record<string, unknown> {
    const out: Record<string, unknown> = { ifindex: l.ifindex, ifname: l.name, address: l.mac, mtu: l.mtu, flags: l.up ? ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'] : ['BROADCAST', 'MULTICAST'] };
    if (l.vfinfo) out.vfinfo_list = l.vfinfo;
    if (l.parentbus) Object.assign(out, { parentbus: l.parentbus, parentdev: l.parentdev });
    if (l.peer) Object.assign(out, { link_netnsid: l.peer.netnsId, link_index: l.peer.ifindex });
    return out;
  }

  private ip(nsKey: string, args: string[], input?: string): RunResult {
    const links = this.ns(nsKey);
    const line = args.join(' ');
    let m: RegExpExecArray | null;
    if (line === '-j link show' || line === '-d -j link show') return ok(JSON.stringify([...links.values()].map((l) => this.linkJson(l))));
    if ((m = /^-j link show dev (\S+)$/.exec(line))) {
      const l = links.get(m[1] as string);
      return l ? ok(JSON.stringify([this.linkJson(l)])) : err(`Device "${m[1]}" does not exist.`);
    }
    if ((m = /^-j addr show dev (\S+)$/.exec(line))) {
      const l = links.get(m[1] as string);
      if (!l) return err(`Device "${m[1]}" does not exist.`);
      return ok(JSON.stringify([{ ifname: l.name, addr_info: l.addrs.map((a) => ({ local: a.split('/')[0], prefixlen: Number(a.split('/')[1]), scope: 'global' })) }]));
    }
    if ((m = /^-j (-4|-6) route show dev (\S+)$/.exec(line))) {
      const l = links.get(m[2] as string);
      if (!l) return err(`Device "${m[2]}" does not exist.`);
      return ok(JSON.stringify(l.routes.filter((r) => (m?.[1] === '-6') === r.dst.includes(':'))));
    }
    if ((m = /^link set dev (\S+) netns (\S+) name (\S+)$/.exec(line))) {
      const [, name, target, newName] = m as unknown as [string, string, string, string];
      const l = links.get(name);
      if (!l) return err(`Cannot find device "${name}"`);
      const dest = this.namespaces.get(this.nsKey(target));
      if (!dest) return err(`Invalid "netns" value "${target}"`);
      if (dest.has(newName)) return err('RTNETLINK answers: File exists');
      links.delete(name);
      l.name = newName;
      l.up = false;
      l.addrs = [];
      l.routes = [];
      dest.set(newName, l);
      return ok();
    }
    if ((m = /^link set dev (\S+) vf (\d+) (.+)$/.exec(line))) {
      const pf = links.get(m[1] as string);
      if (!pf) return err(`Cannot find device "${m[1]}"`);
      return ok();
    }
    if (line === '-batch -' || line === '-d -j -batch -' || line === '-j -batch -') {
      let out = '';
      const cmds = iproute2BatchCommands(input ?? '');
      for (let i = 0; i < cmds.length; i++) {
        const r = this.command(links, cmds[i] as string[]);
        if (typeof r !== 'string') return err(`${r.problem}\nCommand failed -:${i + 1}`);
        out += r;
      }
      return ok(out);
    }
    const argv = args[0] === '-d' && args[1] === '-j' ? args.slice(2) : args;
    if (['link', 'addr', 'route'].includes(argv[0] ?? '')) {
      const r = this.command(links, argv);
      return typeof r === 'string' ? ok(r) : err(r.problem);
    }
    throw new Error(`FakeHost: unexpected ip ${line}`);
  }

  /** One ip command of a batch (or of the argv fallback): its output, or what went wrong. */
  private command(links: Map<string, FakeLink>, t: string[]): string | { problem: string } {
    if (t.length === 4 && t[0] === 'link' && t[1] === 'show' && t[2] === 'dev') {
      const l = links.get(t[3] as string);
      return l ? JSON.stringify([this.linkJson(l)]) : { problem: `Device "${t[3]}" does not exist.` };
    }
    if (t.length === 4 && t[0] === 'addr' && t[1] === 'show' && t[2] === 'dev') {
      const l = links.get(t[3] as string);
      if (!l) return { problem: `Device "${t[3]}" does not exist.` };
      return JSON.stringify([{ ...this.linkJson(l), addr_info: l.addrs.map((a) => ({ local: a.split('/')[0], prefixlen: Number(a.split('/')[1]), scope: 'global' })) }]) + '\n';
    }
    if (t.length === 6 && t.slice(0, 5).join(' ') === 'route show table all dev') {
      const l = links.get(t[5] as string);
      if (!l) return { problem: `Cannot find device "${t[5]}"` };
      return JSON.stringify(l.routes) + '\n';
    }
    const problem = this.batchLine(links, t);
    return problem ? { problem } : '';
  }

  private batchLine(links: Map<string, FakeLink>, t: string[]): string | undefined {
    if (t[0] === 'link' && t[1] === 'set' && t[2] === 'dev') {
      const l = links.get(t[3] as string);
      if (!l) return `Cannot find device "${t[3]}"`;
      for (let i = 4; i < t.length; i++) {
        const word = t[i] as string;
        if (word === 'up' || word === 'down') l.up = word === 'up';
        else if (word === 'name') {
          const to = t[++i] as string;
          if (links.has(to)) return 'RTNETLINK answers: File exists';
          links.delete(l.name);
          l.name = to;
          links.set(to, l);
        } else if (word === 'address') l.mac = (t[++i] as string).toLowerCase();
        else if (word === 'mtu') l.mtu = Number(t[++i]);
        else return `unknown link attribute ${word}`;
      }
      return undefined;
    }
    if (t[0] === 'addr' && t[1] === 'add' && t[3] === 'dev' && (t.length === 5 || (t.length === 6 && t[5] === 'nodad'))) {
      const l = links.get(t[4] as string);
      if (!l) return `Cannot find device "${t[4]}"`;
      if (l.addrs.includes(t[2] as string)) return 'RTNETLINK answers: File exists';
      l.addrs.push(t[2] as string);
      return undefined;
    }
    if (t[0] === 'route' && t[1] === 'add' && t[t.length - 2] === 'dev' && (t.length === 5 || (t.length === 7 && t[3] === 'via'))) {
      const l = links.get(t[t.length - 1] as string);
      if (!l) return `Cannot find device "${t[t.length - 1]}"`;
      if (!l.up) return 'RTNETLINK answers: Network is down';
      const dst = t[2] === '0.0.0.0/0' || t[2] === '::/0' ? 'default' : (t[2] as string);
      l.routes.push(t.length === 7 ? { dst, gateway: t[4] as string } : { dst });
      return undefined;
    }
    return `unknown batch line: ${t.join(' ')}`;
  }
}
